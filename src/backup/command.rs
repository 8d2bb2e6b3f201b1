//! `webtoon-operator backup upload|fetch`: the backup, restore and verify Jobs run
//! the operator's own image, which has no shell, so the object-store side of a
//! backup is a subcommand of the operator.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::backup::fetch::{self, FetchRequest};
use crate::backup::upload;

/// Transfers between a backup directory and S3-compatible object storage.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum BackupCommand {
    /// Upload the dump the dump step wrote (and its description), then delete the
    /// backups beyond WEBTOON_BACKUP_KEEP; writes a backup report to
    /// WEBTOON_REPORT_FILE. The bucket comes from WEBTOON_S3_* and AWS_* variables.
    Upload {
        /// Directory holding `<dump>` and `<dump>.json`.
        #[arg(long)]
        dir: PathBuf,
        /// The dump step's backup report, which names the dump.
        #[arg(long)]
        dump_report: PathBuf,
    },
    /// Download a backup and its description into a directory, refused unless its
    /// size and SHA-256 are the described ones.
    Fetch {
        /// Directory to write `<dump>` and `<dump>.json` into.
        #[arg(long)]
        dir: PathBuf,
        /// `latest`, or the name of one backup (`<database>-<UTC time>.sql.gz`).
        #[arg(long, default_value = fetch::LATEST)]
        from: String,
        /// Fetch nothing when this data directory already holds a database (a
        /// `mysql` directory), as after a database pod's restart.
        #[arg(long)]
        unless_initialized: Option<PathBuf>,
    },
}

impl BackupCommand {
    /// Runs the transfer; exit 0 when it succeeded.
    pub fn run(self) -> ExitCode {
        // This tool's warnings (an abort that failed) go to the Job's log beside the
        // one line each command prints; the libraries' own reports of each retry
        // would bury that line, and the error it ends with says the same.
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("webtoon_operator=warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("backup failed: cannot start the async runtime: {error}");
                return ExitCode::FAILURE;
            }
        };
        let done = runtime.block_on(async {
            match self {
                BackupCommand::Upload { dir, dump_report } => {
                    upload::run(&dir, &dump_report, stop_requested()).await
                }
                BackupCommand::Fetch {
                    dir,
                    from,
                    unless_initialized,
                } => {
                    let request = FetchRequest {
                        dir,
                        from,
                        unless_initialized,
                    };
                    fetch::run(&request, stop_requested()).await
                }
            }
        });
        if done {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// Resolves when the process is asked to stop (SIGTERM, as when its Job is deleted
/// or times out, or SIGINT).
async fn stop_requested() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
}
