//! The MariaDB StatefulSet.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, ExecAction, Probe, Volume, VolumeMount,
};

use super::PORT;
use crate::api::ValidatedStack;
use crate::render::credentials::{
    DATABASE_PASSWORD_KEY, DATABASE_ROOT_PASSWORD_KEY, env_from_secret, env_value, secret_name,
};
use crate::render::meta::child_name;
use crate::render::security::{container_security_context, scratch_volume};
use crate::render::stateful::{self, DataTier};

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

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

/// The MariaDB StatefulSet. The image's entrypoint creates the application database
/// and a user whose privileges cover that database only; root may log in only from
/// inside the pod, and its password never reaches WAS pods.
pub fn statefulset(stack: &ValidatedStack, my_cnf: &str) -> StatefulSet {
    let db = &stack.spec.database;
    let secret = secret_name(stack);
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
        env: Some(vec![
            env_from_secret(
                "MARIADB_ROOT_PASSWORD",
                &secret,
                DATABASE_ROOT_PASSWORD_KEY,
                false,
            ),
            env_value("MARIADB_ROOT_HOST", "localhost"),
            env_value("MARIADB_DATABASE", db.name.clone()),
            env_value("MARIADB_USER", db.user.clone()),
            env_from_secret("MARIADB_PASSWORD", &secret, DATABASE_PASSWORD_KEY, false),
            env_value("MARIADB_AUTO_UPGRADE", "1"),
            env_value("MARIADB_INITDB_SKIP_TZINFO", "1"),
        ]),
        resources: Some(db.resources.clone()),
        readiness_probe: Some(exec_probe(
            &["healthcheck.sh", "--connect", "--innodb_initialized"],
            10,
            3,
            0,
        )),
        liveness_probe: Some(exec_probe(&["healthcheck.sh", "--connect"], 20, 6, 30)),
        // A first start initialises the data directory, which can take minutes.
        startup_probe: Some(exec_probe(&["healthcheck.sh", "--connect"], 10, 60, 0)),
        security_context: Some(container_security_context(true)),
        volume_mounts: Some(vec![
            mount("data", "/var/lib/mysql", false),
            mount("config", "/etc/mysql/conf.d", true),
            mount("run", "/run/mysqld", false),
            mount("tmp", "/tmp", false),
        ]),
        ..Default::default()
    };
    let volumes = vec![
        Volume {
            name: "config".to_string(),
            config_map: Some(ConfigMapVolumeSource {
                name: child_name(stack, "database-config"),
                ..Default::default()
            }),
            ..Default::default()
        },
        scratch_volume("run", "16Mi", true),
        scratch_volume("tmp", "1Gi", false),
    ];
    stateful::statefulset(
        stack,
        DataTier {
            component: "database",
            container,
            volumes,
            data: Some(&db.storage),
            config: my_cnf,
            termination_grace_seconds: 60,
        },
    )
}
