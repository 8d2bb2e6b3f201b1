//! The WAS migration: when the WAS image changes, one Job runs the migration in the
//! new image, after a backup when backups are configured, and only its success lets
//! the WAS Deployment move to the image. Pure: the controller reads the Jobs and the
//! database, and applies what [`advance`] decides.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{MigrationPhase, MigrationStatus};

/// How a Job ended, if it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Absent or still running.
    Running,
    /// Its pod exited 0.
    Succeeded,
    /// It failed or ran out of time; the reason and message of its condition.
    Failed(String),
}

/// How `job` ended, from its `Complete` and `Failed` conditions.
pub fn outcome(job: Option<&Job>) -> JobOutcome {
    let conditions = job
        .and_then(|j| j.status.as_ref())
        .and_then(|s| s.conditions.as_ref());
    for c in conditions.into_iter().flatten() {
        if c.status != "True" {
            continue;
        }
        match c.type_.as_str() {
            "Complete" => return JobOutcome::Succeeded,
            "Failed" => {
                return JobOutcome::Failed(format!(
                    "{}: {}",
                    c.reason.as_deref().unwrap_or("Failed"),
                    c.message.as_deref().unwrap_or("the Job failed")
                ));
            }
            _ => {}
        }
    }
    JobOutcome::Running
}

/// What the controller observed for the migration.
#[derive(Clone, Debug)]
pub struct MigrationObservation<'a> {
    /// The image the spec asks for.
    pub image: &'a str,
    /// The image the WAS Deployment runs; `None` when there is no Deployment yet.
    pub running_image: Option<&'a str>,
    /// Whether the database accepts connections.
    pub database_ready: bool,
    /// The database's name, which the backup file is named after; `None` when no
    /// backup is taken before migrating.
    pub backup_database: Option<&'a str>,
    /// The migration Job's name for `image`.
    pub job_name: String,
    /// How the backup Job ended.
    pub backup: JobOutcome,
    /// How the migration Job ended.
    pub migration: JobOutcome,
    /// The migration record in the previous status.
    pub previous: Option<&'a MigrationStatus>,
}

/// Something worth an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Happened {
    /// Whether it is a failure.
    pub warning: bool,
    /// Event reason.
    pub reason: &'static str,
    /// Event note.
    pub message: String,
}

/// What the controller does about the migration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MigrationDecision {
    /// The new migration record.
    pub status: Option<MigrationStatus>,
    /// The WAS Deployment must not move to the spec's image yet, or ever.
    pub hold: bool,
    /// The migration failed: the reason and message of the failed release.
    pub failed: Option<(String, String)>,
    /// What changed, for events.
    pub happened: Vec<Happened>,
    /// The migration is under way: look again soon.
    pub in_progress: bool,
}

/// The backup file name for a backup taken at `now`, in the backup script's naming.
pub fn backup_file(database: &str, now: jiff::Timestamp) -> String {
    format!("{database}-{}.sql.gz", now.strftime("%Y%m%dT%H%M%SZ"))
}

/// Moves the migration of the spec's image one step on. An image that the WAS
/// already runs needs none: only a change of image migrates.
pub fn advance(observation: &MigrationObservation<'_>, now: &Time) -> MigrationDecision {
    let mut decision = MigrationDecision::default();
    let mut status = match observation.previous {
        Some(previous) if previous.image == observation.image => previous.clone(),
        previous if observation.running_image == Some(observation.image) => {
            decision.status = previous.cloned();
            return decision;
        }
        _ => {
            // A first migration has nothing to back up: the database is new.
            let backup = observation
                .backup_database
                .filter(|_| observation.running_image.is_some())
                .map(|db| backup_file(db, now.0));
            MigrationStatus {
                image: observation.image.to_string(),
                phase: MigrationPhase::Pending,
                job: observation.job_name.clone(),
                backup,
                message: Some("waiting for the database".to_string()),
                start_time: Some(now.clone()),
                completion_time: None,
            }
        }
    };
    let image = observation.image;
    if status.phase == MigrationPhase::Pending && observation.database_ready {
        if let Some(file) = &status.backup {
            status.phase = MigrationPhase::BackingUp;
            status.message = Some(format!("backing the database up into {file}"));
        } else {
            status.phase = MigrationPhase::Running;
            status.message = Some(format!("Job {} migrates for {image}", status.job));
            decision.happened.push(Happened {
                warning: false,
                reason: "MigrationStarted",
                message: format!("Job {} runs the migration of {image}", status.job),
            });
        }
    }
    if status.phase == MigrationPhase::BackingUp {
        let file = status.backup.clone().unwrap_or_default();
        match &observation.backup {
            JobOutcome::Running => {}
            JobOutcome::Succeeded => {
                status.phase = MigrationPhase::Running;
                status.message = Some(format!("Job {} migrates for {image}", status.job));
                decision.happened.push(Happened {
                    warning: false,
                    reason: "MigrationStarted",
                    message: format!(
                        "the database is backed up into {file}; Job {} runs the migration of {image}",
                        status.job
                    ),
                });
            }
            JobOutcome::Failed(why) => {
                status.phase = MigrationPhase::BackupFailed;
                status.completion_time = Some(now.clone());
                status.message = Some(format!(
                    "the backup before the migration failed ({why}); the migration did not run"
                ));
            }
        }
    } else if status.phase == MigrationPhase::Running {
        match &observation.migration {
            JobOutcome::Running => {}
            JobOutcome::Succeeded => {
                status.phase = MigrationPhase::Succeeded;
                status.completion_time = Some(now.clone());
                status.message = Some(format!("Job {} migrated for {image}", status.job));
                decision.happened.push(Happened {
                    warning: false,
                    reason: "MigrationSucceeded",
                    message: format!("the migration of {image} succeeded; the WAS rolls out"),
                });
            }
            JobOutcome::Failed(why) => {
                status.phase = MigrationPhase::Failed;
                status.completion_time = Some(now.clone());
                let restore = status
                    .backup
                    .as_ref()
                    .map(|f| format!("; the backup {f} holds the database as it was before"))
                    .unwrap_or_default();
                status.message = Some(format!("Job {} failed ({why}){restore}", status.job));
            }
        }
    }
    match status.phase {
        MigrationPhase::Failed => {
            decision.failed = Some((
                "MigrationFailed".to_string(),
                status.message.clone().unwrap_or_default(),
            ));
        }
        MigrationPhase::BackupFailed => {
            decision.failed = Some((
                "BackupFailed".to_string(),
                status.message.clone().unwrap_or_default(),
            ));
        }
        _ => {}
    }
    decision.hold = status.phase != MigrationPhase::Succeeded;
    decision.in_progress = matches!(
        status.phase,
        MigrationPhase::Pending | MigrationPhase::BackingUp | MigrationPhase::Running
    );
    decision.status = Some(status);
    decision
}
