//! `webtoon-operator backup fetch`: brings one backup from the bucket into a
//! directory for a restore or a verification, and refuses it (deleting what it
//! downloaded) unless its bytes are exactly the ones its description names. Both
//! files arrive under temporary names and take their own names only once checked,
//! the dump first and its description last, as on the backup volume.

use std::path::{Path, PathBuf};

use crate::backup::catalog::Catalog;
use crate::backup::description::{Description, description_name, is_dump_name};
use crate::backup::integrity::parse_description;
use crate::backup::object_store::{BackupStore, DATABASE_ENV, StoreConfig};
use crate::backup::report::{Report, VerifyReport};
use crate::backup::store_error::StoreError;

/// Environment variable: `verify` makes a failed fetch write a failed
/// `VerifyReport` to `WEBTOON_REPORT_FILE`; otherwise a failure is only logged.
pub const REPORT_KIND_ENV: &str = "WEBTOON_FETCH_REPORT_KIND";
/// `--from` value that picks the newest backup.
pub const LATEST: &str = "latest";

/// What a fetch was asked to do.
#[derive(Clone, Debug)]
pub struct FetchRequest {
    /// Directory the backup is written to.
    pub dir: PathBuf,
    /// `latest`, or a dump name.
    pub from: String,
    /// A database directory: when it already holds a database, fetch nothing.
    pub unless_initialized: Option<PathBuf>,
}

/// Fetches what `request` names, logs one line and, for a verification, reports a
/// failure; `true` when the backup is in the directory (or was not needed).
/// `stop` resolving ends the fetch and removes what it downloaded.
pub async fn run(request: &FetchRequest, stop: impl Future<Output = ()>) -> bool {
    if let Some(datadir) = &request.unless_initialized
        && datadir.join("mysql").is_dir()
    {
        println!(
            "backup fetch skipped: {} already holds a database",
            datadir.display()
        );
        return true;
    }
    let mut name = None;
    let mut partials = Vec::new();
    let outcome = tokio::select! {
        fetched = fetch(request, &mut name, &mut partials) => fetched,
        () = stop => Err(StoreError::Stopped),
    };
    for partial in &partials {
        let _ = std::fs::remove_file(partial);
    }
    match outcome {
        Ok(fetched) => {
            println!(
                "backup fetched: database={} file={} bytes={} sha256={} from={} into={}",
                fetched.description.database,
                fetched.description.name,
                fetched.description.bytes,
                fetched.description.sha256,
                fetched.location,
                request.dir.display()
            );
            true
        }
        Err(error) => {
            eprintln!(
                "backup fetch failed: from={} into={}: {error}",
                request.from,
                request.dir.display()
            );
            if std::env::var(REPORT_KIND_ENV).is_ok_and(|kind| kind == "verify") {
                let report = Report::Verify(VerifyReport {
                    result: "failed".to_string(),
                    name,
                    message: Some(format!("cannot fetch the backup: {error}")),
                    ..VerifyReport::default()
                });
                if let Err(error) = crate::backup::report_file::write_report(&report) {
                    eprintln!("cannot write the verify report: {error}");
                }
            }
            false
        }
    }
}

/// A backup now in the directory.
struct Fetched {
    description: Description,
    location: String,
}

async fn fetch(
    request: &FetchRequest,
    chosen: &mut Option<String>,
    partials: &mut Vec<PathBuf>,
) -> Result<Fetched, StoreError> {
    let database = std::env::var(DATABASE_ENV)
        .ok()
        .filter(|d| !d.is_empty())
        .ok_or(StoreError::MissingEnv { var: DATABASE_ENV })?;
    if request.from != LATEST && !is_dump_name(&request.from, &database) {
        return Err(StoreError::BadEnv {
            var: "--from",
            value: request.from.clone(),
            why: format!(
                "is neither `latest` nor the name of a backup of database {database} ({database}-YYYYMMDDTHHMMSSZ.sql.gz): fix spec.database.restore.from"
            ),
        });
    }
    let store = BackupStore::connect(StoreConfig::from_env()?)?;
    let config = store.config();
    let no_backup = |what: String| StoreError::NoBackup {
        what,
        bucket: config.bucket.clone(),
        prefix: config.prefix.clone(),
    };
    let names = store.names().await?;
    let catalog = Catalog::new(names.iter().map(String::as_str), &database);
    let name = if request.from == LATEST {
        catalog
            .latest()
            .ok_or_else(|| no_backup(format!("no described backup of database {database}")))?
            .to_string()
    } else if catalog.described.contains(&request.from) {
        request.from.clone()
    } else if catalog.undescribed.contains(&request.from) {
        return Err(StoreError::BadDescription {
            location: store.location(&description_name(&request.from)),
            why: "is missing: the dump has no description, so it is not a complete backup"
                .to_string(),
        });
    } else {
        return Err(no_backup(format!("no backup named {}", request.from)));
    };
    *chosen = Some(name.clone());

    let description_key = description_name(&name);
    let description_partial = request.dir.join(format!(".{description_key}.partial"));
    let dump_partial = request.dir.join(format!(".{name}.partial"));
    partials.push(description_partial.clone());
    partials.push(dump_partial.clone());

    let missing_description = || StoreError::BadDescription {
        location: store.location(&description_key),
        why: "is missing: it was deleted while being fetched, or never finished".to_string(),
    };
    if store
        .download(&description_key, &description_partial)
        .await?
        .is_none()
    {
        return Err(missing_description());
    }
    let description_bytes =
        std::fs::read(&description_partial).map_err(|source| StoreError::File {
            what: "read",
            path: description_partial.clone(),
            source,
        })?;
    let description = parse_description(
        &description_bytes,
        &name,
        &database,
        &store.location(&description_key),
    )?;
    let facts = store
        .download(&name, &dump_partial)
        .await?
        .ok_or_else(|| no_backup(format!("the dump {name} is gone; its description is there")))?;
    if let Some(mismatch) = facts.compare(&description) {
        return Err(StoreError::Mismatch {
            location: store.location(&name),
            mismatch,
        });
    }
    let rename = |from: &Path, to: PathBuf| {
        std::fs::rename(from, &to).map_err(|source| StoreError::File {
            what: "rename into place",
            path: to,
            source,
        })
    };
    rename(&dump_partial, request.dir.join(&name))?;
    rename(&description_partial, request.dir.join(&description_key))?;
    Ok(Fetched {
        description,
        location: store.location(&name),
    })
}
