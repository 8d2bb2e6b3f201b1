//! A stack with a WAS migration, and what the controller observes while that
//! migration runs.

use webtoon_operator::api::ValidatedStack;
use webtoon_operator::render::Observed;
use webtoon_operator::render::release::MigrationJobs;

use super::test_credentials;

/// A stack at the longest name (36 characters) with a migration of its own timeout,
/// WAS variables the migration replaces (LOG_LEVEL) and keeps (APP_MODE), and
/// backups.
pub const MIGRATION_STACK: &str = r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: m23456789012345678901234567890123456, namespace: webtoon, uid: mig-uid}
spec:
  hosts: [migtoon.example]
  was:
    image: "registry.example/migtoon/was:2.0.0"
    env: [{name: APP_MODE, value: production}, {name: LOG_LEVEL, value: info}]
    migration:
      command: [/app/bin/migrate, --yes]
      env: [{name: LOG_LEVEL, value: debug}, {name: MIGRATION_LOCK, value: "on"}]
      timeoutSeconds: 900
  database: {backup: {schedule: "0 3 * * *"}}
"#;

/// The line of `MIGRATION_STACK` that configures backups.
const BACKUPS: &str = "  database: {backup: {schedule: \"0 3 * * *\"}}\n";

/// The file the backup taken before a migration writes.
pub const BACKUP_FILE: &str = "webtoon-20261201T030000Z.sql.gz";

/// `yaml` (`MIGRATION_STACK` or derived from it) without backups.
pub fn without_backups(yaml: &str) -> String {
    assert!(yaml.contains(BACKUPS), "the stack has backups to remove");
    yaml.replace(BACKUPS, "")
}

/// Observed with the test credentials while the migration to `image` runs: after
/// the backup into `backup`, if one was taken, and with the migration Job itself
/// when `migrate`.
pub fn migrating_to(image: &str, backup: Option<&str>, migrate: bool) -> Observed {
    Observed {
        credentials: Some(test_credentials()),
        migration: Some(MigrationJobs {
            image: image.to_string(),
            backup: backup.map(String::from),
            migrate,
        }),
        ..Default::default()
    }
}

/// Observed while the migration to the stack's own image runs, after the backup
/// into `BACKUP_FILE`: a stack with a migration and backups has both Jobs.
pub fn migrating(stack: &ValidatedStack) -> Observed {
    migrating_to(&stack.spec.was.image, Some(BACKUP_FILE), true)
}
