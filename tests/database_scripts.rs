//! The rendered MariaDB init, backup and restore scripts, run with bash against a
//! real MariaDB (Debian `mariadb-server`) on 127.0.0.1 that uses the rendered
//! `webtoon.cnf`. The scripts get the environment the CronJob and StatefulSet set,
//! with only the server address, the backup directory and the restore marker
//! pointed at the test's own.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::servers::{MariaDb, ROOT_PASSWORD};
use common::{config_file, resolved_env, stack_from_yaml};
use k8s_openapi::api::core::v1::EnvVar;
use webtoon_operator::render::database::backup_script::BACKUP_NAME_ENV;
use webtoon_operator::render::{Children, Observed, render};

const STACK: &str = r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: datatoon, namespace: webtoon}
spec:
  hosts: [datatoon.example]
  was: {image: registry.example/datatoon/was:1.0.0}
  database:
    backup: {keep: 2, schedule: "30 4 * * *", timeZone: Asia/Seoul}
    restore: {from: latest}
"#;

const APP_PASSWORD: &str = "app-pass-0123456789";
const BACKUP_PASSWORD: &str = "backup-pass-0123456789";

fn children() -> Children {
    render(&stack_from_yaml(STACK), &Observed::default())
}

/// Writes a rendered script into the server's directory and returns its path.
fn script(db: &MariaDb, config_map: &str, key: &str) -> PathBuf {
    let path = db.dir.0.join(key);
    std::fs::write(&path, config_file(&children(), config_map, key)).expect("write script");
    path
}

/// The environment a rendered container sets, with Secret references resolved to
/// the test's passwords and `overrides` applied.
fn rendered_env(env: &[EnvVar], overrides: &[(&str, String)]) -> Vec<(String, String)> {
    let secrets = [
        ("database-root-password", ROOT_PASSWORD),
        ("database-password", APP_PASSWORD),
        ("database-backup-password", BACKUP_PASSWORD),
    ];
    resolved_env(env, &secrets, overrides)
}

fn env_refs(env: &[(String, String)]) -> Vec<(&str, String)> {
    env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect()
}

fn database_env(overrides: &[(&str, String)]) -> Vec<(String, String)> {
    let c = children();
    let container = &c.stateful_sets[0]
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod")
        .containers[0];
    rendered_env(container.env.as_deref().unwrap_or_default(), overrides)
}

fn backup_env(db: &MariaDb, dir: &Path) -> Vec<(String, String)> {
    let c = children();
    let container = &c.cron_jobs[0]
        .spec
        .as_ref()
        .and_then(|s| s.job_template.spec.as_ref())
        .and_then(|s| s.template.spec.as_ref())
        .expect("backup pod")
        .containers[0];
    rendered_env(
        container.env.as_deref().unwrap_or_default(),
        &[
            ("WEBTOON_DB_HOST", "127.0.0.1".to_string()),
            ("WEBTOON_DB_PORT", db.port.to_string()),
            ("WEBTOON_BACKUP_DIR", dir.display().to_string()),
        ],
    )
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn refused(out: Output, what: &str) {
    assert!(!out.status.success(), "{what} should be refused");
    assert!(
        text(&out).contains("denied"),
        "{what}: refused for lack of privilege: {}",
        text(&out)
    );
}

/// A server with the rendered configuration and the rendered init script applied.
fn initialised(name: &str) -> MariaDb {
    let cnf = config_file(&children(), "datatoon-database-config", "webtoon.cnf");
    let db = MariaDb::start(name, &cnf);
    let init = script(&db, "datatoon-database-init", "10-webtoon-init.sh");
    let out = db.run_script(&init, &env_refs(&database_env(&[])));
    assert!(
        text(&out).contains("webtoon-init: created database webtoon"),
        "{}",
        text(&out)
    );
    ok(out);
    db
}

fn app(db: &MariaDb, sql: &str) -> Output {
    db.as_user("webtoon", APP_PASSWORD, sql)
}

/// Tables, a view, a trigger and a procedure, as the application user.
fn fill(db: &MariaDb) {
    ok(app(
        db,
        "USE webtoon;
         CREATE TABLE webtoon.episodes (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(200) NOT NULL, body TEXT) CHARACTER SET utf8mb4;
         CREATE TABLE webtoon.audit (id INT PRIMARY KEY AUTO_INCREMENT, episode INT);
         CREATE TRIGGER webtoon.episodes_audit AFTER INSERT ON webtoon.episodes FOR EACH ROW INSERT INTO webtoon.audit (episode) VALUES (NEW.id);
         CREATE PROCEDURE webtoon.episode_count() SELECT COUNT(*) FROM webtoon.episodes;
         CREATE VIEW webtoon.titles AS SELECT title FROM webtoon.episodes;
         INSERT INTO webtoon.episodes (title, body) SELECT CONCAT('화 ', seq, ' 🎨'), REPEAT('x', seq) FROM seq_1_to_2000;",
    ));
}

fn checksums(db: &MariaDb) -> String {
    ok(db.root("CHECKSUM TABLE webtoon.episodes, webtoon.audit EXTENDED"))
}

fn backups(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("backup dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn run_backup(db: &MariaDb, dir: &Path) -> Output {
    let backup = script(db, "datatoon-database-backup", "backup.sh");
    db.run_script(&backup, &env_refs(&backup_env(db, dir)))
}

/// The backup script with the file name the operator chose for it, as before a
/// database migration.
fn run_named_backup(db: &MariaDb, dir: &Path, name: &str) -> Output {
    let backup = script(db, "datatoon-database-backup", "backup.sh");
    let mut env = backup_env(db, dir);
    env.retain(|(k, _)| k != BACKUP_NAME_ENV);
    env.push((BACKUP_NAME_ENV.to_string(), name.to_string()));
    db.run_script(&backup, &env_refs(&env))
}

fn run_restore(db: &MariaDb, dir: &Path, from: &str) -> Output {
    let restore = script(db, "datatoon-database-init", "20-webtoon-restore.sh");
    let env = database_env(&[
        ("WEBTOON_BACKUP_DIR", dir.display().to_string()),
        ("WEBTOON_RESTORE_FROM", from.to_string()),
        ("WEBTOON_RESTORE_MARKER", marker(db).display().to_string()),
    ]);
    db.run_script(&restore, &env_refs(&env))
}

fn marker(db: &MariaDb) -> PathBuf {
    db.dir.0.join("restore-incomplete")
}

fn backup_dir(db: &MariaDb) -> PathBuf {
    let dir = db.dir.0.join("backups");
    std::fs::create_dir_all(&dir).expect("backup dir");
    dir
}

/// An empty application database, as a new stack's first start has it.
fn recreate_empty(db: &MariaDb) {
    ok(db.root("DROP DATABASE webtoon"));
    let init = script(db, "datatoon-database-init", "10-webtoon-init.sh");
    ok(db.run_script(&init, &env_refs(&database_env(&[]))));
}

#[test]
fn init_gives_the_app_user_its_database_and_nothing_else() {
    let db = initialised("mariadb-init");
    ok(db.root("CREATE DATABASE other; CREATE TABLE other.t (x INT)"));
    ok(app(
        &db,
        "CREATE TABLE webtoon.t (x INT); INSERT INTO webtoon.t VALUES (1), (2)",
    ));
    assert_eq!(ok(app(&db, "SELECT SUM(x) FROM webtoon.t")), "3");
    assert_eq!(
        ok(app(
            &db,
            "SELECT @@character_set_server, @@skip_name_resolve"
        )),
        "utf8mb4\t1",
        "the rendered webtoon.cnf is in effect"
    );
    refused(app(&db, "SELECT * FROM mysql.user"), "reading mysql.user");
    refused(
        app(&db, "SELECT * FROM other.t"),
        "reading another database",
    );
    refused(app(&db, "CREATE DATABASE mine"), "creating a database");
    refused(
        app(&db, "CREATE TABLE mysql.evil (x INT)"),
        "writing to mysql",
    );
    refused(
        app(&db, "GRANT SELECT ON webtoon.* TO 'webtoon_backup'@'%'"),
        "granting",
    );
    // The backup user reads the application database only, and writes nothing.
    let backup = |sql| db.as_user("webtoon_backup", BACKUP_PASSWORD, sql);
    assert_eq!(ok(backup("SELECT COUNT(*) FROM webtoon.t")), "2");
    refused(
        backup("INSERT INTO webtoon.t VALUES (3)"),
        "backup user writing",
    );
    refused(
        backup("SELECT * FROM other.t"),
        "backup user reading another database",
    );
    refused(
        backup("SELECT * FROM mysql.user"),
        "backup user reading mysql.user",
    );
}

#[test]
fn backup_then_restore_into_an_empty_database_gives_identical_tables() {
    let db = initialised("mariadb-roundtrip");
    fill(&db);
    let before = checksums(&db);
    let dir = backup_dir(&db);
    let log = ok(run_backup(&db, &dir));
    assert_eq!(log.lines().count(), 1, "one log line per run: {log}");
    assert!(
        log.starts_with("backup ok: database=webtoon file=webtoon-") && log.contains("kept=1"),
        "{log}"
    );
    let files = backups(&dir);
    assert_eq!(files.len(), 1, "one complete file, no partial: {files:?}");
    assert!(files[0].ends_with("Z.sql.gz"));

    recreate_empty(&db);
    assert_eq!(ok(db.root("SHOW TABLES FROM webtoon")), "");
    let log = ok(run_restore(&db, &dir, "latest"));
    assert!(
        log.contains(&format!("restore ok: database=webtoon file={}", files[0])),
        "{log}"
    );
    assert_eq!(checksums(&db), before, "CHECKSUM TABLE before and after");
    assert!(
        !marker(&db).exists(),
        "a complete restore clears its marker"
    );
    // Routines, triggers and views came back too.
    assert_eq!(ok(app(&db, "CALL webtoon.episode_count()")), "2000");
    ok(app(
        &db,
        "INSERT INTO webtoon.episodes (title) VALUES ('new')",
    ));
    assert_eq!(ok(app(&db, "SELECT COUNT(*) FROM webtoon.audit")), "2001");
    assert_eq!(ok(app(&db, "SELECT COUNT(*) FROM webtoon.titles")), "2001");
}

#[test]
fn pruning_keeps_exactly_the_newest_n_and_nothing_else_is_touched() {
    let db = initialised("mariadb-prune");
    fill(&db);
    let dir = backup_dir(&db);
    let first = ok(run_backup(&db, &dir));
    let real = backups(&dir).remove(0);
    // Three older backups, and files the backup job did not write.
    for old in [
        "webtoon-20240101T030000Z.sql.gz",
        "webtoon-20250101T030000Z.sql.gz",
        "webtoon-20250601T030000Z.sql.gz",
    ] {
        std::fs::copy(dir.join(&real), dir.join(old)).expect("seed an older backup");
    }
    std::fs::write(dir.join("notes.txt"), "keep me").expect("notes");
    std::fs::remove_file(dir.join(&real)).expect("make room for the next run");
    assert!(first.contains("kept=1"));
    let log = ok(run_backup(&db, &dir));
    assert!(log.contains("kept=2 pruned=2"), "{log}");
    let newest = log
        .split_whitespace()
        .find_map(|w| w.strip_prefix("file="))
        .expect("the log names the file")
        .to_string();
    let left = backups(&dir);
    assert_eq!(
        left,
        vec![
            "notes.txt".to_string(),
            "webtoon-20250601T030000Z.sql.gz".to_string(),
            newest,
        ],
        "keep = 2: the two newest backups, and the file the job did not write"
    );
}

#[test]
fn a_corrupt_or_cut_short_dump_is_refused_before_anything_is_loaded() {
    let db = initialised("mariadb-corrupt");
    fill(&db);
    let before = checksums(&db);
    let dir = backup_dir(&db);
    ok(run_backup(&db, &dir));
    let good = backups(&dir).remove(0);
    let bytes = std::fs::read(dir.join(&good)).expect("read backup");

    // A file cut in the middle (an interrupted copy), newer than the good one.
    let truncated = "webtoon-29990101T000000Z.sql.gz";
    std::fs::write(dir.join(truncated), &bytes[..bytes.len() / 2]).expect("truncated copy");
    // A well-formed gzip of a dump that stops half way (an interrupted dump).
    let cut = "webtoon-29980101T000000Z.sql.gz";
    let sql = ok(std::process::Command::new("gzip")
        .arg("-dc")
        .arg(dir.join(&good))
        .output()
        .expect("gzip"));
    let half: String = sql
        .lines()
        .take(sql.lines().count() / 2)
        .collect::<Vec<_>>()
        .join("\n");
    let mut gz = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    use std::io::Write;
    gz.stdin
        .take()
        .expect("stdin")
        .write_all(half.as_bytes())
        .expect("write");
    let compressed = gz.wait_with_output().expect("gzip output");
    std::fs::write(dir.join(cut), compressed.stdout).expect("cut dump");

    recreate_empty(&db);
    for (from, why) in [("latest", "corrupt"), (cut, "incomplete")] {
        let out = run_restore(&db, &dir, from);
        assert!(!out.status.success(), "restoring {from} must fail");
        assert!(
            text(&out).contains("restore failed") && text(&out).contains(why),
            "{}",
            text(&out)
        );
        assert_eq!(
            ok(db.root("SHOW TABLES FROM webtoon")),
            "",
            "nothing was loaded"
        );
        assert!(marker(&db).exists(), "the pod stays unready");
    }
    // The good one, by name.
    ok(run_restore(&db, &dir, &good));
    assert_eq!(checksums(&db), before);
    assert!(!marker(&db).exists());

    // A dump that fails leaves no file behind.
    let empty = db.dir.0.join("failed-backups");
    std::fs::create_dir_all(&empty).expect("dir");
    let backup = script(&db, "datatoon-database-backup", "backup.sh");
    let mut env = backup_env(&db, &empty);
    for (k, v) in &mut env {
        if k == "WEBTOON_DB_PASSWORD" {
            *v = "wrong".to_string();
        }
    }
    let out = db.run_script(&backup, &env_refs(&env));
    assert!(!out.status.success());
    assert!(
        text(&out).contains("backup failed: database=webtoon"),
        "{}",
        text(&out)
    );
    assert!(
        backups(&empty).is_empty(),
        "no partial or broken file is left"
    );
}

#[test]
fn a_pre_migration_backup_restores_the_database_as_it_was_before_a_migration_that_dropped_a_table()
{
    let db = initialised("mariadb-premigration");
    fill(&db);
    let before = checksums(&db);
    let tables = ok(db.root("SHOW TABLES FROM webtoon"));
    let dir = backup_dir(&db);
    let name = "webtoon-20261201T030000Z.sql.gz";
    let log = ok(run_named_backup(&db, &dir, name));
    assert!(
        log.starts_with(&format!("backup ok: database=webtoon file={name} ")),
        "the log names the requested file: {log}"
    );
    assert_eq!(
        backups(&dir),
        vec![name.to_string()],
        "exactly the requested name, no time-named or partial file"
    );
    let taken = std::fs::read(dir.join(name)).expect("read the backup");

    // A retry with the same name (the operator re-running a failed step) never
    // overwrites the backup already taken.
    let out = run_named_backup(&db, &dir, name);
    assert!(
        !out.status.success(),
        "a second backup under {name} must fail"
    );
    assert!(
        text(&out).contains("a backup with this name already exists"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read(dir.join(name)).expect("read the backup"),
        taken,
        "the first backup is untouched"
    );

    // The migration, as the application user: one table dropped, another altered.
    ok(app(
        &db,
        "DROP TABLE webtoon.audit;
         ALTER TABLE webtoon.episodes ADD COLUMN rating INT NOT NULL DEFAULT 5;
         UPDATE webtoon.episodes SET title = CONCAT(title, ' (v2)') WHERE id <= 10;",
    ));
    let migrated = ok(db.root("SHOW TABLES FROM webtoon"));
    assert!(
        !migrated.lines().any(|t| t == "audit"),
        "the migration dropped audit: {migrated}"
    );
    // A later backup of the migrated database, so that the restore has to take
    // the named one rather than the newest.
    ok(run_named_backup(
        &db,
        &dir,
        "webtoon-20261202T030000Z.sql.gz",
    ));

    recreate_empty(&db);
    assert_eq!(ok(db.root("SHOW TABLES FROM webtoon")), "");
    let log = ok(run_restore(&db, &dir, name));
    assert!(
        log.contains(&format!("restore ok: database=webtoon file={name} ")),
        "the restore loaded the pre-migration backup: {log}"
    );
    assert_eq!(
        ok(db.root("SHOW TABLES FROM webtoon")),
        tables,
        "the dropped table is back and nothing else is there"
    );
    assert_eq!(
        checksums(&db),
        before,
        "CHECKSUM TABLE before the migration and after the restore"
    );
    assert_eq!(
        ok(app(
            &db,
            "SELECT COUNT(*) FROM information_schema.columns
             WHERE table_schema = 'webtoon' AND table_name = 'episodes' AND column_name = 'rating'"
        )),
        "0",
        "the column the migration added is gone"
    );
    assert!(
        !marker(&db).exists(),
        "a complete restore clears its marker"
    );
    // The trigger that writes into the dropped table works again.
    ok(app(
        &db,
        "INSERT INTO webtoon.episodes (title) VALUES ('new')",
    ));
    assert_eq!(ok(app(&db, "SELECT COUNT(*) FROM webtoon.audit")), "2001");
}

#[test]
fn a_backup_name_of_the_wrong_shape_is_refused_and_nothing_is_written() {
    let db = initialised("mariadb-badname");
    fill(&db);
    let dir = backup_dir(&db);
    for bad in [
        "../x.sql.gz",
        "../webtoon-20261201T030000Z.sql.gz",
        "sub/webtoon-20261201T030000Z.sql.gz",
        "otherdb-20261201T030000Z.sql.gz",
        "webtoon_x-20261201T030000Z.sql.gz",
        "webtoon-2026.sql.gz",
        "webtoon-20261201T0300Z.sql.gz",
        "webtoon-20261201T030000Z.sql",
        "webtoon-20261201T030000Z.sql.gz.bak",
        "webtoon-20261201T030000Zxsql.gz",
        "webtoon-20261201T030000Z.sql.gz\n",
        "webtoon-20261201T030000Z.sql.gz/x",
        " webtoon-20261201T030000Z.sql.gz",
    ] {
        let out = run_named_backup(&db, &dir, bad);
        assert!(!out.status.success(), "{bad:?} must be refused");
        assert!(
            text(&out).contains(
                "backup failed: WEBTOON_BACKUP_NAME must be webtoon-YYYYMMDDTHHMMSSZ.sql.gz"
            ),
            "{bad:?}: the message names the variable and the expected shape: {}",
            text(&out)
        );
        assert!(
            backups(&dir).is_empty(),
            "{bad:?}: nothing is written: {:?}",
            backups(&dir)
        );
    }
    assert!(
        !db.dir.0.join("x.sql.gz").exists()
            && !db.dir.0.join("webtoon-20261201T030000Z.sql.gz").exists(),
        "nothing is written outside the backup directory either"
    );

    // Empty is the same as absent: the current UTC time names the backup.
    let log = ok(run_named_backup(&db, &dir, ""));
    let files = backups(&dir);
    assert_eq!(files.len(), 1, "one time-named file: {files:?}");
    assert!(
        files[0].starts_with("webtoon-") && files[0].ends_with("Z.sql.gz"),
        "{files:?}"
    );
    assert!(log.contains(&format!("file={} ", files[0])), "{log}");
}

#[test]
fn a_named_backup_that_pruning_removes_at_once_is_reported_as_failed() {
    let db = initialised("mariadb-named-pruned");
    fill(&db);
    let dir = backup_dir(&db);
    // keep = 2, and two backups newer than the requested name already exist.
    let newer = [
        "webtoon-29980101T000000Z.sql.gz",
        "webtoon-29990101T000000Z.sql.gz",
    ];
    for n in newer {
        std::fs::write(dir.join(n), "newer").expect("seed a newer backup");
    }
    let name = "webtoon-20261201T030000Z.sql.gz";
    let out = run_named_backup(&db, &dir, name);
    assert!(
        !out.status.success(),
        "a backup that is gone must not be reported ok: {}",
        text(&out)
    );
    assert!(
        text(&out).contains(&format!(
            "backup failed: database=webtoon file={name}: pruning removed it"
        )),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("backup ok"), "{}", text(&out));
    assert_eq!(backups(&dir), newer.map(String::from).to_vec());
}
