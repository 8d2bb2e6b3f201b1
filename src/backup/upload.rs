//! `webtoon-operator backup upload`: sends the dump the backup Job's dump step just
//! wrote, and its description, to the bucket, then deletes the backups beyond
//! `keep`. The dump goes first and its description only once the store holds the
//! whole dump, so a reader never finds a description whose dump is incomplete; a
//! dump whose bytes are not the described ones is never sent.

use std::path::Path;
use std::time::Instant;

use crate::backup::catalog::Catalog;
use crate::backup::description::{Description, description_name, is_dump_name};
use crate::backup::integrity::{measure, parse_description};
use crate::backup::object_store::{BackupStore, DATABASE_ENV, StoreConfig};
use crate::backup::report::{BackupReport, Report};
use crate::backup::retention;
use crate::backup::store_error::StoreError;

/// Environment variable: how many of the newest backups to keep in the bucket.
pub const KEEP_ENV: &str = "WEBTOON_BACKUP_KEEP";

/// What the upload knew when it ended, for its report.
#[derive(Default)]
struct Attempt {
    database: Option<String>,
    name: Option<String>,
    location: Option<String>,
    description: Option<Description>,
    kept: usize,
    pruned: usize,
}

/// Uploads the dump named by the dump step's report at `dump_report` from `dir`,
/// writes the Job's report and logs one line; `true` when the backup is in the bucket
/// and the older ones are pruned. `stop` resolving aborts the upload.
pub async fn run(dir: &Path, dump_report: &Path, stop: impl Future<Output = ()>) -> bool {
    let started = Instant::now();
    let mut attempt = Attempt::default();
    let outcome = upload(dir, dump_report, &mut attempt, stop).await;
    let database = attempt.database.clone().unwrap_or_default();
    let file = attempt.name.clone().unwrap_or_default();
    let report = match &outcome {
        Ok(()) => {
            let description = attempt.description.as_ref();
            let seconds = description.map_or(0, |d| d.seconds) + started.elapsed().as_secs();
            println!(
                "backup uploaded: database={database} file={file} bytes={} location={} seconds={seconds} kept={} pruned={}",
                description.map_or(0, |d| d.bytes),
                attempt.location.as_deref().unwrap_or_default(),
                attempt.kept,
                attempt.pruned,
            );
            BackupReport {
                result: "ok".to_string(),
                name: attempt.name.clone(),
                time: description.map(|d| d.time.clone()),
                bytes: description.map(|d| d.bytes),
                sha256: description.map(|d| d.sha256.clone()),
                tables: description.map(|d| d.tables.len() as u64),
                seconds: Some(seconds),
                location: attempt.location.clone(),
                message: None,
            }
        }
        Err(error) => {
            let message = match &attempt.location {
                Some(location) if !error.to_string().contains(location.as_str()) => {
                    format!("{location}: {error}")
                }
                _ => error.to_string(),
            };
            eprintln!("backup upload failed: database={database} file={file}: {message}");
            BackupReport {
                result: "failed".to_string(),
                name: attempt.name.clone(),
                message: Some(message),
                ..BackupReport::default()
            }
        }
    };
    if let Err(error) = crate::backup::report_file::write_report(&Report::Backup(report)) {
        eprintln!("cannot write the backup report: {error}");
    }
    outcome.is_ok()
}

async fn upload(
    dir: &Path,
    dump_report: &Path,
    attempt: &mut Attempt,
    stop: impl Future<Output = ()>,
) -> Result<(), StoreError> {
    let database = std::env::var(DATABASE_ENV)
        .ok()
        .filter(|d| !d.is_empty())
        .ok_or(StoreError::MissingEnv { var: DATABASE_ENV })?;
    attempt.database = Some(database.clone());
    let keep = keep()?;
    let name = dumped_name(dump_report, &database)?;
    attempt.name = Some(name.clone());
    let config = StoreConfig::from_env()?;
    attempt.location = Some(config.location(&name));

    let dump = dir.join(&name);
    let description_file = dir.join(description_name(&name));
    let description_bytes =
        tokio::fs::read(&description_file)
            .await
            .map_err(|source| StoreError::File {
                what: "read the description",
                path: description_file.clone(),
                source,
            })?;
    let description = parse_description(
        &description_bytes,
        &name,
        &database,
        &description_file.display().to_string(),
    )?;
    attempt.description = Some(description.clone());
    let measured = {
        let dump = dump.clone();
        tokio::task::spawn_blocking(move || measure(&dump))
            .await
            .map_err(|e| StoreError::File {
                what: "read",
                path: dir.join(&name),
                source: std::io::Error::other(e),
            })?
    }
    .map_err(|source| StoreError::File {
        what: "read",
        path: dump.clone(),
        source,
    })?;
    if let Some(mismatch) = measured.compare(&description) {
        return Err(StoreError::Mismatch {
            location: dump.display().to_string(),
            mismatch,
        });
    }

    let store = BackupStore::connect(config)?;
    // Never replace a backup: its description would describe another dump while the
    // new one arrives. A dump left without a description by a cut-off upload is no
    // backup, and is replaced.
    if store.size(&description_name(&name)).await?.is_some() {
        return Err(StoreError::Request {
            operation: "upload",
            location: store.location(&name),
            detail: "a backup with this name already exists; it is left as it is".to_string(),
        });
    }
    store.upload_file(&name, &dump, &description, stop).await?;
    match store.size(&name).await? {
        Some(bytes) if bytes == description.bytes => {}
        held => {
            // Not a backup without its description, and not one to describe.
            let _ = store.delete(&name).await;
            return Err(StoreError::Request {
                operation: "confirm",
                location: store.location(&name),
                detail: format!(
                    "after the upload the store holds {}, the description says {} bytes",
                    held.map_or_else(|| "no object".to_string(), |b| format!("{b} bytes")),
                    description.bytes
                ),
            });
        }
    }
    store
        .write(&description_name(&name), description_bytes)
        .await?;

    let names = store.names().await?;
    let plan = retention::plan(
        &Catalog::new(names.iter().map(String::as_str), &database),
        keep,
        &name,
    );
    retention::apply(&store, &plan).await?;
    attempt.kept = plan.kept.len();
    attempt.pruned = plan.backups_deleted;
    if !plan.own_kept {
        return Err(StoreError::Request {
            operation: "keep",
            location: store.location(&name),
            detail: format!(
                "{keep} newer backups exist, so this one does not count among the {keep} kept; check the clocks of the nodes and the names in the bucket"
            ),
        });
    }
    Ok(())
}

fn keep() -> Result<usize, StoreError> {
    let value = std::env::var(KEEP_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(StoreError::MissingEnv { var: KEEP_ENV })?;
    match value.parse::<usize>() {
        Ok(keep) if keep > 0 => Ok(keep),
        _ => Err(StoreError::BadEnv {
            var: KEEP_ENV,
            value,
            why: "must be a positive number: fix spec.database.backup.keep".to_string(),
        }),
    }
}

/// The dump's name from the dump step's report at `path`, if that step succeeded.
fn dumped_name(path: &Path, database: &str) -> Result<String, StoreError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| StoreError::NoDump {
        why: format!("the dump step left no report at {shown}: {e}"),
    })?;
    let report = match Report::parse(&text) {
        Some(Report::Backup(report)) => report,
        Some(Report::Verify(_)) => {
            return Err(StoreError::NoDump {
                why: format!("{shown} holds a verify report, not the dump step's"),
            });
        }
        None => {
            return Err(StoreError::NoDump {
                why: format!(
                    "{shown} holds no report; it ends: {}",
                    tail(text.trim(), 200)
                ),
            });
        }
    };
    if report.result != "ok" {
        return Err(StoreError::NoDump {
            why: format!(
                "the dump step failed: {}",
                report.message.as_deref().unwrap_or("it gave no reason")
            ),
        });
    }
    match report.name {
        Some(name) if is_dump_name(&name, database) => Ok(name),
        Some(name) => Err(StoreError::NoDump {
            why: format!(
                "the dump step named {name:?}, which is not a dump of database {database} ({database}-YYYYMMDDTHHMMSSZ.sql.gz)"
            ),
        }),
        None => Err(StoreError::NoDump {
            why: format!("the dump step's report at {shown} names no dump"),
        }),
    }
}

/// The last `chars` characters of `text`.
fn tail(text: &str, chars: usize) -> &str {
    let start = text
        .char_indices()
        .rev()
        .nth(chars.saturating_sub(1))
        .map_or(0, |(at, _)| at);
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_successful_dump_report_names_what_to_upload() {
        let dir = std::env::temp_dir().join(format!("webtoon-upload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let report = dir.join("report");
        let cases = [
            (
                r#"{"kind":"backup","result":"ok","name":"webtoon-20261201T030000Z.sql.gz"}"#,
                Ok("webtoon-20261201T030000Z.sql.gz"),
            ),
            (
                r#"{"kind":"backup","result":"failed","message":"mariadb-dump exited"}"#,
                Err("the dump step failed: mariadb-dump exited"),
            ),
            (
                r#"{"kind":"backup","result":"ok","name":"../etc/passwd"}"#,
                Err("not a dump of database webtoon"),
            ),
            (
                "gzip: stdout: No space left on device",
                Err("holds no report"),
            ),
        ];
        for (text, expected) in cases {
            std::fs::write(&report, text).expect("write report");
            match (dumped_name(&report, "webtoon"), expected) {
                (Ok(name), Ok(want)) => assert_eq!(name, want),
                (Err(error), Err(want)) => assert!(error.to_string().contains(want), "{error}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
        let missing = dumped_name(&dir.join("absent"), "webtoon").expect_err("no report");
        assert!(missing.to_string().contains("left no report"), "{missing}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
