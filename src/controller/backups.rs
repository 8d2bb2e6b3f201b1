//! Backups as their Jobs report them: the newest backup, the newest failure, the
//! newest verified restore, and whether backups are healthy. The Jobs have no API
//! access; each writes one JSON report into its pod's termination message, which the
//! operator reads from the pods. Pure but for [`observe`].

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::events::EventType;

use super::release::get_opt;
use crate::api::cron::Schedule;
use crate::api::{
    BackupFailure, BackupRecord, BackupSpec, BackupsStatus, ValidatedStack, VerifiedRestore,
};
use crate::backup::report::Report;
use crate::render::database::backup_cronjob::{BACKUP_COMPONENT, backup_name};
use crate::render::database::verify_cronjob::VERIFY_COMPONENT;
use crate::render::meta::{COMPONENT_LABEL, INSTANCE_LABEL};
use crate::{Error, Result};

/// Label the Job controller puts on every pod of a Job.
const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// The backup and verify Jobs of a stack and their pods, as read from the cluster.
#[derive(Clone, Debug, Default)]
pub struct ObservedBackups {
    /// Scheduled and pre-migration backup Jobs, and verify Jobs.
    pub jobs: Vec<Job>,
    /// Their pods.
    pub pods: Vec<Pod>,
    /// When the backup CronJob was created: staleness counts from there until the
    /// first backup.
    pub since: Option<jiff::Timestamp>,
}

/// Reads the stack's backup and verify Jobs and their pods.
pub async fn observe(client: &Client, stack: &ValidatedStack) -> Result<ObservedBackups> {
    let namespace = &stack.namespace;
    let selector = format!(
        "{INSTANCE_LABEL}={},{COMPONENT_LABEL} in ({BACKUP_COMPONENT},{VERIFY_COMPONENT})",
        stack.name
    );
    let params = ListParams::default().labels(&selector);
    let jobs = Api::<Job>::namespaced(client.clone(), namespace)
        .list(&params)
        .await
        .map_err(|e| Error::kube("list", "Job", &selector, e))?
        .items;
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&params)
        .await
        .map_err(|e| Error::kube("list", "Pod", &selector, e))?
        .items;
    let cron_job =
        get_opt::<k8s_openapi::api::batch::v1::CronJob>(client, namespace, &backup_name(stack))
            .await?;
    Ok(ObservedBackups {
        jobs,
        pods,
        since: cron_job
            .and_then(|c| c.metadata.creation_timestamp)
            .map(|t| t.0),
    })
}

/// Whether backups are healthy, as the `BackupsHealthy` condition says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// The condition's status.
    pub ok: bool,
    /// Its reason.
    pub reason: &'static str,
    /// Its message.
    pub message: String,
}

/// Something that happened to the backups since the last reconcile, for an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Happened {
    /// Normal or Warning.
    pub warning: bool,
    /// The event's reason.
    pub reason: &'static str,
    /// The event's message.
    pub message: String,
}

/// What the Jobs came to.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    /// The status to record.
    pub status: BackupsStatus,
    /// The `BackupsHealthy` condition.
    pub health: Health,
    /// New backups, failures and verifications since the previous status.
    pub happened: Vec<Happened>,
    /// How long until the backup schedule next fires, when staleness is judged again.
    pub next_fire: Option<std::time::Duration>,
}

impl Happened {
    /// The event type.
    pub fn event_type(&self) -> EventType {
        if self.warning {
            EventType::Warning
        } else {
            EventType::Normal
        }
    }
}

/// How a finished Job ended, with its report.
struct Finished<'a> {
    job: &'a Job,
    name: String,
    succeeded: bool,
    time: Time,
    report: Option<Report>,
    /// The failing container's own words, when it left no report.
    message: Option<String>,
}

fn component(job: &Job) -> Option<&str> {
    job.metadata
        .labels
        .as_ref()?
        .get(COMPONENT_LABEL)
        .map(String::as_str)
}

/// A finished Job: `Complete` or `Failed`, when, and what its pods reported.
fn finished<'a>(job: &'a Job, pods: &[Pod]) -> Option<Finished<'a>> {
    let name = job.metadata.name.clone()?;
    let status = job.status.as_ref()?;
    let condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?;
    let succeeded = condition.type_ == "Complete";
    let time = if succeeded {
        status.completion_time.clone()
    } else {
        None
    }
    .or_else(|| condition.last_transition_time.clone())?;
    let mut own: Vec<&Pod> = pods
        .iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(JOB_NAME_LABEL))
                == Some(&name)
        })
        .collect();
    own.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let wanted = if succeeded { "Succeeded" } else { "Failed" };
    let pod = own
        .iter()
        .rev()
        .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(wanted));
    let terminated: Vec<(i32, Option<String>)> = pod
        .and_then(|p| p.status.as_ref())
        .map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
                .filter_map(terminated_message)
                .collect()
        })
        .unwrap_or_default();
    // The last report written wins: the uploader's after the dump's, a failing
    // step's before the steps that never ran.
    let report = terminated
        .iter()
        .rev()
        .filter(|(code, _)| succeeded || *code != 0)
        .find_map(|(_, m)| m.as_deref().and_then(Report::parse));
    let message = if succeeded {
        None
    } else {
        terminated
            .iter()
            .find(|(code, _)| *code != 0)
            .and_then(|(_, m)| m.clone())
            .or_else(|| condition.message.clone())
    };
    Some(Finished {
        job,
        name,
        succeeded,
        time,
        report,
        message,
    })
}

fn terminated_message(status: &ContainerStatus) -> Option<(i32, Option<String>)> {
    let terminated = status.state.as_ref()?.terminated.as_ref()?;
    let message = terminated
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    Some((terminated.exit_code, message))
}

fn timestamp(text: Option<&str>) -> Option<Time> {
    text.and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(Time)
}

/// The last line of a container's own words, for a status message.
fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(text)
        .chars()
        .take(500)
        .collect()
}

/// The backup schedule and the zone it runs in; `None` for a spec validation refuses.
fn schedule(backup: &BackupSpec) -> Option<(Schedule, jiff::tz::TimeZone)> {
    Some((
        Schedule::parse(&backup.schedule)?,
        jiff::tz::TimeZone::get(&backup.time_zone).ok()?,
    ))
}

/// Assesses the backups of a stack with `backup` configured.
pub fn assess(
    stack: &ValidatedStack,
    backup: &BackupSpec,
    observed: &ObservedBackups,
    previous: Option<&BackupsStatus>,
    previous_health: Option<&str>,
    now: jiff::Timestamp,
) -> Assessment {
    let mut runs: Vec<Finished<'_>> = observed
        .jobs
        .iter()
        .filter_map(|j| finished(j, &observed.pods))
        .collect();
    runs.sort_by_key(|r| r.time.0);
    let backups = runs
        .iter()
        .filter(|r| component(r.job) == Some(BACKUP_COMPONENT));
    let verifies = runs
        .iter()
        .filter(|r| component(r.job) == Some(VERIFY_COMPONENT));

    let mut last_backup = previous.and_then(|p| p.last_backup.clone());
    let mut last_failure = previous.and_then(|p| p.last_failure.clone());
    for run in backups {
        if run.succeeded {
            let report = match &run.report {
                Some(Report::Backup(r)) => Some(r),
                _ => None,
            };
            let record = BackupRecord {
                name: report.and_then(|r| r.name.clone()).unwrap_or_default(),
                time: timestamp(report.and_then(|r| r.time.as_deref()))
                    .unwrap_or_else(|| run.time.clone()),
                bytes: report.and_then(|r| r.bytes),
                location: report.and_then(|r| r.location.clone()),
                job: run.name.clone(),
            };
            if last_backup
                .as_ref()
                .is_none_or(|b| b.time.0 <= record.time.0)
            {
                last_backup = Some(record);
            }
        } else {
            let message = match &run.report {
                Some(Report::Backup(r)) => r.message.clone(),
                _ => None,
            }
            .or_else(|| run.message.as_deref().map(last_line))
            .unwrap_or_else(|| "the Job failed".to_string());
            if last_failure.as_ref().is_none_or(|f| f.time.0 <= run.time.0) {
                last_failure = Some(BackupFailure {
                    job: run.name.clone(),
                    time: run.time.clone(),
                    message,
                });
            }
        }
    }
    // A backup after the failure settles it.
    if let (Some(failure), Some(backup)) = (&last_failure, &last_backup)
        && backup.time.0 >= failure.time.0
    {
        last_failure = None;
    }

    let mut last_verified = previous.and_then(|p| p.last_verified_restore.clone());
    for run in verifies {
        let report = match &run.report {
            Some(Report::Verify(r)) => Some(r),
            _ => None,
        };
        let record = VerifiedRestore {
            name: report.and_then(|r| r.name.clone()),
            time: run.time.clone(),
            result: if run.succeeded { "Passed" } else { "Failed" }.to_string(),
            load_seconds: report.and_then(|r| r.load_seconds),
            message: if run.succeeded {
                None
            } else {
                report
                    .and_then(|r| r.message.clone())
                    .or_else(|| run.message.as_deref().map(last_line))
            },
            job: run.name.clone(),
        };
        if last_verified
            .as_ref()
            .is_none_or(|v| v.time.0 <= record.time.0)
        {
            last_verified = Some(record);
        }
    }

    let status = BackupsStatus {
        last_backup,
        last_failure,
        last_verified_restore: last_verified,
    };
    let schedule = schedule(backup);
    let health = health(
        stack,
        backup,
        schedule.as_ref(),
        &status,
        observed.since,
        now,
    );
    let happened = happened(previous, &status, &health, previous_health);
    let next_fire = schedule
        .and_then(|(schedule, zone)| schedule.next_fire(now, &zone))
        .and_then(|fire| std::time::Duration::try_from(fire.duration_since(now)).ok());
    Assessment {
        status,
        health,
        happened,
        next_fire,
    }
}

fn health(
    stack: &ValidatedStack,
    backup: &BackupSpec,
    schedule: Option<&(Schedule, jiff::tz::TimeZone)>,
    status: &BackupsStatus,
    since: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> Health {
    if let Some(failure) = &status.last_failure {
        return Health {
            ok: false,
            reason: "BackupFailed",
            message: format!(
                "the backup Job {} failed at {}: {}",
                failure.job, failure.time.0, failure.message
            ),
        };
    }
    if let Some(verified) = status
        .last_verified_restore
        .as_ref()
        .filter(|v| v.result != "Passed")
    {
        return Health {
            ok: false,
            reason: "VerifyFailed",
            message: format!(
                "the verified restore of {} (Job {}) failed at {}: {}",
                verified.name.as_deref().unwrap_or("the newest backup"),
                verified.job,
                verified.time.0,
                verified.message.as_deref().unwrap_or("the Job failed")
            ),
        };
    }
    let fires = schedule.map_or_else(Vec::new, |(schedule, zone)| {
        schedule.recent_fires(now, zone, 2)
    });
    let reference = status.last_backup.as_ref().map(|b| b.time.0).or(since);
    if let (Some(reference), Some(second)) = (reference, fires.get(1))
        && reference < *second
    {
        let newest = match &status.last_backup {
            Some(b) => format!("the newest backup, {}, is from {}", b.name, b.time.0),
            None => format!("no backup was taken since the schedule began at {reference}"),
        };
        return Health {
            ok: false,
            reason: "BackupStale",
            message: format!(
                "{newest}: the schedule {:?} ({}) ran at {} and {} without a backup; look at the Jobs of CronJob {}",
                backup.schedule,
                backup.time_zone,
                second,
                fires[0],
                backup_name(stack)
            ),
        };
    }
    match &status.last_backup {
        Some(b) => Health {
            ok: true,
            reason: "BackupsCurrent",
            message: match &status.last_verified_restore {
                Some(v) => format!(
                    "the newest backup, {}, is from {}; the last verified restore passed at {}",
                    b.name, b.time.0, v.time.0
                ),
                None => format!(
                    "the newest backup, {}, is from {}; no restore has been verified yet",
                    b.name, b.time.0
                ),
            },
        },
        None => Health {
            ok: true,
            reason: "AwaitingFirstBackup",
            message: format!(
                "the first backup runs on the schedule {:?} ({})",
                backup.schedule, backup.time_zone
            ),
        },
    }
}

fn happened(
    previous: Option<&BackupsStatus>,
    status: &BackupsStatus,
    health: &Health,
    previous_health: Option<&str>,
) -> Vec<Happened> {
    let mut events = Vec::new();
    let job = |o: Option<&str>| o.map(str::to_string);
    if let Some(b) = &status.last_backup
        && job(previous
            .and_then(|p| p.last_backup.as_ref())
            .map(|b| b.job.as_str()))
            != Some(b.job.clone())
    {
        events.push(Happened {
            warning: false,
            reason: "BackedUp",
            message: format!(
                "backup {} ({} bytes) is kept at {}",
                b.name,
                b.bytes.map_or_else(|| "?".to_string(), |n| n.to_string()),
                b.location.as_deref().unwrap_or("its volume")
            ),
        });
    }
    if let Some(f) = &status.last_failure
        && previous
            .and_then(|p| p.last_failure.as_ref())
            .map(|f| &f.job)
            != Some(&f.job)
    {
        events.push(Happened {
            warning: true,
            reason: "BackupFailed",
            message: format!("the backup Job {} failed: {}", f.job, f.message),
        });
    }
    if let Some(v) = &status.last_verified_restore
        && previous
            .and_then(|p| p.last_verified_restore.as_ref())
            .map(|v| &v.job)
            != Some(&v.job)
    {
        let passed = v.result == "Passed";
        events.push(Happened {
            warning: !passed,
            reason: if passed {
                "RestoreVerified"
            } else {
                "RestoreVerificationFailed"
            },
            message: if passed {
                format!(
                    "backup {} loaded into a throwaway database in {} s and matched its description table by table",
                    v.name.as_deref().unwrap_or("?"),
                    v.load_seconds.map_or_else(|| "?".to_string(), |s| s.to_string())
                )
            } else {
                format!(
                    "the verified restore of {} failed: {}",
                    v.name.as_deref().unwrap_or("the newest backup"),
                    v.message.as_deref().unwrap_or("the Job failed")
                )
            },
        });
    }
    if health.reason == "BackupStale" && previous_health != Some("BackupStale") {
        events.push(Happened {
            warning: true,
            reason: "BackupStale",
            message: health.message.clone(),
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn stack() -> ValidatedStack {
        let yaml = r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: megatoon, namespace: webtoon}
spec:
  hosts: [megatoon.example]
  was: {image: registry.example/was:1.0.0}
  database:
    backup: {schedule: "0 3 * * *", timeZone: Asia/Seoul}
"#;
        let stack = crate::manifest::parse_stacks("test", yaml).expect("parse");
        crate::manifest::validated(&stack[0]).expect("valid")
    }

    fn time(t: &str) -> Time {
        Time(t.parse().expect("time"))
    }

    fn job(name: &str, component: &str, ok: bool, at: &str) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(BTreeMap::from([(
                    COMPONENT_LABEL.to_string(),
                    component.to_string(),
                )])),
                ..Default::default()
            },
            status: Some(JobStatus {
                completion_time: ok.then(|| time(at)),
                conditions: Some(vec![JobCondition {
                    type_: if ok { "Complete" } else { "Failed" }.to_string(),
                    status: "True".to_string(),
                    last_transition_time: Some(time(at)),
                    message: Some("Job has reached the specified backoff limit".to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(job: &str, ok: bool, containers: &[(&str, i32, &str)]) -> Pod {
        let statuses: Vec<ContainerStatus> = containers
            .iter()
            .map(|(name, code, message)| ContainerStatus {
                name: name.to_string(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: *code,
                        message: Some(message.to_string()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        Pod {
            metadata: ObjectMeta {
                labels: Some(BTreeMap::from([(
                    JOB_NAME_LABEL.to_string(),
                    job.to_string(),
                )])),
                ..Default::default()
            },
            status: Some(PodStatus {
                phase: Some(if ok { "Succeeded" } else { "Failed" }.to_string()),
                container_statuses: Some(statuses),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    const UPLOADED: &str = r#"{"kind":"backup","result":"ok","name":"webtoon-20261201T180000Z.sql.gz","time":"2026-12-01T18:00:02Z","bytes":4096,"location":"s3://backups/webtoon/megatoon/webtoon-20261201T180000Z.sql.gz"}"#;

    fn assess_at(
        observed: &ObservedBackups,
        previous: Option<&BackupsStatus>,
        now: &str,
    ) -> Assessment {
        let stack = stack();
        let backup = stack.spec.database.backup.clone().expect("backup");
        assess(
            &stack,
            &backup,
            observed,
            previous,
            None,
            now.parse().expect("now"),
        )
    }

    #[test]
    fn a_backup_is_recorded_from_its_report_and_announced_once() {
        let observed = ObservedBackups {
            jobs: vec![job("b-1", BACKUP_COMPONENT, true, "2026-12-01T18:01:00Z")],
            pods: vec![pod(
                "b-1",
                true,
                &[("backup", 0, ""), ("upload", 0, UPLOADED)],
            )],
            since: Some("2026-11-30T00:00:00Z".parse().expect("since")),
        };
        let first = assess_at(&observed, None, "2026-12-02T01:00:00Z");
        let backup = first.status.last_backup.clone().expect("backup");
        assert_eq!(backup.name, "webtoon-20261201T180000Z.sql.gz");
        assert_eq!(backup.time, time("2026-12-01T18:00:02Z"));
        assert_eq!(backup.bytes, Some(4096));
        assert!(
            backup
                .location
                .as_deref()
                .is_some_and(|l| l.starts_with("s3://"))
        );
        assert!(first.health.ok, "{:?}", first.health);
        assert_eq!(first.health.reason, "BackupsCurrent");
        assert_eq!(first.happened.len(), 1);
        assert_eq!(first.happened[0].reason, "BackedUp");
        let again = assess_at(&observed, Some(&first.status), "2026-12-02T01:00:00Z");
        assert!(again.happened.is_empty(), "{:?}", again.happened);
    }

    #[test]
    fn a_failed_run_names_the_failing_step_until_a_backup_succeeds() {
        let failed = ObservedBackups {
            jobs: vec![job("b-2", BACKUP_COMPONENT, false, "2026-12-02T18:05:00Z")],
            pods: vec![pod(
                "b-2",
                false,
                &[(
                    "backup",
                    1,
                    "mariadb-dump: Got error: 1045: Access denied\nbackup failed: database=webtoon: mariadb-dump or gzip exited with an error",
                )],
            )],
            since: None,
        };
        let assessment = assess_at(&failed, None, "2026-12-02T19:00:00Z");
        assert!(!assessment.health.ok);
        assert_eq!(assessment.health.reason, "BackupFailed");
        assert!(
            assessment
                .health
                .message
                .contains("mariadb-dump or gzip exited"),
            "{}",
            assessment.health.message
        );
        assert!(
            assessment
                .happened
                .iter()
                .any(|h| h.warning && h.reason == "BackupFailed")
        );
        let mut later = failed.clone();
        later
            .jobs
            .push(job("b-3", BACKUP_COMPONENT, true, "2026-12-03T18:01:00Z"));
        later.pods.push(pod(
            "b-3",
            true,
            &[(
                "backup",
                0,
                &UPLOADED.replace("2026-12-01T18:00:02Z", "2026-12-03T18:00:02Z"),
            )],
        ));
        let recovered = assess_at(&later, Some(&assessment.status), "2026-12-03T19:00:00Z");
        assert_eq!(recovered.status.last_failure, None);
        assert!(recovered.health.ok);
    }

    #[test]
    fn backups_are_stale_after_two_scheduled_runs_without_one() {
        let observed = ObservedBackups {
            since: Some("2026-11-30T00:00:00Z".parse().expect("since")),
            ..Default::default()
        };
        // 03:00 in Seoul is 18:00 UTC: one run passed, then a second.
        let waiting = assess_at(&observed, None, "2026-11-30T19:00:00Z");
        assert!(waiting.health.ok);
        assert_eq!(waiting.health.reason, "AwaitingFirstBackup");
        let stale = assess_at(&observed, None, "2026-12-01T18:30:00Z");
        assert!(!stale.health.ok);
        assert_eq!(stale.health.reason, "BackupStale");
        assert!(stale.health.message.contains("megatoon-database-backup"));
        assert!(stale.happened.iter().any(|h| h.reason == "BackupStale"));
    }

    #[test]
    fn a_failed_verification_is_unhealthy_with_what_differed() {
        let report = r#"{"kind":"verify","result":"failed","name":"webtoon-20261201T180000Z.sql.gz","loadSeconds":3,"message":"table episodes: 41 rows, the description says 42"}"#;
        let observed = ObservedBackups {
            jobs: vec![
                job("b-1", BACKUP_COMPONENT, true, "2026-12-01T18:01:00Z"),
                job("v-1", VERIFY_COMPONENT, false, "2026-12-01T20:00:00Z"),
            ],
            pods: vec![
                pod("b-1", true, &[("backup", 0, UPLOADED)]),
                pod("v-1", false, &[("verify", 1, report)]),
            ],
            since: None,
        };
        let assessment = assess_at(&observed, None, "2026-12-01T21:00:00Z");
        let verified = assessment
            .status
            .last_verified_restore
            .clone()
            .expect("verified");
        assert_eq!(verified.result, "Failed");
        assert_eq!(verified.load_seconds, Some(3));
        assert_eq!(assessment.health.reason, "VerifyFailed");
        assert!(assessment.health.message.contains("41 rows"));
        assert!(
            assessment
                .happened
                .iter()
                .any(|h| h.warning && h.reason == "RestoreVerificationFailed")
        );
    }
}
