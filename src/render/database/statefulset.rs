//! The MariaDB StatefulSet.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Container, ContainerPort, ExecAction, Probe};

use super::backup_cronjob::{
    BACKUP_MOUNT, STAGING_MOUNT, STAGING_VOLUME, claim_volume, staging_volume,
};
use super::backup_script::BACKUP_DIR_ENV;
use super::init_script::{
    APP_PASSWORD_ENV, BACKUP_PASSWORD_ENV, INIT_DIR, MONITOR_PASSWORD_ENV, ROOT_PASSWORD_ENV,
};
use super::restore_script::{RESTORE_FROM_ENV, RESTORE_MARKER, RESTORE_MARKER_ENV};
use super::{PORT, init_config_map_name};
use super::{RestoreSource, object_store, restore_source};
use crate::api::ValidatedStack;
use crate::render::credentials::{
    DATABASE_BACKUP_PASSWORD_KEY, DATABASE_MONITOR_PASSWORD_KEY, DATABASE_PASSWORD_KEY,
    DATABASE_ROOT_PASSWORD_KEY, env_from_secret, env_value, secret_name,
};
use crate::render::meta::child_name;
use crate::render::security::{container_security_context, scratch_volume};
use crate::render::stateful::{self, DataTier};
use crate::render::volumes::{config_map_volume, mount};

fn exec_probe(command: &[&str], period: i32, failures: i32, initial_delay: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(command.iter().map(|s| s.to_string()).collect()),
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        initial_delay_seconds: Some(initial_delay),
        timeout_seconds: Some(5),
        ..Default::default()
    }
}

/// The MariaDB StatefulSet. On first start the image runs the rendered init script
/// (application database, application user limited to it, backup user) and, when a
/// restore is asked for, the restore script; root may log in only from inside the
/// pod, and its password never reaches WAS pods.
pub fn statefulset(stack: &ValidatedStack, my_cnf: &str, tool_image: &str) -> StatefulSet {
    let db = &stack.spec.database;
    let secret = secret_name(stack);
    let mut env = vec![
        env_from_secret(
            ROOT_PASSWORD_ENV,
            &secret,
            DATABASE_ROOT_PASSWORD_KEY,
            false,
        ),
        env_value("MARIADB_ROOT_HOST", "localhost"),
        env_value("MARIADB_AUTO_UPGRADE", "1"),
        env_value("MARIADB_INITDB_SKIP_TZINFO", "1"),
        env_value("WEBTOON_DB_NAME", db.name.clone()),
        env_from_secret(APP_PASSWORD_ENV, &secret, DATABASE_PASSWORD_KEY, false),
        env_from_secret(
            BACKUP_PASSWORD_ENV,
            &secret,
            DATABASE_BACKUP_PASSWORD_KEY,
            false,
        ),
    ];
    let monitoring = crate::render::monitoring::spec(stack);
    if monitoring.is_some() {
        env.push(env_from_secret(
            MONITOR_PASSWORD_ENV,
            &secret,
            DATABASE_MONITOR_PASSWORD_KEY,
            false,
        ));
    }
    let mut mounts = vec![
        mount("data", "/var/lib/mysql", false),
        mount("config", "/etc/mysql/conf.d", true),
        mount("init", INIT_DIR, true),
        mount("run", "/run/mysqld", false),
        mount("tmp", "/tmp", false),
    ];
    let mut volumes = vec![
        config_map_volume("config", &child_name(stack, "database-config"), false),
        // Executable, so the image runs the scripts instead of sourcing them into its
        // own shell.
        config_map_volume("init", &init_config_map_name(stack), true),
        scratch_volume("run", "16Mi", true),
        scratch_volume("tmp", "1Gi", false),
    ];
    if monitoring.is_some() {
        volumes.push(crate::render::monitoring::tmp_volume());
    }
    // While the marker of an unfinished restore exists the pod never turns ready.
    let mut ready_check = "healthcheck.sh --connect --innodb_initialized".to_string();
    // A first start initialises the data directory, which can take minutes; a
    // restore loads the whole dump first: up to 10 minutes, or 6 hours with a restore.
    let mut startup_failures = 60;
    let mut init_containers = Vec::new();
    if let (Some(restore), Some(source)) = (&db.restore, restore_source(stack)) {
        env.push(env_value(RESTORE_FROM_ENV, restore.from.clone()));
        env.push(env_value(RESTORE_MARKER_ENV, RESTORE_MARKER));
        match source {
            RestoreSource::Claim(claim) => {
                env.push(env_value(BACKUP_DIR_ENV, BACKUP_MOUNT));
                mounts.push(mount("backup", BACKUP_MOUNT, true));
                volumes.push(claim_volume("backup", &claim, true));
            }
            RestoreSource::ObjectStore(store) => {
                // The operator's image fetches and checks the backup before the
                // server's first start loads it; a restarted pod fetches nothing.
                env.push(env_value(BACKUP_DIR_ENV, STAGING_MOUNT));
                mounts.push(mount(STAGING_VOLUME, STAGING_MOUNT, true));
                volumes.push(staging_volume());
                volumes.extend(object_store::ca_volume(store));
                init_containers.push(object_store::tool_container(
                    stack,
                    store,
                    tool_image,
                    "fetch-backup",
                    vec![
                        "fetch".to_string(),
                        "--dir".to_string(),
                        STAGING_MOUNT.to_string(),
                        "--from".to_string(),
                        restore.from.clone(),
                        "--unless-initialized".to_string(),
                        "/var/lib/mysql".to_string(),
                    ],
                    Vec::new(),
                    vec![
                        mount(STAGING_VOLUME, STAGING_MOUNT, false),
                        mount("data", "/var/lib/mysql", true),
                    ],
                ));
            }
        }
        ready_check = format!("test ! -e {RESTORE_MARKER} && {ready_check}");
        startup_failures = 6 * 360;
    }
    let ready_probe =
        |period, failures| exec_probe(&["sh", "-c", ready_check.as_str()], period, failures, 0);
    let container = Container {
        name: "mariadb".to_string(),
        image: Some(db.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        ports: Some(vec![ContainerPort {
            name: Some("mysql".to_string()),
            container_port: PORT,
            protocol: Some("TCP".to_string()),
            ..Default::default()
        }]),
        env: Some(env),
        resources: Some(db.resources.clone()),
        readiness_probe: Some(ready_probe(10, 3)),
        liveness_probe: Some(exec_probe(&["healthcheck.sh", "--connect"], 20, 6, 30)),
        startup_probe: Some(ready_probe(10, startup_failures)),
        security_context: Some(container_security_context(true)),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    stateful::statefulset(
        stack,
        DataTier {
            component: "database",
            container,
            sidecars: monitoring
                .map(|m| {
                    crate::render::monitoring::mysqld_exporter::container(stack, &m.images.mysqld)
                })
                .into_iter()
                .collect(),
            init_containers,
            volumes,
            data: Some(&db.storage),
            config: my_cnf,
            termination_grace_seconds: 60,
        },
    )
}
