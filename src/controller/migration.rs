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

/// Progress worth a Normal event; failures are reported as failed releases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Happened {
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

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};

    use super::*;

    const NEW: &str = "was:2";

    fn at() -> Time {
        Time("2026-12-01T03:00:00Z".parse().expect("a timestamp"))
    }

    fn observation<'a>(
        running: Option<&'a str>,
        previous: Option<&'a MigrationStatus>,
    ) -> MigrationObservation<'a> {
        MigrationObservation {
            image: NEW,
            running_image: running,
            database_ready: true,
            backup_database: Some("webtoon"),
            job_name: "minitoon-migration-1234abcd".to_string(),
            backup: JobOutcome::Running,
            migration: JobOutcome::Running,
            previous,
        }
    }

    fn job(type_: &str, reason: &str) -> Job {
        Job {
            status: Some(JobStatus {
                conditions: Some(vec![JobCondition {
                    type_: type_.to_string(),
                    status: "True".to_string(),
                    reason: Some(reason.to_string()),
                    message: Some("Job was active longer than specified deadline".to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_job_ends_by_its_complete_or_failed_condition() {
        assert_eq!(outcome(None), JobOutcome::Running);
        assert_eq!(outcome(Some(&job("Complete", ""))), JobOutcome::Succeeded);
        assert!(matches!(
            outcome(Some(&job("Failed", "DeadlineExceeded"))),
            JobOutcome::Failed(why) if why.starts_with("DeadlineExceeded: ")
        ));
        assert_eq!(outcome(Some(&job("Suspended", ""))), JobOutcome::Running);
    }

    #[test]
    fn an_image_the_was_already_runs_needs_no_migration() {
        let decision = advance(&observation(Some(NEW), None), &at());
        assert_eq!(decision.status, None);
        assert!(!decision.hold);
    }

    #[test]
    fn a_new_image_is_backed_up_then_migrated_then_released() {
        let started = advance(&observation(Some("was:1"), None), &at());
        assert!(started.hold && started.in_progress);
        let status = started.status.clone().expect("a migration record");
        assert_eq!(status.phase, MigrationPhase::BackingUp);
        assert_eq!(
            status.backup.as_deref(),
            Some("webtoon-20261201T030000Z.sql.gz")
        );

        let mut backed_up = observation(Some("was:1"), Some(&status));
        backed_up.backup = JobOutcome::Succeeded;
        let running = advance(&backed_up, &at());
        let status = running.status.clone().expect("a migration record");
        assert_eq!(status.phase, MigrationPhase::Running);
        assert!(running.hold);
        assert_eq!(running.happened[0].reason, "MigrationStarted");

        let mut migrated = observation(Some("was:1"), Some(&status));
        migrated.migration = JobOutcome::Succeeded;
        let done = advance(&migrated, &at());
        assert_eq!(
            done.status.as_ref().map(|m| m.phase),
            Some(MigrationPhase::Succeeded)
        );
        assert!(!done.hold && !done.in_progress);
        // Succeeded stays succeeded: the image is not migrated again.
        let status = done.status.clone().expect("a migration record");
        let later = advance(&observation(Some(NEW), Some(&status)), &at());
        assert_eq!(later.status, Some(status));
    }

    #[test]
    fn a_new_stack_waits_for_its_database_and_takes_no_backup() {
        let mut waiting = observation(None, None);
        waiting.database_ready = false;
        let pending = advance(&waiting, &at());
        let status = pending.status.clone().expect("a migration record");
        assert_eq!(
            (status.phase, status.backup.as_deref()),
            (MigrationPhase::Pending, None)
        );
        assert!(pending.hold);
        let ready = advance(&observation(None, Some(&status)), &at());
        assert_eq!(ready.status.map(|m| m.phase), Some(MigrationPhase::Running));
    }

    #[test]
    fn a_failed_backup_or_migration_holds_the_image_for_good() {
        let started = advance(&observation(Some("was:1"), None), &at())
            .status
            .expect("a migration record");
        let mut backup_failed = observation(Some("was:1"), Some(&started));
        backup_failed.backup = JobOutcome::Failed("BackoffLimitExceeded: 3 failures".to_string());
        let decision = advance(&backup_failed, &at());
        assert_eq!(
            decision.status.as_ref().map(|m| m.phase),
            Some(MigrationPhase::BackupFailed)
        );
        assert_eq!(
            decision.failed.as_ref().map(|f| f.0.as_str()),
            Some("BackupFailed")
        );
        assert!(decision.hold && !decision.in_progress);

        let running = MigrationStatus {
            phase: MigrationPhase::Running,
            ..started
        };
        let mut failing = observation(Some("was:1"), Some(&running));
        failing.migration = JobOutcome::Failed("DeadlineExceeded: too long".to_string());
        let failed = advance(&failing, &at());
        let status = failed.status.clone().expect("a migration record");
        assert_eq!(status.phase, MigrationPhase::Failed);
        assert!(
            status
                .message
                .as_deref()
                .is_some_and(|m| m.contains("webtoon-20261201T030000Z.sql.gz")),
            "the message names the backup to restore from: {:?}",
            status.message
        );
        assert_eq!(
            failed.failed.as_ref().map(|f| f.0.as_str()),
            Some("MigrationFailed")
        );
        // Reconciled again, the same image is not retried.
        let again = advance(&observation(Some("was:1"), Some(&status)), &at());
        assert_eq!(again.status, Some(status));
        assert!(again.hold);
    }
}
