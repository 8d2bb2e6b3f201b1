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
    assert_eq!(c.cron_jobs.len(), 2, "backup and verify");
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
    // The example also uploads to a bucket: the dump runs first, then the upload.
    let container = pod
        .init_containers
        .iter()
        .flatten()
        .chain(&pod.containers)
        .find(|c| c.name == "backup")
        .expect("the dump's container");
    assert_eq!(pod.containers[0].name, "upload");
    let sc = container.security_context.as_ref().expect("security");
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(env(container, "WEBTOON_BACKUP_KEEP"), Some("7"));
    assert_eq!(env(container, "WEBTOON_BACKUP_DIR"), Some("/backup"));
    assert_eq!(
        env(container, "WEBTOON_REPORT_FILE"),
        Some("/staging/dump-report.json"),
        "the uploader reads the dump's report and reports for both"
    );
    assert_eq!(
        container.termination_message_policy.as_deref(),
        Some("FallbackToLogsOnError"),
        "a script that dies before its report still tells why"
    );
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
            if name == "StatefulSet/megatoon-database" && container.name == "mariadb" {
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

const BUCKET_ONLY: &str = "    backup:
      keep: 3
      objectStore:
        endpoint: https://s3.ap-northeast-2.amazonaws.com
        bucket: minitoon-backups
        secretName: backup-s3
        caConfigMap: backup-ca
        egressCIDRs: [52.95.0.0/16]
";

fn job_pod(c: &Children, cron_job: &str) -> PodSpec {
    c.cron_jobs
        .iter()
        .find(|j| j.metadata.name.as_deref() == Some(cron_job))
        .and_then(|j| {
            j.spec
                .as_ref()?
                .job_template
                .spec
                .as_ref()?
                .template
                .spec
                .clone()
        })
        .expect("job pod")
}

#[test]
fn backups_to_a_bucket_are_dumped_first_then_uploaded_by_the_operator_image() {
    let observed = Observed {
        operator_image: Some("registry.example/webtoon-operator:9.9.9".to_string()),
        ..Observed::default()
    };
    let c = render(&stack_from_yaml(&with_database(BUCKET_ONLY)), &observed);
    assert!(
        c.persistent_volume_claims
            .iter()
            .all(|p| p.metadata.name.as_deref() != Some("minitoon-database-backup")),
        "a bucket alone needs no backup volume"
    );
    let pod = job_pod(&c, "minitoon-database-backup");
    assert!(
        pod.affinity.is_none(),
        "no volume to share with the database"
    );
    let dump = &pod.init_containers.as_ref().expect("dump first")[0];
    assert_eq!(dump.name, "backup");
    assert_eq!(env(dump, "WEBTOON_BACKUP_DIR"), Some("/staging"));
    assert_eq!(
        env(dump, "WEBTOON_REPORT_FILE"),
        Some("/staging/dump-report.json")
    );
    let upload = &pod.containers[0];
    assert_eq!(upload.name, "upload");
    assert_eq!(
        upload.image.as_deref(),
        Some("registry.example/webtoon-operator:9.9.9")
    );
    assert_eq!(
        upload.args.as_deref().expect("args"),
        [
            "backup",
            "upload",
            "--dir",
            "/staging",
            "--dump-report",
            "/staging/dump-report.json"
        ]
    );
    assert_eq!(
        env(upload, "WEBTOON_S3_ENDPOINT"),
        Some("https://s3.ap-northeast-2.amazonaws.com")
    );
    assert_eq!(env(upload, "WEBTOON_S3_BUCKET"), Some("minitoon-backups"));
    assert_eq!(env(upload, "WEBTOON_S3_PREFIX"), Some("webtoon/minitoon/"));
    assert_eq!(env(upload, "WEBTOON_S3_REGION"), Some("us-east-1"));
    assert_eq!(env(upload, "WEBTOON_BACKUP_KEEP"), Some("3"));
    assert_eq!(env(upload, "WEBTOON_S3_ALLOW_HTTP"), None);
    assert_eq!(
        env(upload, "WEBTOON_S3_CA_FILE"),
        Some("/etc/webtoon/object-store-ca/ca.crt")
    );
    assert_eq!(
        env(upload, "WEBTOON_REPORT_FILE"),
        Some("/dev/termination-log")
    );
    assert_eq!(
        secret_keys(upload),
        ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        "the uploader never sees a database password"
    );
    assert!(
        secret_keys(dump).iter().all(|k| !k.starts_with("AWS_")),
        "the dump never sees the bucket's keys"
    );
    let policy = c
        .network_policies
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some("minitoon-database-backup"))
        .and_then(|p| p.spec.clone())
        .expect("backup policy");
    let to_bucket = policy
        .egress
        .iter()
        .flatten()
        .find(|rule| {
            rule.to.iter().flatten().any(|peer| {
                peer.ip_block
                    .as_ref()
                    .is_some_and(|b| b.cidr == "52.95.0.0/16")
            })
        })
        .expect("egress to the bucket's networks");
    let port = to_bucket.ports.as_ref().expect("ports")[0].port.clone();
    assert_eq!(
        port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(443))
    );
}

#[test]
fn verify_loads_the_newest_backup_in_a_throwaway_database_without_reaching_the_live_one() {
    let c = children(PRODUCTION);
    let cron_job = c
        .cron_jobs
        .iter()
        .find(|j| j.metadata.name.as_deref() == Some("megatoon-database-verify"))
        .expect("verify CronJob");
    let spec = cron_job.spec.as_ref().expect("spec");
    assert_eq!(spec.schedule, "0 5 * * 0", "weekly by default");
    assert_eq!(spec.time_zone.as_deref(), Some("Asia/Seoul"));
    assert_eq!(spec.suspend, Some(false));
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    let job = spec.job_template.spec.as_ref().expect("job");
    assert_eq!(
        job.backoff_limit,
        Some(0),
        "a failed check is not retried away"
    );
    let pod = job_pod(&c, "megatoon-database-verify");
    assert!(pod.init_containers.is_none(), "the volume is read in place");
    let verify = &pod.containers[0];
    assert_eq!(env(verify, "WEBTOON_BACKUP_DIR"), Some("/backup"));
    assert_eq!(env(verify, "WEBTOON_VERIFY_FROM"), Some("latest"));
    assert!(
        secret_keys(verify).is_empty(),
        "no credential of the live database"
    );
    assert!(
        verify
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path == "/backup" && m.read_only == Some(true))
    );
    let policy = c
        .network_policies
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some("megatoon-database-verify"))
        .and_then(|p| p.spec.clone())
        .expect("verify policy");
    assert!(policy.ingress.unwrap_or_default().is_empty());
    let egress = policy.egress.unwrap_or_default();
    assert_eq!(egress.len(), 1, "cluster DNS only: {egress:?}");

    let c = children(&with_database(BUCKET_ONLY));
    let pod = job_pod(&c, "minitoon-database-verify");
    let fetch = &pod.init_containers.as_ref().expect("fetch first")[0];
    assert_eq!(
        fetch.args.as_deref().expect("args"),
        ["backup", "fetch", "--dir", "/staging", "--from", "latest"]
    );
    assert_eq!(
        env(&pod.containers[0], "WEBTOON_BACKUP_DIR"),
        Some("/staging")
    );
}

#[test]
fn a_restore_from_a_bucket_fetches_and_checks_before_the_first_start() {
    let c = children(&with_database(&format!(
        "{BUCKET_ONLY}    restore: {{from: latest}}\n"
    )));
    let pod = database_pod(&c);
    let fetch = &pod.init_containers.as_ref().expect("fetch first")[0];
    assert_eq!(fetch.name, "fetch-backup");
    let args = fetch.args.clone().expect("args");
    assert_eq!(
        args[args.len() - 2..],
        ["--unless-initialized", "/var/lib/mysql"],
        "a restarted database fetches nothing"
    );
    assert!(
        fetch
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path == "/var/lib/mysql" && m.read_only == Some(true))
    );
    assert_eq!(
        env(&pod.containers[0], "WEBTOON_BACKUP_DIR"),
        Some("/staging")
    );

    let other = "    restore:
      from: webtoon-20261201T030000Z.sql.gz
      objectStore:
        endpoint: http://minio.backup:9000
        insecure: true
        bucket: old-backups
        prefix: webtoon/oldtoon/
        secretName: old-s3
";
    let c = children(&with_database(other));
    let fetch = &database_pod(&c).init_containers.expect("fetch")[0];
    assert_eq!(env(fetch, "WEBTOON_S3_PREFIX"), Some("webtoon/oldtoon/"));
    assert_eq!(env(fetch, "WEBTOON_S3_ALLOW_HTTP"), Some("true"));
    let policy = c
        .network_policies
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some("minitoon-database"))
        .and_then(|p| p.spec.clone())
        .expect("database policy");
    let ports: Vec<_> = policy
        .egress
        .iter()
        .flatten()
        .flat_map(|r| r.ports.iter().flatten())
        .filter_map(|p| p.port.clone())
        .collect();
    assert!(
        ports.contains(&k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(9000)),
        "{ports:?}"
    );
}

#[test]
fn a_backup_to_a_volume_alone_is_one_container_that_reports_itself() {
    let c = children(&with_database("    backup: {keep: 3}\n"));
    let pod = job_pod(&c, "minitoon-database-backup");
    assert!(pod.init_containers.is_none());
    let backup = &pod.containers[0];
    assert_eq!(backup.name, "backup");
    assert_eq!(
        env(backup, "WEBTOON_REPORT_FILE"),
        Some("/dev/termination-log")
    );
    assert_eq!(
        env(backup, "WEBTOON_BACKUP_LOCATION"),
        Some("volume:minitoon-database-backup")
    );
}
