//! Rendered fields of the database tier: the backup CronJob and its claim, the
//! first-start scripts, the restore wiring, and where each password goes.

mod common;

use common::hardening::pod_specs;
use common::stack_from_yaml;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use webtoon_operator::render::{Children, Observed, render};

const PRODUCTION: &str = include_str!("../examples/production.yaml");
const MINIMAL: &str = include_str!("../examples/minimal.yaml");

fn children(yaml: &str) -> Children {
    render(&stack_from_yaml(yaml), &Observed::default())
}

fn with_database(database: &str) -> String {
    format!("{MINIMAL}  database:\n{database}")
}

fn secret_keys(container: &Container) -> Vec<String> {
    container
        .env
        .iter()
        .flatten()
        .filter_map(|e| Some(e.value_from.as_ref()?.secret_key_ref.as_ref()?.key.clone()))
        .collect()
}

fn env<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
    container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.as_deref())
}

/// The pod template of the database StatefulSet of `minitoon`.
fn database_pod(c: &Children) -> PodSpec {
    pod_specs(c)
        .into_iter()
        .find(|(n, _)| n == "StatefulSet/minitoon-database")
        .map(|(_, p)| p)
        .expect("database pod")
}

#[test]
fn backup_cronjob_runs_one_at_a_time_on_schedule_as_the_backup_user() {
    let c = children(PRODUCTION);
    assert_eq!(c.cron_jobs.len(), 1);
    let job = &c.cron_jobs[0];
    assert_eq!(
        job.metadata.name.as_deref(),
        Some("megatoon-database-backup")
    );
    let spec = job.spec.as_ref().expect("spec");
    assert_eq!(spec.schedule, "0 3 * * *");
    assert_eq!(spec.time_zone.as_deref(), Some("Asia/Seoul"));
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    let pod = spec
        .job_template
        .spec
        .as_ref()
        .and_then(|j| j.template.spec.as_ref())
        .expect("pod");
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let psc = pod.security_context.as_ref().expect("pod security");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.run_as_user, Some(999));
    let container = &pod.containers[0];
    let sc = container.security_context.as_ref().expect("security");
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(env(container, "WEBTOON_BACKUP_KEEP"), Some("7"));
    assert_eq!(env(container, "WEBTOON_BACKUP_DIR"), Some("/backup"));
    assert_eq!(env(container, "WEBTOON_DB_USER"), Some("webtoon_backup"));
    assert_eq!(
        env(container, "WEBTOON_DB_HOST"),
        Some("megatoon-database.webtoon.svc")
    );
    assert_eq!(secret_keys(container), ["database-backup-password"]);
    let claim = pod
        .volumes
        .iter()
        .flatten()
        .find_map(|v| v.persistent_volume_claim.as_ref())
        .expect("backup claim volume");
    assert_eq!(claim.claim_name, "megatoon-database-backup");
    let affinity = pod
        .affinity
        .as_ref()
        .and_then(|a| a.pod_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .expect("runs beside the database, which may share a ReadWriteOnce claim");
    assert_eq!(affinity[0].topology_key, "kubernetes.io/hostname");
    let script = c
        .config_maps
        .iter()
        .find(|m| m.metadata.name.as_deref() == Some("megatoon-database-backup"))
        .and_then(|m| m.data.as_ref()?.get("backup.sh").cloned())
        .expect("backup script");
    assert!(script.contains("--single-transaction"));
}

#[test]
fn backup_claim_is_data_kept_under_retain_and_owned_under_delete() {
    let c = children(PRODUCTION);
    let claim = c
        .persistent_volume_claims
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some("megatoon-database-backup"))
        .expect("backup claim");
    let spec = claim.spec.as_ref().expect("spec");
    assert_eq!(
        spec.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .map(|r| r["storage"].0.clone()),
        Some("50Gi".to_string())
    );
    assert_eq!(
        spec.access_modes.as_deref(),
        Some(&["ReadWriteOnce".to_string()][..])
    );
    let with_uid = |policy: &str| {
        PRODUCTION
            .replace(
                "  namespace: webtoon\n",
                "  namespace: webtoon\n  uid: u-1\n",
            )
            .replace(
                "deletionPolicy: Retain",
                &format!("deletionPolicy: {policy}"),
            )
    };
    let owners = |yaml: &str| {
        children(yaml)
            .persistent_volume_claims
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some("megatoon-database-backup"))
            .and_then(|p| p.metadata.owner_references.clone())
    };
    assert!(
        owners(&with_uid("Retain")).is_none(),
        "Retain: no owner, no garbage collection"
    );
    assert!(owners(&with_uid("Delete")).is_some());
    let cron_owner = children(&with_uid("Retain")).cron_jobs[0]
        .metadata
        .owner_references
        .clone();
    assert!(
        cron_owner.is_some(),
        "the schedule itself goes with the stack"
    );
}

#[test]
fn root_password_reaches_the_database_pod_only() {
    let c = children(PRODUCTION);
    let all = pod_specs(&c);
    assert!(all.len() >= 4, "proxy, WAS, database, cache, backup");
    for (name, pod) in all {
        for container in pod
            .containers
            .iter()
            .chain(pod.init_containers.iter().flatten())
        {
            let keys = secret_keys(container);
            if name == "StatefulSet/megatoon-database" {
                assert!(keys.contains(&"database-root-password".to_string()));
            } else {
                assert!(
                    !keys.contains(&"database-root-password".to_string()),
                    "{name} gets the root password"
                );
            }
            if name == "Deployment/megatoon-was" {
                assert!(!keys.contains(&"database-backup-password".to_string()));
            }
        }
    }
}

#[test]
fn database_runs_the_rendered_init_from_an_executable_config_map() {
    let c = children(MINIMAL);
    assert!(c.cron_jobs.is_empty(), "no backup asked for");
    assert_eq!(c.persistent_volume_claims.len(), 1, "images only");
    let init = c
        .config_maps
        .iter()
        .find(|m| m.metadata.name.as_deref() == Some("minitoon-database-init"))
        .and_then(|m| m.data.clone())
        .expect("init config map");
    assert_eq!(init.keys().collect::<Vec<_>>(), ["10-webtoon-init.sh"]);
    let pod = database_pod(&c);
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "init")
        .and_then(|v| v.config_map.clone())
        .expect("init volume");
    assert_eq!(volume.default_mode, Some(0o555), "run, not sourced");
    let container = &pod.containers[0];
    assert!(
        container.volume_mounts.iter().flatten().any(|m| {
            m.mount_path == "/docker-entrypoint-initdb.d" && m.read_only == Some(true)
        })
    );
    for gone in ["MARIADB_USER", "MARIADB_PASSWORD", "MARIADB_DATABASE"] {
        assert!(
            container.env.iter().flatten().all(|e| e.name != gone),
            "{gone}: the rendered script creates users, not the image"
        );
    }
    for probe in [&container.readiness_probe, &container.liveness_probe] {
        assert!(probe.as_ref().and_then(|p| p.exec.as_ref()).is_some());
    }
}

#[test]
fn restore_loads_before_the_database_is_ready() {
    let c = children(&with_database("    restore: {from: latest}\n"));
    let init = c
        .config_maps
        .iter()
        .find(|m| m.metadata.name.as_deref() == Some("minitoon-database-init"))
        .and_then(|m| m.data.clone())
        .expect("init config map");
    assert_eq!(
        init.keys().collect::<Vec<_>>(),
        ["10-webtoon-init.sh", "20-webtoon-restore.sh"],
        "the restore runs after the init, in name order"
    );
    // Restoring from its own claim: the claim a deleted stack left behind is adopted.
    assert!(
        c.persistent_volume_claims
            .iter()
            .any(|p| p.metadata.name.as_deref() == Some("minitoon-database-backup"))
    );
    let pod = database_pod(&c);
    let container = &pod.containers[0];
    assert_eq!(env(container, "WEBTOON_RESTORE_FROM"), Some("latest"));
    let readiness = container
        .readiness_probe
        .as_ref()
        .and_then(|p| p.exec.as_ref())
        .and_then(|e| e.command.clone())
        .expect("readiness");
    assert!(readiness[2].starts_with("test ! -e /var/lib/mysql/.webtoon-restore-incomplete &&"));
    let backup_mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == "/backup")
        .expect("backup mount");
    assert_eq!(backup_mount.read_only, Some(true));

    // From another stack's claim, by name: that claim is mounted, none is created.
    let c = children(&with_database(
        "    restore: {from: webtoon-20261201T030000Z.sql.gz, claimName: oldtoon-database-backup}\n",
    ));
    assert!(
        c.persistent_volume_claims
            .iter()
            .all(|p| { p.metadata.name.as_deref() != Some("minitoon-database-backup") })
    );
    let pod = database_pod(&c);
    let claim = pod
        .volumes
        .iter()
        .flatten()
        .find_map(|v| v.persistent_volume_claim.clone())
        .expect("claim");
    assert_eq!(claim.claim_name, "oldtoon-database-backup");
    assert_eq!(claim.read_only, Some(true));
    assert_eq!(
        env(&pod.containers[0], "WEBTOON_RESTORE_FROM"),
        Some("webtoon-20261201T030000Z.sql.gz")
    );
}

#[test]
fn external_database_gets_no_server_no_scripts_and_no_backup() {
    let c = children(include_str!("../examples/external-db.yaml"));
    assert!(c.cron_jobs.is_empty());
    assert!(c.stateful_sets.iter().all(|s| {
        !s.metadata
            .name
            .as_deref()
            .is_some_and(|n| n.ends_with("-database"))
    }));
    assert!(c.config_maps.iter().all(|m| {
        !m.metadata
            .name
            .as_deref()
            .is_some_and(|n| n.contains("-database"))
    }));
}
