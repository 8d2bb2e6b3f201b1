//! Backups in S3-compatible object storage, through the operator's own binary
//! (`webtoon-operator backup upload|fetch`, as the backup, restore and verify Jobs
//! run it) against a real S3 server (versitygw) on 127.0.0.1 with TLS: uploads,
//! retention, fetches that refuse damaged backups, uploads cut off halfway, and the
//! errors a user meets first.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::process::sigterm;
use common::s3::{FreezingRelay, S3Server, make_ca};
use sha2::{Digest, Sha256};
use webtoon_operator::backup::catalog::Catalog;
use webtoon_operator::backup::description::{
    DESCRIPTION_FORMAT, Description, TableFacts, description_name,
};
use webtoon_operator::backup::object_store::{BackupStore, StoreConfig};
use webtoon_operator::backup::report::{BackupReport, Report};

const DATABASE: &str = "webtoon";
const BUCKET: &str = "backups";
const PREFIX: &str = "webtoon/minitoon/";
/// Large enough for a multipart upload of three parts.
const LARGE_SQL_BYTES: usize = 24 << 20;

/// A backup written into a directory the way the dump step writes one.
struct LocalBackup {
    name: String,
    dump: Vec<u8>,
    description: Vec<u8>,
    report: PathBuf,
}

/// Writes `<name>` (gzip'd SQL of about `sql_bytes` that compresses little), its
/// description and the dump step's report into `dir`.
fn write_backup(dir: &Path, stamp: &str, sql_bytes: usize) -> LocalBackup {
    std::fs::create_dir_all(dir).expect("backup dir");
    let name = format!("{DATABASE}-{stamp}.sql.gz");
    let mut sql = format!(
        "-- MariaDB dump of {DATABASE} at {stamp}\nCREATE TABLE episodes (id INT PRIMARY KEY, body TEXT);\n"
    );
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = stamp.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |s, b| {
        s.rotate_left(5) ^ u64::from(b)
    });
    let mut row = 0;
    while sql.len() < sql_bytes {
        row += 1;
        let body: String = (0..1000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ALPHABET[(state % 64) as usize] as char
            })
            .collect();
        sql.push_str(&format!("INSERT INTO episodes VALUES ({row},'{body}');\n"));
    }
    sql.push_str("-- Dump completed\n");
    let mut gzip = Command::new("gzip")
        .arg("-6")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip runs");
    let mut stdin = gzip.stdin.take().expect("gzip stdin");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(sql.as_bytes()).expect("feed gzip");
    });
    let out = gzip.wait_with_output().expect("gzip finishes");
    writer.join().expect("gzip fed");
    assert!(out.status.success(), "gzip: {out:?}");
    let dump = out.stdout;
    let sha256: String = Sha256::digest(&dump)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let time = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    let described = Description {
        format: DESCRIPTION_FORMAT.to_string(),
        name: name.clone(),
        database: DATABASE.to_string(),
        time: time.clone(),
        bytes: dump.len() as u64,
        sha256: sha256.clone(),
        seconds: 2,
        server: "11.8.3-MariaDB".to_string(),
        tables: vec![
            TableFacts {
                name: "episodes".to_string(),
                rows: row,
                checksum: Some(42),
            },
            TableFacts {
                name: "series".to_string(),
                rows: 0,
                checksum: None,
            },
        ],
    };
    let description = serde_json::to_vec(&described).expect("description JSON");
    std::fs::write(dir.join(&name), &dump).expect("write dump");
    std::fs::write(dir.join(description_name(&name)), &description).expect("write description");
    let report = dir.join(format!("{name}.report"));
    let dumped = Report::Backup(BackupReport {
        result: "ok".to_string(),
        name: Some(name.clone()),
        time: Some(time),
        bytes: Some(dump.len() as u64),
        sha256: Some(sha256),
        tables: Some(2),
        seconds: Some(2),
        ..BackupReport::default()
    });
    std::fs::write(
        &report,
        serde_json::to_string(&dumped).expect("report JSON"),
    )
    .expect("write report");
    LocalBackup {
        name,
        dump,
        description,
        report,
    }
}

/// The environment of a backup Job against `server`, reporting to `report`.
fn job_env(server: &S3Server, report: &Path, keep: usize) -> Vec<(String, String)> {
    let mut env = server.env(BUCKET, PREFIX);
    env.push(("WEBTOON_DB_NAME".to_string(), DATABASE.to_string()));
    env.push(("WEBTOON_BACKUP_KEEP".to_string(), keep.to_string()));
    env.push((
        "WEBTOON_REPORT_FILE".to_string(),
        report.display().to_string(),
    ));
    env
}

fn set(env: &mut Vec<(String, String)>, var: &str, value: &str) {
    env.retain(|(k, _)| k != var);
    env.push((var.to_string(), value.to_string()));
}

/// `webtoon-operator backup <args>` with exactly `env`.
fn operator(env: &[(String, String)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_webtoon-operator"));
    command
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("backup")
        .args(args);
    command
}

fn run(env: &[(String, String)], args: &[&str]) -> Output {
    operator(env, args).output().expect("webtoon-operator runs")
}

fn upload(env: &[(String, String)], dir: &Path, backup: &LocalBackup) -> Output {
    run(
        env,
        &[
            "upload",
            "--dir",
            &dir.display().to_string(),
            "--dump-report",
            &backup.report.display().to_string(),
        ],
    )
}

fn fetch(env: &[(String, String)], into: &Path, from: &str) -> Output {
    std::fs::create_dir_all(into).expect("fetch dir");
    run(
        env,
        &[
            "fetch",
            "--dir",
            &into.display().to_string(),
            "--from",
            from,
        ],
    )
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn backup_report(path: &Path) -> BackupReport {
    let line = std::fs::read_to_string(path).expect("report written");
    match Report::parse(&line) {
        Some(Report::Backup(report)) => report,
        other => panic!("not a backup report: {line:?} ({other:?})"),
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The library's client on `prefix` of the server's bucket, to look at and tamper
/// with what the binary wrote.
struct Bucket {
    runtime: tokio::runtime::Runtime,
    store: BackupStore,
}

impl Bucket {
    fn new(server: &S3Server, prefix: &str) -> Bucket {
        let env = server.env(BUCKET, prefix);
        let config = StoreConfig::from_vars(|var| {
            env.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
        })
        .expect("store config");
        Bucket {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            store: BackupStore::connect(config).expect("store client"),
        }
    }

    fn names(&self) -> Vec<String> {
        let mut names = self
            .runtime
            .block_on(self.store.names())
            .expect("list the prefix");
        names.sort();
        names
    }

    fn read(&self, name: &str) -> Option<Vec<u8>> {
        self.runtime
            .block_on(self.store.read(name))
            .expect("read an object")
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        self.runtime
            .block_on(self.store.write(name, bytes.to_vec()))
            .expect("write an object");
    }

    fn size(&self, name: &str) -> Option<u64> {
        self.runtime
            .block_on(self.store.size(name))
            .expect("head an object")
    }
}

fn start(name: &str) -> (S3Server, Bucket) {
    let server = S3Server::start(name, true);
    server.create_bucket(BUCKET);
    let bucket = Bucket::new(&server, PREFIX);
    (server, bucket)
}

#[test]
fn an_upload_is_a_dump_then_its_description_and_fetches_back_identical() {
    let (server, bucket) = start("s3-upload");
    let work = &server.dir.0;
    let local = work.join("backups");
    let backup = write_backup(&local, "20261201T030000Z", LARGE_SQL_BYTES);
    assert!(
        backup.dump.len() as u64 > 2 * webtoon_operator::backup::object_store::PART_BYTES,
        "the dump needs several parts: {} bytes",
        backup.dump.len()
    );
    let report = work.join("report.json");
    let env = job_env(&server, &report, 3);

    let out = upload(&env, &local, &backup);
    assert!(out.status.success(), "{}", text(&out));
    let location = format!("s3://{BUCKET}/{PREFIX}{}", backup.name);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "backup uploaded: database={DATABASE} file={} bytes={} location={location} ",
            backup.name,
            backup.dump.len()
        )),
        "{}",
        text(&out)
    );
    let reported = backup_report(&report);
    assert_eq!(reported.result, "ok");
    assert_eq!(reported.name.as_deref(), Some(backup.name.as_str()));
    assert_eq!(reported.location.as_deref(), Some(location.as_str()));
    assert_eq!(reported.bytes, Some(backup.dump.len() as u64));
    assert_eq!(reported.tables, Some(2));
    assert_eq!(reported.time.as_deref(), Some("2026-12-01T03:00:00Z"));

    assert_eq!(
        bucket.names(),
        [backup.name.clone(), description_name(&backup.name)]
    );
    assert_eq!(bucket.size(&backup.name), Some(backup.dump.len() as u64));
    assert_eq!(
        bucket.read(&description_name(&backup.name)),
        Some(backup.description.clone())
    );
    assert_eq!(server.open_multipart_uploads(BUCKET), 0);

    // A retried Job never replaces a backup of the same name.
    let out = upload(&env, &local, &backup);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "upload {location} failed: a backup with this name already exists"
        )),
        "{}",
        text(&out)
    );

    let fetched = work.join("fetched");
    let out = fetch(&env, &fetched, "latest");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(&format!(
            "backup fetched: database={DATABASE} file={} bytes={}",
            backup.name,
            backup.dump.len()
        )),
        "{}",
        text(&out)
    );
    assert_eq!(
        files(&fetched),
        [backup.name.clone(), description_name(&backup.name)]
    );
    assert!(std::fs::read(fetched.join(&backup.name)).expect("fetched dump") == backup.dump);
    assert_eq!(
        std::fs::read(fetched.join(description_name(&backup.name))).expect("description"),
        backup.description
    );
}

#[test]
fn retention_keeps_the_newest_and_touches_nothing_else() {
    let (server, bucket) = start("s3-retention");
    let work = &server.dir.0;
    let keep = 2;
    let report = work.join("report.json");
    let env = job_env(&server, &report, keep);

    // Same-shaped names of another stack beside the prefix, and inside it names that
    // are not this database's backups: none may be touched.
    let other_stack = Bucket::new(&server, "webtoon/other/");
    let foreign_dump = "webtoon-20200101T000000Z.sql.gz";
    other_stack.write(foreign_dump, b"another stack's dump");
    other_stack.write(&description_name(foreign_dump), b"{}");
    let deeper = Bucket::new(&server, &format!("{PREFIX}archive/"));
    deeper.write(foreign_dump, b"an archived dump");
    let untouchable = [
        "notes.txt",
        "other-20200101T000000Z.sql.gz",
        "other-20200101T000000Z.sql.gz.json",
        "webtoon-20200101T000000Z.sql.gz.partial",
    ];
    for name in untouchable {
        bucket.write(name, b"not a backup of this database");
    }
    // Leftovers older than any backup: a dump never described and a description
    // whose dump is gone. And an upload under way, newer than every backup.
    let never_described = "webtoon-20200102T000000Z.sql.gz";
    bucket.write(never_described, b"cut off");
    let orphaned = description_name("webtoon-20200103T000000Z.sql.gz");
    bucket.write(&orphaned, b"{}");
    let in_flight = "webtoon-20261231T000000Z.sql.gz";
    bucket.write(in_flight, b"still uploading");

    let local = work.join("backups");
    let mut uploaded = Vec::new();
    for day in 1..=keep + 2 {
        let backup = write_backup(&local, &format!("202612{day:02}T030000Z"), 64 << 10);
        let out = upload(&env, &local, &backup);
        assert!(out.status.success(), "{}", text(&out));
        let kept = day.min(keep);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!(" kept={kept} ")),
            "{}",
            text(&out)
        );
        uploaded.push(backup);
    }

    let names = bucket.names();
    let catalog = Catalog::new(names.iter().map(String::as_str), DATABASE);
    let newest: Vec<String> = uploaded[uploaded.len() - keep..]
        .iter()
        .map(|b| b.name.clone())
        .collect();
    assert_eq!(catalog.described, newest);
    let mut expected: Vec<String> = untouchable.iter().map(|n| n.to_string()).collect();
    expected.push(in_flight.to_string());
    for name in &newest {
        expected.push(name.clone());
        expected.push(description_name(name));
    }
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!(
        other_stack.names(),
        [foreign_dump.to_string(), description_name(foreign_dump)]
    );
    assert_eq!(deeper.names(), [foreign_dump]);

    let fetched = work.join("fetched");
    let out = fetch(&env, &fetched, "latest");
    assert!(out.status.success(), "{}", text(&out));
    let latest = uploaded.last().expect("uploads");
    assert_eq!(
        files(&fetched),
        [latest.name.clone(), description_name(&latest.name)]
    );
    assert!(std::fs::read(fetched.join(&latest.name)).expect("dump") == latest.dump);
}

#[test]
fn fetch_refuses_a_truncated_an_altered_or_an_undescribed_dump() {
    let (server, bucket) = start("s3-fetch");
    let work = &server.dir.0;
    let report = work.join("report.json");
    let mut env = job_env(&server, &report, 5);
    let local = work.join("backups");
    let older = write_backup(&local, "20261201T030000Z", 64 << 10);
    let newer = write_backup(&local, "20261202T030000Z", 64 << 10);
    for backup in [&older, &newer] {
        let out = upload(&env, &local, backup);
        assert!(out.status.success(), "{}", text(&out));
    }
    let location = |name: &str| format!("s3://{BUCKET}/{PREFIX}{name}");

    // A newer dump without a description is not a backup: latest skips it, and
    // asking for it by name is refused.
    let undescribed = "webtoon-20261203T030000Z.sql.gz";
    bucket.write(undescribed, b"half a dump");
    let into = work.join("latest");
    let out = fetch(&env, &into, "latest");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        files(&into),
        [newer.name.clone(), description_name(&newer.name)]
    );
    let into = work.join("undescribed");
    let out = fetch(&env, &into, undescribed);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("{}.json is missing", location(undescribed))),
        "{}",
        text(&out)
    );
    assert!(files(&into).is_empty(), "{:?}", files(&into));

    // Truncated in the bucket.
    bucket.write(&newer.name, &newer.dump[..newer.dump.len() / 2]);
    let into = work.join("truncated");
    let out = fetch(&env, &into, "latest");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "{} is truncated: {} bytes, its description says {}",
            location(&newer.name),
            newer.dump.len() / 2,
            newer.dump.len()
        )),
        "{}",
        text(&out)
    );
    assert!(files(&into).is_empty(), "{:?}", files(&into));

    // Same size, one byte flipped; a verification reports the refusal.
    let mut altered = older.dump.clone();
    let middle = altered.len() / 2;
    altered[middle] ^= 0x01;
    bucket.write(&older.name, &altered);
    set(&mut env, "WEBTOON_FETCH_REPORT_KIND", "verify");
    let into = work.join("altered");
    let out = fetch(&env, &into, &older.name);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let refusal = format!("{} was altered: its SHA-256 is ", location(&older.name));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&refusal),
        "{}",
        text(&out)
    );
    assert!(files(&into).is_empty(), "{:?}", files(&into));
    let line = std::fs::read_to_string(&report).expect("verify report");
    let Some(Report::Verify(verify)) = Report::parse(&line) else {
        panic!("not a verify report: {line}");
    };
    assert_eq!(verify.result, "failed");
    assert_eq!(verify.name.as_deref(), Some(older.name.as_str()));
    assert!(
        verify.message.is_some_and(|m| m.contains(&refusal)),
        "{line}"
    );

    // A description that is not JSON.
    bucket.write(&description_name(&older.name), b"{\"format\": ");
    let into = work.join("unparseable");
    let out = fetch(&env, &into, &older.name);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "{} cannot be parsed as a backup description",
            location(&description_name(&older.name))
        )),
        "{}",
        text(&out)
    );
    assert!(files(&into).is_empty(), "{:?}", files(&into));

    // A database pod's restart: its data directory already holds a database.
    let datadir = work.join("datadir");
    std::fs::create_dir_all(datadir.join("mysql")).expect("datadir");
    let into = work.join("initialized");
    std::fs::create_dir_all(&into).expect("dir");
    let out = run(
        &env,
        &[
            "fetch",
            "--dir",
            &into.display().to_string(),
            "--from",
            "latest",
            "--unless-initialized",
            &datadir.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("backup fetch skipped"),
        "{}",
        text(&out)
    );
    assert!(files(&into).is_empty(), "{:?}", files(&into));
}

/// Starts an upload of a large dump through a relay that freezes it after its first
/// part, and returns the running uploader once the relay froze it.
fn frozen_upload(
    server: &S3Server,
    env: &[(String, String)],
    local: &Path,
    backup: &LocalBackup,
) -> (std::process::Child, FreezingRelay) {
    let relay = FreezingRelay::start(
        server.address,
        webtoon_operator::backup::object_store::PART_BYTES + (4 << 20),
    );
    let mut env = env.to_vec();
    set(
        &mut env,
        "WEBTOON_S3_ENDPOINT",
        &format!("https://{}", relay.address),
    );
    let child = operator(
        &env,
        &[
            "upload",
            "--dir",
            &local.display().to_string(),
            "--dump-report",
            &backup.report.display().to_string(),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("uploader starts");
    assert!(
        relay.wait_frozen(Duration::from_secs(120)),
        "the upload never passed its first part"
    );
    (child, relay)
}

#[test]
fn an_upload_cut_off_halfway_leaves_no_backup() {
    let (server, bucket) = start("s3-cut-off");
    let work = &server.dir.0;
    let report = work.join("report.json");
    let env = job_env(&server, &report, 3);
    let local = work.join("backups");
    let previous = write_backup(&local, "20261201T030000Z", 64 << 10);
    let out = upload(&env, &local, &previous);
    assert!(out.status.success(), "{}", text(&out));
    let only_previous = [previous.name.clone(), description_name(&previous.name)];

    // Killed outright mid-upload: the stored parts stay (a lifecycle rule for
    // incomplete multipart uploads removes them), but no object appears.
    let large = write_backup(&local, "20261202T030000Z", LARGE_SQL_BYTES);
    let (mut uploader, relay) = frozen_upload(&server, &env, &local, &large);
    uploader.kill().expect("kill the uploader");
    uploader.wait().expect("uploader ends");
    drop(relay);
    assert_eq!(bucket.names(), only_previous);
    let left_open = server.open_multipart_uploads(BUCKET);
    assert_eq!(left_open, 1, "the upload was cut off mid-way");
    let fetched = work.join("fetched");
    let out = fetch(&env, &fetched, "latest");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(files(&fetched), only_previous);

    // Stopped with SIGTERM, as when its Job is deleted: it aborts the upload, so not
    // even parts remain, and reports the failure.
    let (uploader, relay) = frozen_upload(&server, &env, &local, &large);
    sigterm(&uploader);
    let out = uploader.wait_with_output().expect("uploader ends");
    drop(relay);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "backup upload failed: database={DATABASE} file={}: s3://{BUCKET}/{PREFIX}{}: stopped by a signal",
            large.name, large.name
        )),
        "{}",
        text(&out)
    );
    let reported = backup_report(&report);
    assert_eq!(reported.result, "failed");
    assert_eq!(reported.name.as_deref(), Some(large.name.as_str()));
    assert_eq!(bucket.names(), only_previous);
    assert_eq!(server.open_multipart_uploads(BUCKET), left_open);
}

#[test]
fn wrong_keys_plain_http_an_untrusted_ca_and_a_missing_bucket_are_named() {
    let (server, bucket) = start("s3-errors");
    let work = &server.dir.0;
    let report = work.join("report.json");
    let env = job_env(&server, &report, 3);
    let local = work.join("backups");
    let backup = write_backup(&local, "20261201T030000Z", 64 << 10);
    let failed = |env: &[(String, String)], expected: &str| {
        let _ = std::fs::remove_file(&report);
        let out = upload(env, &local, &backup);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!(
                "backup upload failed: database={DATABASE} file={}: ",
                backup.name
            )),
            "{}",
            text(&out)
        );
        assert!(stderr.contains(expected), "{}", text(&out));
        let reported = backup_report(&report);
        assert_eq!(reported.result, "failed");
        assert_eq!(reported.location, None, "a failed backup is kept nowhere");
        let message = reported.message.unwrap_or_default();
        assert!(message.contains(expected), "{message}");
        assert!(
            !stderr.contains("KEY0123456789") && !message.contains("KEY0123456789"),
            "a secret key in the output: {}",
            text(&out)
        );
        message
    };

    let mut wrong_secret = env.clone();
    set(
        &mut wrong_secret,
        "AWS_SECRET_ACCESS_KEY",
        "not/the+right/KEY0123456789",
    );
    set(&mut wrong_secret, "WEBTOON_S3_SECRET_NAME", "minitoon-s3");
    failed(
        &wrong_secret,
        "the object store refused the keys in Secret minitoon-s3 (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
    );
    let mut wrong_key_id = env.clone();
    set(&mut wrong_key_id, "AWS_ACCESS_KEY_ID", "NOSUCHACCESSKEY");
    failed(
        &wrong_key_id,
        "the object store refused the keys in the Secret named in objectStore.secretName (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
    );

    let mut plain = env.clone();
    set(
        &mut plain,
        "WEBTOON_S3_ENDPOINT",
        &format!("http://{}", server.address),
    );
    failed(&plain, "spec.database.backup.objectStore.insecure: true");

    let mut system_roots = env.clone();
    system_roots.retain(|(k, _)| k != "WEBTOON_S3_CA_FILE");
    failed(
        &system_roots,
        &format!(
            "TLS with {} failed: invalid peer certificate: UnknownIssuer; for an endpoint whose certificate a private CA signs, put that CA in key ca.crt of a ConfigMap and name it in objectStore.caConfigMap (WEBTOON_S3_CA_FILE)",
            server.endpoint
        ),
    );
    let other_ca = make_ca(work, "other-ca");
    let mut wrong_ca = env.clone();
    set(
        &mut wrong_ca,
        "WEBTOON_S3_CA_FILE",
        &other_ca.display().to_string(),
    );
    failed(
        &wrong_ca,
        "the certificate is not signed by the CA in WEBTOON_S3_CA_FILE",
    );
    let mut no_ca = env.clone();
    set(
        &mut no_ca,
        "WEBTOON_S3_CA_FILE",
        &work.join("absent.crt").display().to_string(),
    );
    failed(&no_ca, "cannot use the CA bundle WEBTOON_S3_CA_FILE=");

    let mut no_bucket = env.clone();
    set(&mut no_bucket, "WEBTOON_S3_BUCKET", "absent-bucket");
    failed(
        &no_bucket,
        &format!(
            "bucket \"absent-bucket\" does not exist at {}",
            server.endpoint
        ),
    );

    // Nothing reaches the bucket from a failed dump step, or from a dump whose bytes
    // are not the described ones.
    let dump_failed = work.join("dump-failed.report");
    std::fs::write(
        &dump_failed,
        r#"{"kind":"backup","result":"failed","message":"mariadb-dump exited with 2"}"#,
    )
    .expect("write report");
    let out = run(
        &env,
        &[
            "upload",
            "--dir",
            &local.display().to_string(),
            "--dump-report",
            &dump_failed.display().to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        backup_report(&report).message.as_deref(),
        Some("nothing to upload: the dump step failed: mariadb-dump exited with 2")
    );
    let mut damaged = backup.dump.clone();
    damaged.truncate(damaged.len() - 10);
    std::fs::write(local.join(&backup.name), &damaged).expect("damage the dump");
    failed(
        &env,
        &format!(
            "{} is truncated: {} bytes, its description says {}",
            local.join(&backup.name).display(),
            damaged.len(),
            backup.dump.len()
        ),
    );
    assert!(bucket.names().is_empty(), "{:?}", bucket.names());

    // A restore meets the same messages.
    let out = fetch(&wrong_secret, &work.join("fetched"), "latest");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused the keys in Secret minitoon-s3"),
        "{}",
        text(&out)
    );
}

#[test]
fn plain_http_is_used_only_when_allowed() {
    let server = S3Server::start("s3-plain-http", false);
    server.create_bucket(BUCKET);
    let work = &server.dir.0;
    let report = work.join("report.json");
    let mut env = job_env(&server, &report, 3);
    let local = work.join("backups");
    let backup = write_backup(&local, "20261201T030000Z", 64 << 10);
    let out = upload(&env, &local, &backup);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("objectStore.insecure: true"),
        "{}",
        text(&out)
    );
    set(&mut env, "WEBTOON_S3_ALLOW_HTTP", "true");
    let out = upload(&env, &local, &backup);
    assert!(out.status.success(), "{}", text(&out));
    let fetched = work.join("fetched");
    let out = fetch(&env, &fetched, "latest");
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read(fetched.join(&backup.name)).expect("dump") == backup.dump);
}
