//! On the real node: the backup CronJob of a stack runs for real (mariadb-dump in
//! the database image, onto the stack's backup volume), the operator reports the
//! backup, and a second stack that restores `latest` from that volume starts with
//! exactly the first stack's rows and becomes Ready.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::{Api, ResourceExt};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::kubectl::kubectl;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::node::{mariadb_as_root, stack_from_yaml, volume_dir};
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack;
use webtoon_e2e::wait;
use webtoon_operator::api::WebtoonStack;

const LIMIT: Duration = Duration::from_secs(420);
/// The database the stacks keep by default, which the demo WAS's table lives in.
const DATABASE: &str = "webtoon";

/// The stack that is backed up.
const SOURCE: &str = "backtoon";
/// The stack restored from the source's backup.
const RESTORED: &str = "restoon";
/// The source's backup CronJob and its claim share this name.
const BACKUP: &str = "backtoon-database-backup";

/// A small stack; `database` is the YAML of `spec.database` after its resources.
fn stack_yaml(name: &str, database: &str) -> String {
    format!(
        r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {{name: {name}}}
spec:
  hosts: [{name}.example]
  proxy:
    resources: {{requests: {{cpu: 50m, memory: 64Mi}}, limits: {{cpu: "1", memory: 256Mi}}}}
  was:
    image: demo-was:1.0.0
    healthPath: /healthz
    resources: {{requests: {{cpu: 50m, memory: 128Mi}}, limits: {{cpu: "1", memory: 512Mi}}}}
  cache:
    maxMemory: 64Mi
    resources: {{requests: {{cpu: 50m, memory: 128Mi}}, limits: {{cpu: "1", memory: 192Mi}}}}
  storage: {{size: 1Gi}}
  database:
    storage: {{size: 1Gi}}
    resources: {{requests: {{cpu: 100m, memory: 256Mi}}, limits: {{cpu: "1", memory: 1Gi}}}}
{database}"#
    )
}

#[tokio::test]
async fn real_node_backs_up_for_real_and_restores_into_a_new_stack() {
    within_namespace("node-backup", LIMIT, |client, namespace| async move {
        ensure_crd(&client).await;
        let _operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
        let stacks: Api<WebtoonStack> = Api::namespaced(client.clone(), &namespace);

        let source = stack_yaml(
            SOURCE,
            r#"    backup:
      schedule: "0 3 * * *"
      keep: 3
      storage: {size: 1Gi}
"#,
        );
        stack::deploy(&client, stack_from_yaml(&source, &namespace)).await;

        // The WAS created its table before it turned ready; a few rows go in.
        mariadb_as_root(
            &namespace,
            SOURCE,
            DATABASE,
            "INSERT INTO episodes (title, image) VALUES \
             ('The first night', '/images/ep1/01.png'), \
             ('Rain on the roof', '/images/ep2/01.png'), \
             ('Ünïcode & quotes', '/images/ep3/01.png')",
        )
        .await;
        let query = "SELECT id, title, image FROM episodes ORDER BY id";
        let rows = mariadb_as_root(&namespace, SOURCE, DATABASE, query).await;
        assert_eq!(rows.lines().count(), 3, "the source's rows: {rows}");

        // The scheduled backup, run now, as an operator on call would.
        let created = kubectl(&[
            "create",
            "job",
            "--namespace",
            &namespace,
            "backup-now",
            &format!("--from=cronjob/{BACKUP}"),
        ])
        .await;
        assert!(
            created.success,
            "cannot start a Job from the backup CronJob: {}",
            created.stderr
        );
        let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
        let job = wait::until(
            &jobs,
            "backup-now",
            Duration::from_secs(120),
            |j: Option<&Job>| {
                // Done: a pod succeeded, or the Job gave up after its retries.
                j.and_then(|j| j.status.as_ref()).is_some_and(|s| {
                    s.succeeded.unwrap_or(0) > 0
                        || s.conditions
                            .iter()
                            .flatten()
                            .any(|c| c.type_ == "Failed" && c.status == "True")
                })
            },
        )
        .await;
        let job_status = job.status.clone().unwrap_or_default();
        if job_status.succeeded.unwrap_or(0) == 0 {
            let logs = kubectl(&[
                "logs",
                "--namespace",
                &namespace,
                "job/backup-now",
                "--all-containers",
            ])
            .await;
            panic!(
                "the backup Job failed: {job_status:?}\n{}{}",
                logs.stdout, logs.stderr
            );
        }

        // The dump and its description are on the backup volume.
        let dir = volume_dir(&client, &namespace, BACKUP).await;
        let mut dumps: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("the backup volume {}: {e}", dir.display()))
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("webtoon-") && n.ends_with(".sql.gz"))
            .collect();
        dumps.sort();
        assert_eq!(dumps.len(), 1, "one dump on the backup volume: {dumps:?}");
        let dump = dumps.remove(0);
        assert!(
            dir.join(format!("{dump}.json")).is_file(),
            "the dump's description beside it"
        );
        let bytes = std::fs::metadata(dir.join(&dump))
            .expect("the dump's size")
            .len();
        let text = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(dir.join(&dump))
            .output()
            .expect("gzip runs");
        assert!(text.status.success(), "the dump decompresses");
        let sql = String::from_utf8_lossy(&text.stdout);
        assert!(
            sql.contains("Rain on the roof") && sql.contains("CREATE TABLE `episodes`"),
            "the dump holds the table and its rows"
        );

        // The operator reports the backup the Job took.
        let reported = wait::until(
            &stacks,
            SOURCE,
            Duration::from_secs(60),
            |s: Option<&WebtoonStack>| {
                s.and_then(|s| s.status.as_ref()?.backups.as_ref()?.last_backup.as_ref())
                    .is_some()
            },
        )
        .await;
        let last = reported
            .status
            .and_then(|s| s.backups)
            .and_then(|b| b.last_backup)
            .expect("the newest backup in the status");
        assert_eq!(
            last.name, dump,
            "the reported backup is the dump on the volume"
        );
        assert_eq!(
            last.location.as_deref(),
            Some(format!("volume:{BACKUP}/{dump}").as_str())
        );
        assert_eq!(last.bytes, Some(bytes), "the reported size");
        assert_eq!(last.job, "backup-now");

        // A new stack restores the newest backup from the source's claim.
        let restored = stack_yaml(
            RESTORED,
            &format!(
                r#"    restore:
      from: latest
      claimName: {BACKUP}
"#
            ),
        );
        let ready = stack::deploy(&client, stack_from_yaml(&restored, &namespace)).await;
        assert_eq!(ready.name_any(), RESTORED);
        let copied = mariadb_as_root(&namespace, RESTORED, DATABASE, query).await;
        assert_eq!(
            copied, rows,
            "the restored stack holds exactly the source's rows"
        );
        let log = kubectl(&[
            "logs",
            "--namespace",
            &namespace,
            &format!("{RESTORED}-database-0"),
            "-c",
            "mariadb",
        ])
        .await;
        assert!(
            log.stdout
                .contains(&format!("restore ok: database={DATABASE} file={dump}")),
            "the restore script loaded {dump}: {}{}",
            log.stdout,
            log.stderr
        );
    })
    .await;
}
