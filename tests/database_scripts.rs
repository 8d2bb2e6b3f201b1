//! The rendered MariaDB init, backup, verify and restore scripts, run with bash
//! against a real MariaDB (Debian `mariadb-server`) on 127.0.0.1 that uses the
//! rendered `webtoon.cnf`. The scripts get the environment the CronJob and
//! StatefulSet set, with only the server address, the backup directory, the report
//! file and the restore marker pointed at the test's own.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::TempDir;
use common::servers::{MariaDb, ROOT_PASSWORD};
use common::{config_file, resolved_env, stack_from_yaml};
use k8s_openapi::api::core::v1::EnvVar;
use sha2::{Digest, Sha256};
use webtoon_operator::backup::description::{DESCRIPTION_FORMAT, Description, TableFacts};
use webtoon_operator::backup::report::{BackupReport, REPORT_FILE_ENV, Report, VerifyReport};
use webtoon_operator::render::database::backup_script::{
    BACKUP_DIR_ENV, BACKUP_LOCATION_ENV, BACKUP_NAME_ENV,
};
use webtoon_operator::render::database::verify_script::{
    VERIFY_FROM_ENV, VERIFY_WORK_ENV, verify_script,
};
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

/// A backup name the tests choose, as the operator does before a migration.
const NAMED: &str = "webtoon-20261201T030000Z.sql.gz";

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

/// `env` with `name` set to `value`, whether or not the rendered container sets it.
fn with_var(mut env: Vec<(String, String)>, name: &str, value: String) -> Vec<(String, String)> {
    env.retain(|(k, _)| k != name);
    env.push((name.to_string(), value));
    env
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
    let env = rendered_env(
        container.env.as_deref().unwrap_or_default(),
        &[
            ("WEBTOON_DB_HOST", "127.0.0.1".to_string()),
            ("WEBTOON_DB_PORT", db.port.to_string()),
            ("WEBTOON_BACKUP_DIR", dir.display().to_string()),
        ],
    );
    // In the pod the report is the termination message; here a file of the test's.
    with_var(env, REPORT_FILE_ENV, report_file(db).display().to_string())
}

fn report_file(db: &MariaDb) -> PathBuf {
    db.dir.0.join("report.json")
}

/// The report the last script run wrote: one line, short enough for a
/// termination message, that the operator's parser reads.
fn report(db: &MariaDb) -> Report {
    let text = std::fs::read_to_string(report_file(db)).expect("the script wrote a report");
    assert!(text.len() < 4096, "a report fits a termination message");
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text}");
    Report::parse(&text).unwrap_or_else(|| panic!("not a report: {text}"))
}

fn backup_report(db: &MariaDb) -> BackupReport {
    match report(db) {
        Report::Backup(r) => r,
        other => panic!("not a backup report: {other:?}"),
    }
}

fn verify_report(db: &MariaDb) -> VerifyReport {
    match report(db) {
        Report::Verify(r) => r,
        other => panic!("not a verify report: {other:?}"),
    }
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

/// The script failed and said `what`.
fn failed(out: &Output, what: &str) {
    assert!(
        !out.status.success(),
        "must fail with {what:?}: {}",
        text(out)
    );
    assert!(text(out).contains(what), "{what:?}: {}", text(out));
}

fn refused(out: Output, what: &str) {
    assert!(!out.status.success(), "{what} should be refused");
    assert!(
        text(&out).contains("denied"),
        "{what}: refused for lack of privilege: {}",
        text(&out)
    );
}

/// The value of `key=` in a script's log line.
fn log_field(log: &str, key: &str) -> String {
    log.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the log has {key}=: {log}"))
        .to_string()
}

/// A server with the rendered configuration and the rendered init script applied.
fn initialised(name: &str) -> MariaDb {
    let cnf = config_file(&children(), "datatoon-database-config", "webtoon.cnf");
    let db = MariaDb::start(name, &cnf);
    let init = script(&db, "datatoon-database-init", "10-webtoon-init.sh");
    let out = db.run_script(&init, &env_refs(&database_env(&[])));
    assert!(
        text(&out).contains("webtoon-init: database webtoon,"),
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

/// Every base table of `database` as the server holds it now, by name.
fn table_facts(db: &MariaDb, database: &str) -> Vec<TableFacts> {
    let names = ok(db.root(&format!(
        "SELECT table_name FROM information_schema.tables
         WHERE table_schema = '{database}' AND table_type = 'BASE TABLE' ORDER BY BINARY table_name"
    )));
    names
        .lines()
        .map(|table| {
            let rows = ok(db.root(&format!("SELECT COUNT(*) FROM `{database}`.`{table}`")));
            let checksum = ok(db.root(&format!("CHECKSUM TABLE `{database}`.`{table}`")));
            let checksum = checksum.rsplit('\t').next().expect("a checksum column");
            TableFacts {
                name: table.to_string(),
                rows: rows.parse().expect("a row count"),
                checksum: (checksum != "NULL").then(|| checksum.parse().expect("a checksum")),
            }
        })
        .collect()
}

/// Every file in `dir`, by name.
fn backups(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("backup dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The dumps in `dir`, by name.
fn dumps(dir: &Path) -> Vec<String> {
    backups(dir)
        .into_iter()
        .filter(|n| n.ends_with(".sql.gz"))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The description beside `name`, checked against the file it describes.
fn description(dir: &Path, name: &str) -> Description {
    let text = std::fs::read_to_string(dir.join(format!("{name}.json")))
        .unwrap_or_else(|e| panic!("{name} has a description: {e}"));
    let description: Description = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the description parses: {e}: {text}"));
    let dump = std::fs::read(dir.join(name)).expect("read the dump");
    assert_eq!(description.format, DESCRIPTION_FORMAT);
    assert_eq!(description.name, name);
    assert_eq!(description.database, "webtoon");
    assert_eq!(description.bytes, dump.len() as u64, "size of {name}");
    assert_eq!(description.sha256, sha256_hex(&dump), "SHA-256 of {name}");
    assert!(
        description.server.contains("MariaDB"),
        "{}",
        description.server
    );
    description
}

fn write_description(dir: &Path, description: &Description) {
    std::fs::write(
        dir.join(format!("{}.json", description.name)),
        serde_json::to_string(description).expect("serialize"),
    )
    .expect("write the description");
}

fn gunzip(path: &Path) -> Vec<u8> {
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .expect("gzip");
    assert!(out.status.success(), "gzip -dc {}", path.display());
    out.stdout
}

fn run_backup(db: &MariaDb, dir: &Path) -> Output {
    run_backup_with(db, backup_env(db, dir))
}

fn run_backup_with(db: &MariaDb, env: Vec<(String, String)>) -> Output {
    let _ = std::fs::remove_file(report_file(db));
    let backup = script(db, "datatoon-database-backup", "backup.sh");
    db.run_script(&backup, &env_refs(&env))
}

/// The backup script with the file name the operator chose for it, as before a
/// database migration.
fn run_named_backup(db: &MariaDb, dir: &Path, name: &str) -> Output {
    run_backup_with(
        db,
        with_var(backup_env(db, dir), BACKUP_NAME_ENV, name.to_string()),
    )
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

/// The verify script, with its throwaway server's directory in `work`.
fn run_verify(db: &MariaDb, dir: &Path, from: &str, work: &Path) -> Output {
    let _ = std::fs::remove_file(report_file(db));
    let path = db.dir.0.join("verify.sh");
    std::fs::write(&path, verify_script()).expect("write verify.sh");
    db.run_script(
        &path,
        &[
            ("WEBTOON_DB_NAME", "webtoon".to_string()),
            (BACKUP_DIR_ENV, dir.display().to_string()),
            (VERIFY_FROM_ENV, from.to_string()),
            (VERIFY_WORK_ENV, work.display().to_string()),
            (REPORT_FILE_ENV, report_file(db).display().to_string()),
        ],
    )
}

fn marker(db: &MariaDb) -> PathBuf {
    db.dir.0.join("restore-incomplete")
}

fn backup_dir(db: &MariaDb) -> PathBuf {
    let dir = db.dir.0.join("backups");
    std::fs::create_dir_all(&dir).expect("backup dir");
    dir
}

/// A directory of its own holding `files` (name, contents).
fn directory_with(db: &MariaDb, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = db.dir.0.join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    for (file, contents) in files {
        std::fs::write(dir.join(file), contents).expect("write");
    }
    dir
}

/// An empty application database, as a new stack's first start has it.
fn recreate_empty(db: &MariaDb) {
    ok(db.root("DROP DATABASE webtoon"));
    let init = script(db, "datatoon-database-init", "10-webtoon-init.sh");
    ok(db.run_script(&init, &env_refs(&database_env(&[]))));
}

/// Command lines of the running processes that mention `path`.
fn processes_mentioning(path: &Path) -> Vec<String> {
    let needle = format!("{}/", path.display());
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle))
        .collect()
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
    let files = dumps(&dir);
    assert_eq!(files.len(), 1, "one complete dump, no partial: {files:?}");
    assert!(files[0].ends_with("Z.sql.gz"));
    assert_eq!(
        backups(&dir),
        vec![files[0].clone(), format!("{}.json", files[0])],
        "the dump and its description, nothing else"
    );
    let described = description(&dir, &files[0]);
    assert_eq!(described.tables, table_facts(&db, "webtoon"));
    assert_eq!(
        described
            .tables
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["audit", "episodes"],
        "base tables only, no view"
    );
    let report = backup_report(&db);
    assert_eq!(report.result, "ok");
    assert_eq!(report.name.as_deref(), Some(files[0].as_str()));
    assert_eq!(report.time.as_deref(), Some(described.time.as_str()));
    assert_eq!(report.bytes, Some(described.bytes));
    assert_eq!(report.sha256.as_deref(), Some(described.sha256.as_str()));
    assert_eq!(report.tables, Some(2));
    let env = backup_env(&db, &dir);
    let prefix = env
        .iter()
        .find(|(k, _)| k == BACKUP_LOCATION_ENV)
        .map_or_else(|| format!("volume:{}", dir.display()), |(_, v)| v.clone());
    assert_eq!(
        report.location,
        Some(format!("{prefix}/{}", files[0])),
        "where the backup is kept"
    );
    assert_eq!(report.message, None);

    recreate_empty(&db);
    assert_eq!(ok(db.root("SHOW TABLES FROM webtoon")), "");
    let log = ok(run_restore(&db, &dir, "latest"));
    assert!(
        log.contains(&format!("restore ok: database=webtoon file={}", files[0]))
            && log.contains("described=yes tables=2"),
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
fn pruning_keeps_the_newest_n_described_backups_and_removes_older_leftovers() {
    let db = initialised("mariadb-prune");
    fill(&db);
    let dir = backup_dir(&db);
    let first = ok(run_backup(&db, &dir));
    assert!(first.contains("kept=1 pruned=0 leftovers=0"), "{first}");
    let real = dumps(&dir).remove(0);
    let dump = std::fs::read(dir.join(&real)).expect("read the dump");
    let json = std::fs::read(dir.join(format!("{real}.json"))).expect("read the description");
    // Three older described backups.
    for old in [
        "webtoon-20240101T030000Z.sql.gz",
        "webtoon-20250101T030000Z.sql.gz",
        "webtoon-20250601T030000Z.sql.gz",
    ] {
        std::fs::write(dir.join(old), &dump).expect("seed an older backup");
        std::fs::write(dir.join(format!("{old}.json")), &json).expect("and its description");
    }
    // Dumps without a description: not backups. Older than the oldest backup that
    // will be kept, between kept ones, and newer than the new one (a run still
    // writing its description).
    for leftover in [
        "webtoon-20230101T030000Z.sql.gz",
        "webtoon-20250301T030000Z.sql.gz",
        "webtoon-29990101T030000Z.sql.gz",
    ] {
        std::fs::write(dir.join(leftover), &dump).expect("seed a leftover");
    }
    // Files the backup job did not write.
    std::fs::write(dir.join("notes.txt"), "keep me").expect("notes");
    std::fs::write(dir.join("other-20200101T030000Z.sql.gz"), &dump).expect("other");
    std::fs::remove_file(dir.join(&real)).expect("make room for the next run");
    std::fs::remove_file(dir.join(format!("{real}.json"))).expect("and its description");

    // Every rm the script runs, in order.
    let bin = db.dir.0.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let removals = db.dir.0.join("removals.log");
    std::fs::write(
        bin.join("rm"),
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec /bin/rm \"$@\"\n",
            removals.display()
        ),
    )
    .expect("rm wrapper");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(bin.join("rm"))
        .status()
        .expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log = ok(run_backup_with(
        &db,
        with_var(backup_env(&db, &dir), "PATH", path),
    ));
    assert!(log.contains("kept=2 pruned=2 leftovers=2"), "{log}");
    let newest = log_field(&log, "file");
    assert_eq!(
        backups(&dir),
        vec![
            "notes.txt".to_string(),
            "other-20200101T030000Z.sql.gz".to_string(),
            "webtoon-20250601T030000Z.sql.gz".to_string(),
            "webtoon-20250601T030000Z.sql.gz.json".to_string(),
            newest.clone(),
            format!("{newest}.json"),
            "webtoon-29990101T030000Z.sql.gz".to_string(),
        ],
        "keep = 2: the two newest described backups, the leftover that may still be \
         getting its description, and the files the job did not write"
    );
    let removals = std::fs::read_to_string(&removals).expect("removals log");
    let position = |file: &str| {
        removals
            .lines()
            .position(|l| l == format!("-f -- {}", dir.join(file).display()))
            .unwrap_or_else(|| panic!("{file} removed: {removals}"))
    };
    for pruned in [
        "webtoon-20240101T030000Z.sql.gz",
        "webtoon-20250101T030000Z.sql.gz",
    ] {
        assert!(
            position(&format!("{pruned}.json")) < position(pruned),
            "the description goes first, so no described backup lacks its dump: {removals}"
        );
    }
}

/// Dumps taken before backups were described: checked by gzip and their final line.
#[test]
fn an_undescribed_dump_restores_and_a_corrupt_or_cut_short_one_is_refused_before_anything_is_loaded()
 {
    let db = initialised("mariadb-corrupt");
    fill(&db);
    let before = checksums(&db);
    let dir = backup_dir(&db);
    ok(run_backup(&db, &dir));
    let good = dumps(&dir).remove(0);
    // As a backup taken before descriptions existed.
    std::fs::remove_file(dir.join(format!("{good}.json"))).expect("remove the description");
    let bytes = std::fs::read(dir.join(&good)).expect("read backup");

    // A file cut in the middle (an interrupted copy), newer than the good one.
    let truncated = "webtoon-29990101T000000Z.sql.gz";
    std::fs::write(dir.join(truncated), &bytes[..bytes.len() / 2]).expect("truncated copy");
    // A well-formed gzip of a dump that stops half way (an interrupted dump).
    let cut = "webtoon-29980101T000000Z.sql.gz";
    let sql = String::from_utf8(gunzip(&dir.join(&good))).expect("utf-8 dump");
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
    let log = ok(run_restore(&db, &dir, &good));
    assert!(
        log.contains(&format!("restore: {good} has no description")),
        "the log says what was not checked: {log}"
    );
    assert!(log.contains("described=no"), "{log}");
    assert_eq!(checksums(&db), before);
    assert!(!marker(&db).exists());

    // A backup that fails leaves no file behind, and reports why.
    let empty = db.dir.0.join("failed-backups");
    std::fs::create_dir_all(&empty).expect("dir");
    let env = with_var(
        backup_env(&db, &empty),
        "WEBTOON_DB_PASSWORD",
        "wrong".to_string(),
    );
    let out = run_backup_with(&db, env);
    failed(&out, "backup failed: database=webtoon");
    assert!(
        backups(&empty).is_empty(),
        "no partial or broken file is left"
    );
    let report = backup_report(&db);
    assert_eq!(report.result, "failed");
    let message = report.message.expect("a failure says why");
    assert!(
        message.contains("Access denied") && text(&out).contains(&message),
        "the report says what the log says: {message}"
    );
    assert!(report.name.is_some_and(|n| n.starts_with("webtoon-")));
    assert_eq!(report.sha256, None);
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
        vec![name.to_string(), format!("{name}.json")],
        "exactly the requested name and its description, no time-named or partial file"
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
    let files = dumps(&dir);
    assert_eq!(files.len(), 1, "one time-named dump: {files:?}");
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
        std::fs::write(dir.join(format!("{n}.json")), "{}").expect("and its description");
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
    assert_eq!(
        backups(&dir),
        newer
            .iter()
            .flat_map(|n| [n.to_string(), format!("{n}.json")])
            .collect::<Vec<_>>(),
        "neither the dump nor its description is left"
    );
    let report = backup_report(&db);
    assert_eq!(report.result, "failed");
    assert!(
        report
            .message
            .is_some_and(|m| m.contains("pruning removed it")),
        "the report says why"
    );
}

/// What the backup's descriptions rest on: `CHECKSUM TABLE` and `COUNT(*)` inside a
/// `REPEATABLE READ` snapshot see the snapshot's rows, not rows committed after it.
#[test]
fn checksum_table_in_a_snapshot_ignores_rows_committed_after_it() {
    use std::io::{BufRead, BufReader};
    let db = initialised("mariadb-snapshot");
    ok(db.root(
        "USE webtoon;
         CREATE TABLE webtoon.t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO webtoon.t SELECT seq, seq FROM seq_1_to_100",
    ));
    let mut session = db.root_session();
    let mut input = session.stdin.take().expect("session stdin");
    let mut output = BufReader::new(session.stdout.take().expect("session stdout"));
    let mut facts = |sql: &str| {
        writeln!(
            input,
            "{sql} CHECKSUM TABLE webtoon.t; SELECT COUNT(*) FROM webtoon.t;"
        )
        .expect("write to the session");
        let mut lines = [String::new(), String::new()];
        for line in &mut lines {
            output.read_line(line).expect("read the session");
        }
        lines.map(|l| l.trim().to_string())
    };
    let in_snapshot = facts(
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;
         START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY;",
    );
    let outside = || {
        [
            ok(db.root("CHECKSUM TABLE webtoon.t")),
            ok(db.root("SELECT COUNT(*) FROM webtoon.t")),
        ]
    };
    assert_eq!(in_snapshot, outside(), "the same data before any write");
    ok(db.root(
        "INSERT INTO webtoon.t VALUES (101, 'new');
         UPDATE webtoon.t SET v = 'changed' WHERE id = 5;
         DELETE FROM webtoon.t WHERE id = 7",
    ));
    assert_ne!(outside()[0], in_snapshot[0], "the writes changed the table");
    assert_eq!(
        facts(""),
        in_snapshot,
        "the snapshot still sees its own rows"
    );
    assert_eq!(
        facts("COMMIT;"),
        outside(),
        "after the snapshot ends, the new rows"
    );
    drop(input);
    assert!(session.wait().expect("session ends").success());
}

/// The facts a description holds are those of the data in its dump, to the row,
/// while the application inserts, updates and deletes across tables throughout.
#[test]
fn descriptions_match_what_their_dumps_restore_to_while_the_site_writes() {
    let db = initialised("mariadb-concurrent");
    fill(&db);
    // Enough data that a dump takes a while, so that writes land during it.
    ok(app(
        &db,
        "USE webtoon;
         CREATE TABLE webtoon.pages (id INT PRIMARY KEY, episode INT NOT NULL, views BIGINT NOT NULL DEFAULT 0, image VARCHAR(300));
         INSERT INTO webtoon.pages SELECT seq, seq % 2000 + 1, 0, REPEAT(SHA2(seq, 256), 4) FROM seq_1_to_20000;",
    ));
    let dir = backup_dir(&db);
    let copy = MariaDb::start(
        "mariadb-concurrent-copy",
        &config_file(&children(), "datatoon-database-config", "webtoon.cnf"),
    );
    let count = || -> u64 {
        ok(db.root("SELECT COUNT(*) FROM webtoon.episodes"))
            .parse()
            .expect("a count")
    };

    // The site: one connection writing without pause, bounded in statements and
    // stopped when the backups are done.
    let mut writer = db.user_session("webtoon", APP_PASSWORD);
    let mut input = writer.stdin.take().expect("writer stdin");
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || -> std::io::Result<u64> {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 200_000 {
                writeln!(
                    input,
                    "INSERT INTO webtoon.episodes (title, body) VALUES ('w{i}', 'b{i}');
                     UPDATE webtoon.pages SET views = views + 1 WHERE id = {page};
                     START TRANSACTION;
                     UPDATE webtoon.episodes SET body = CONCAT(body, 'u') WHERE id = {episode};
                     DELETE FROM webtoon.audit WHERE id = {audit};
                     UPDATE webtoon.pages SET views = views - 1, image = 'x' WHERE id = {page};
                     COMMIT;",
                    page = i * 7919 % 20000 + 1,
                    episode = i % 2000 + 1,
                    audit = i + 1,
                )?;
                i += 1;
            }
            Ok(i)
        })
    };
    let mut wait_for_writes_beyond = |rows: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while count() <= rows + 20 {
            if Instant::now() > deadline || matches!(writer.try_wait(), Ok(Some(_))) {
                let _ = writer.kill();
                let mut errors = String::new();
                if let Some(mut stderr) = writer.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut errors);
                }
                panic!("the writer stopped making progress: {errors}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    let mut seen = count();
    let mut lock_ms = Vec::new();
    for round in 1..=3 {
        wait_for_writes_beyond(seen);
        let name = format!("webtoon-2026120{round}T030000Z.sql.gz");
        let log = ok(run_named_backup(&db, &dir, &name));
        lock_ms.push((log_field(&log, "lock_ms"), log_field(&log, "lock_attempts")));
        let described = description(&dir, &name);
        let report = backup_report(&db);
        assert_eq!(
            (report.result.as_str(), report.name.as_deref()),
            ("ok", Some(name.as_str()))
        );
        assert_eq!(report.sha256.as_deref(), Some(described.sha256.as_str()));
        assert_eq!(report.tables, Some(3));

        // Loaded into a server of its own: the dump names its trigger's database.
        ok(copy.root("DROP DATABASE IF EXISTS webtoon; CREATE DATABASE webtoon"));
        ok(copy.root_input("webtoon", &gunzip(&dir.join(&name))));
        assert_eq!(
            table_facts(&copy, "webtoon"),
            described.tables,
            "round {round}: the description is the dump's data"
        );
        let episodes = described
            .tables
            .iter()
            .find(|t| t.name == "episodes")
            .expect("episodes described")
            .rows;
        assert!(
            episodes > seen,
            "round {round}: the backup holds writes made before it"
        );
        seen = episodes;
    }
    wait_for_writes_beyond(seen);
    stop.store(true, Ordering::Relaxed);
    let statements = feeder
        .join()
        .expect("feeder thread")
        .expect("the writer took every statement");
    let out = writer.wait_with_output().expect("writer ends");
    assert!(
        out.status.success(),
        "no write failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "lock held (ms) and attempts per backup: {lock_ms:?}; writer batches sent: {statements}; \
         episodes at the end: {}",
        count()
    );

    // The last backup verifies too.
    let work = TempDir(std::env::temp_dir().join(format!("wv-c-{}", std::process::id())));
    std::fs::create_dir_all(&work.0).expect("work dir");
    let log = ok(run_verify(&db, &dir, "latest", &work.0));
    assert!(
        log.contains("verify passed: database=webtoon file=webtoon-20261203T030000Z.sql.gz"),
        "{log}"
    );
    eprintln!("{log}");
}

/// The backup's lock never waits while a transaction uses a table: it tries again,
/// so the transaction goes on and commits (no deadlock), and the backup then
/// describes the committed data.
#[test]
fn a_backup_retries_its_lock_while_a_transaction_is_open_and_the_transaction_commits() {
    use std::io::{BufRead, BufReader};
    let db = initialised("mariadb-open-transaction");
    fill(&db);
    let dir = backup_dir(&db);
    let lock_statements = || -> u64 {
        let status = ok(db.root("SHOW GLOBAL STATUS LIKE 'Com_lock_tables'"));
        status
            .rsplit('\t')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a counter")
    };
    let mut session = db.root_session();
    let mut input = session.stdin.take().expect("session stdin");
    let mut output = BufReader::new(session.stdout.take().expect("session stdout"));
    let mut step = |sql: &str| {
        writeln!(input, "{sql} SELECT 'done';").expect("write to the session");
        let mut line = String::new();
        output.read_line(&mut line).expect("read the session");
        assert_eq!(line.trim(), "done", "{sql} succeeded");
    };
    step("START TRANSACTION; UPDATE webtoon.episodes SET body = 'in a transaction' WHERE id = 1;");
    let attempts_before = lock_statements();
    std::thread::scope(|scope| {
        let backup = scope.spawn(|| run_named_backup(&db, &dir, NAMED));
        // Held until the backup has tried, and failed, to lock twice.
        let deadline = Instant::now() + Duration::from_secs(60);
        while lock_statements() < attempts_before + 2 {
            assert!(Instant::now() < deadline, "the backup tries to lock");
            std::thread::sleep(Duration::from_millis(20));
        }
        step("UPDATE webtoon.audit SET episode = 0 WHERE id = 1; COMMIT;");
        let log = ok(backup.join().expect("backup thread"));
        let attempts: u32 = log_field(&log, "lock_attempts").parse().expect("a count");
        assert!(attempts >= 3, "failed twice, then locked: {log}");
    });
    let described = description(&dir, NAMED);
    assert_eq!(
        described.tables,
        table_facts(&db, "webtoon"),
        "the backup holds the committed transaction"
    );
    drop(input);
    assert!(session.wait().expect("session ends").success());
}

#[test]
fn a_restore_checks_the_dump_against_its_description_before_and_after_loading() {
    let db = initialised("mariadb-restore-described");
    fill(&db);
    let before = checksums(&db);
    let dir = backup_dir(&db);
    ok(run_named_backup(&db, &dir, NAMED));
    let dump = std::fs::read(dir.join(NAMED)).expect("read the dump");
    let json = std::fs::read(dir.join(format!("{NAMED}.json"))).expect("read the description");
    let described = description(&dir, NAMED);
    let json_name = format!("{NAMED}.json");

    // A dump that does not match its description is never loaded.
    let mut flipped = dump.clone();
    flipped[dump.len() / 2] ^= 0x01;
    let truncated = &dump[..dump.len() - 10];
    for (case, contents, what) in [
        ("flipped", flipped.as_slice(), "has SHA-256"),
        ("truncated", truncated, "bytes, its description says"),
    ] {
        let bad = directory_with(
            &db,
            case,
            &[(NAMED, contents), (json_name.as_str(), json.as_slice())],
        );
        recreate_empty(&db);
        let out = run_restore(&db, &bad, "latest");
        failed(
            &out,
            &format!("restore failed: database=webtoon from=latest: {NAMED} "),
        );
        failed(&out, what);
        failed(&out, "it is not loaded");
        assert_eq!(
            ok(db.root("SHOW TABLES FROM webtoon")),
            "",
            "{case}: nothing was loaded"
        );
        assert!(marker(&db).exists(), "{case}: the pod stays unready");
    }

    // A dump that loads into tables other than its description says fails the
    // restore after the load, and the pod stays unready.
    let mut edited = described.clone();
    for table in &mut edited.tables {
        if table.name == "episodes" {
            table.rows = 1999;
        }
    }
    let differs = directory_with(&db, "differs", &[(NAMED, dump.as_slice())]);
    write_description(&differs, &edited);
    recreate_empty(&db);
    let out = run_restore(&db, &differs, NAMED);
    failed(
        &out,
        "does not restore to what its description says: table episodes: 2000 rows, the description says 1999",
    );
    assert!(marker(&db).exists(), "the pod stays unready");

    // `latest` is the newest described backup, not a newer dump without one.
    std::fs::write(dir.join("webtoon-29990101T000000Z.sql.gz"), "not a backup")
        .expect("a newer undescribed file");
    recreate_empty(&db);
    let log = ok(run_restore(&db, &dir, "latest"));
    assert!(
        log.contains(&format!("restore ok: database=webtoon file={NAMED} "))
            && log.contains("described=yes tables=2"),
        "{log}"
    );
    assert_eq!(checksums(&db), before);
    assert!(
        !marker(&db).exists(),
        "a complete restore clears its marker"
    );
}

#[test]
fn verify_passes_a_sound_backup_and_names_what_is_wrong_with_a_damaged_one() {
    let db = initialised("mariadb-verify");
    fill(&db);
    let dir = backup_dir(&db);
    ok(run_named_backup(&db, &dir, NAMED));
    let dump = std::fs::read(dir.join(NAMED)).expect("read the dump");
    let described = description(&dir, NAMED);
    let live = || (checksums(&db), ok(db.root("SHOW DATABASES")));
    let live_before = live();
    // A short path: the throwaway server's socket lives there.
    let work = TempDir(std::env::temp_dir().join(format!("wv-{}", std::process::id())));
    std::fs::create_dir_all(&work.0).expect("work dir");
    let left_nothing = |case: &str| {
        assert_eq!(
            backups(&work.0),
            Vec::<String>::new(),
            "{case}: the throwaway data directory is gone"
        );
        assert_eq!(
            processes_mentioning(&work.0),
            Vec::<String>::new(),
            "{case}: the throwaway server is stopped"
        );
    };

    let started = Instant::now();
    let log = ok(run_verify(&db, &dir, "latest", &work.0));
    let took = started.elapsed();
    assert!(
        log.starts_with(&format!(
            "verify passed: database=webtoon file={NAMED} tables=2 "
        )),
        "{log}"
    );
    let report = verify_report(&db);
    assert_eq!(report.result, "passed");
    assert_eq!(report.name.as_deref(), Some(NAMED));
    assert_eq!(report.tables, Some(2));
    assert!(report.load_seconds.is_some());
    assert_eq!(report.message, None);
    left_nothing("passed");
    eprintln!("{log}; whole run {} ms", took.as_millis());

    let mut flipped = dump.clone();
    flipped[dump.len() / 2] ^= 0x01;
    let truncated = &dump[..dump.len() / 2];
    let mut fewer_rows = described.clone();
    let mut other_checksum = described.clone();
    let mut extra_table = described.clone();
    for table in &mut fewer_rows.tables {
        if table.name == "episodes" {
            table.rows -= 1;
        }
    }
    for table in &mut other_checksum.tables {
        if table.name == "audit" {
            table.checksum = table.checksum.map(|c| c ^ 1);
        }
    }
    extra_table.tables.push(TableFacts {
        name: "ghost".to_string(),
        rows: 0,
        checksum: Some(0),
    });
    let audit_checksum = described
        .tables
        .iter()
        .find(|t| t.name == "audit")
        .and_then(|t| t.checksum)
        .expect("audit has a checksum");
    // Each damaged backup alone in a directory: the dump and its description.
    let damaged = |case: &str, dump: &[u8], description: &Description| {
        let dir = directory_with(&db, case, &[(NAMED, dump)]);
        write_description(&dir, description);
        dir
    };
    let cases = [
        (
            "flipped",
            damaged("flipped", &flipped, &described),
            "latest",
            format!("{NAMED} has SHA-256 "),
        ),
        (
            "truncated",
            damaged("truncated", truncated, &described),
            "latest",
            format!(
                "{NAMED} is {} bytes, its description says {}",
                truncated.len(),
                dump.len()
            ),
        ),
        (
            "fewer-rows",
            damaged("fewer-rows", &dump, &fewer_rows),
            "latest",
            "table episodes: 2000 rows, the description says 1999".to_string(),
        ),
        (
            "other-checksum",
            damaged("other-checksum", &dump, &other_checksum),
            NAMED,
            format!(
                "table audit: checksum {audit_checksum}, the description says {}",
                audit_checksum ^ 1
            ),
        ),
        (
            "extra-table",
            damaged("extra-table", &dump, &extra_table),
            "latest",
            "table ghost is in the description but not in the loaded dump".to_string(),
        ),
    ];
    for (case, damaged, from, what) in cases {
        let out = run_verify(&db, &damaged, from, &work.0);
        failed(
            &out,
            &format!("verify failed: database=webtoon file={NAMED}: "),
        );
        failed(&out, &what);
        let report = verify_report(&db);
        assert_eq!(report.result, "failed", "{case}");
        assert_eq!(report.name.as_deref(), Some(NAMED), "{case}");
        assert!(
            report.message.as_deref().is_some_and(|m| m.contains(&what)),
            "{case}: {report:?}"
        );
        left_nothing(case);
    }

    // A description that is not one is no better than none.
    let unparseable = directory_with(
        &db,
        "unparseable",
        &[
            (NAMED, dump.as_slice()),
            (
                &format!("{NAMED}.json"),
                b"{\"format\": \"webtoon.io/backup-v1\", ",
            ),
        ],
    );
    let out = run_verify(&db, &unparseable, "latest", &work.0);
    failed(
        &out,
        &format!("{NAMED}.json is not valid JSON: it is not loaded"),
    );
    assert_eq!(verify_report(&db).result, "failed");
    left_nothing("unparseable");

    // Without its description, a dump is no backup.
    let bare = directory_with(&db, "bare", &[(NAMED, dump.as_slice())]);
    let out = run_verify(&db, &bare, NAMED, &work.0);
    failed(
        &out,
        &format!(
            "{NAMED}.json does not exist: without its description {NAMED} is not a complete backup"
        ),
    );
    assert_eq!(verify_report(&db).name.as_deref(), Some(NAMED));
    let out = run_verify(&db, &bare, "latest", &work.0);
    failed(&out, "no described backup in");
    let report = verify_report(&db);
    assert_eq!((report.result.as_str(), report.name), ("failed", None));
    left_nothing("bare");

    assert_eq!(live(), live_before, "the live server is untouched");
}
