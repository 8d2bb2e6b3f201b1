//! Rotation of the generated credentials without a refused login. Pure: the
//! controller reads the credentials Secret, the rotation Jobs, the database and cache
//! StatefulSets and the WAS, and applies what [`decide`] returns.
//!
//! A rotation moves through steps that each leave every client able to log in:
//!
//! 1. **Adding.** New values are stored in the Secret under `<key>-next` before any
//!    server sees them, so no crash can lose a password. Jobs give the servers the new
//!    passwords beside the old ones: MariaDB gets the application's other account
//!    (`<user>` or `<user>_2`) with the new password, the account in use and the backup
//!    user accept their old and new passwords, root and the administrative account take
//!    their new ones; Redis users hold both passwords.
//! 2. **Switch** (once no WAS release or migration is under way). The Secret's current
//!    values become the new ones, and its generation goes up by one: the WAS pod
//!    template names the other account, so the WAS rolls onto it through the usual
//!    rollout, with its rollback. The Redis password of the pods still running stays in
//!    the Secret as `cache-password-previous`, so that a Redis restart keeps it.
//! 3. **Finishing** (once every WAS pod is of the new generation, terminating ones
//!    included). `cache-password-previous` goes, then Jobs lock the old account and
//!    leave the backup user and the Redis users their new passwords alone.
//!
//! Where the rotation is lives in the Secret's annotations, beside the values, so that
//! it resumes after any crash and survives the stack under `deletionPolicy: Retain`.
//! A fingerprint of every value the operator wrote lets it find a hand edit: that is
//! reported and nothing is rotated, until the values are put back or the fingerprint
//! annotation is removed to accept them.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::{Deserialize, Serialize};

use super::migration::JobOutcome;
use super::status::condition::{RECONCILING, STALLED};
use crate::Result;
use crate::api::{
    CredentialTimes, CredentialsStatus, RotationPhase, RotationStatus, ServiceMode, ValidatedStack,
    WebtoonStackStatus,
};
use crate::render::cache::acl_rotation::CACHE_ROTATION_COMPONENT;
use crate::render::credentials::{
    CACHE_ADMIN_PASSWORD_KEY, CACHE_MONITOR_PASSWORD_KEY, CACHE_PASSWORD_KEY,
    CACHE_PREVIOUS_PASSWORD_KEY, CACHE_ROTATED_KEYS, Credentials, DATABASE_ADMIN_PASSWORD_KEY,
    DATABASE_BACKUP_PASSWORD_KEY, DATABASE_MONITOR_PASSWORD_KEY, DATABASE_PASSWORD_KEY,
    DATABASE_ROOT_PASSWORD_KEY, DATABASE_ROTATED_KEYS, FINGERPRINT_ANNOTATION,
    GENERATION_ANNOTATION, MONITOR_KEYS, REQUEST_ANNOTATION, ROTATED_ANNOTATION,
    ROTATION_ANNOTATION, RotationJobs, RotationStep, SecretState, database_user, edited_keys,
    fingerprint, next_key, secret_name,
};
use crate::render::database::rotation_job::DATABASE_ROTATION_COMPONENT;
use crate::render::meta::checksum;
use crate::render::rotation::job_name;

/// The request of a rotation that `intervalDays` started.
pub const INTERVAL_REQUEST: &str = "interval";

/// Condition type, part of the API: whether the servers accept exactly the
/// credentials in the Secret.
pub const CREDENTIALS_SYNCED: &str = "CredentialsSynced";

/// The keys the operator writes and fingerprints.
fn managed(key: &str) -> bool {
    key == CACHE_PREVIOUS_PASSWORD_KEY
        || MONITOR_KEYS.contains(&key)
        || DATABASE_ROTATED_KEYS
            .iter()
            .chain(CACHE_ROTATED_KEYS.iter())
            .any(|k| *k == key || next_key(k) == key)
}

/// The credentials Secret as read from the cluster, values as text.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretSnapshot {
    /// Its data.
    pub data: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// Its UID: rotation Jobs of a Secret created again are named apart.
    pub uid: String,
    /// When it was created: the start of the first rotation interval.
    pub created: Option<Timestamp>,
}

impl std::fmt::Debug for SecretSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSnapshot")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("annotations", &self.annotations)
            .finish()
    }
}

/// The step of the rotation under way, as the Secret records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Step {
    /// New values are stored; the add Jobs run (or wait for the servers).
    Adding,
    /// The add Jobs succeeded; waiting for the WAS to settle before the switch.
    Added,
    /// The Secret holds the new values; the WAS rolls onto them.
    RollingOut,
    /// The finish Jobs run.
    Finishing,
}

/// The rotation under way, in the Secret's [`ROTATION_ANNOTATION`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    /// What asked for it: a request ID or [`INTERVAL_REQUEST`].
    request: String,
    /// The request the current step's Jobs were created for: a new request ID after
    /// a failure retries the step with new Jobs.
    attempt: String,
    step: Step,
    started: Timestamp,
}

/// When each tier was last rotated, in the Secret's [`ROTATED_ANNOTATION`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rotated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    database: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache: Option<Timestamp>,
}

fn record(secret: &SecretSnapshot) -> Option<Record> {
    serde_json::from_str(secret.annotations.get(ROTATION_ANNOTATION)?).ok()
}

fn rotated(secret: &SecretSnapshot) -> Rotated {
    secret
        .annotations
        .get(ROTATED_ANNOTATION)
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default()
}

fn generation(secret: &SecretSnapshot) -> Option<u64> {
    match secret.annotations.get(GENERATION_ANNOTATION) {
        None => Some(0),
        Some(text) => text.parse().ok(),
    }
}

fn embedded(stack: &ValidatedStack) -> (bool, bool) {
    (
        stack.spec.database.mode == ServiceMode::Embedded,
        stack.spec.cache.mode == ServiceMode::Embedded,
    )
}

/// The keys a rotation of this stack gives new values.
fn rotated_keys(stack: &ValidatedStack) -> Vec<&'static str> {
    let (database, cache) = embedded(stack);
    let mut keys = Vec::new();
    if database {
        keys.extend(DATABASE_ROTATED_KEYS);
    }
    if cache {
        keys.extend(CACHE_ROTATED_KEYS);
    }
    keys
}

fn request_id(stack: &ValidatedStack) -> Option<&str> {
    stack
        .spec
        .credentials
        .as_ref()?
        .rotation
        .as_ref()?
        .request_id
        .as_deref()
}

fn interval_days(stack: &ValidatedStack) -> Option<u32> {
    stack
        .spec
        .credentials
        .as_ref()?
        .rotation
        .as_ref()?
        .interval_days
}

/// The passwords, further keys and annotations of a credentials Secret created now:
/// fresh passwords, the database's administrative account starting with root's (its
/// first start knows no other), and the spec's request ID taken as served, since new
/// passwords need no rotation.
pub fn initial_secret(
    stack: &ValidatedStack,
    generate: &mut dyn FnMut() -> Result<String>,
) -> Result<(Credentials, SecretState)> {
    let mut data = BTreeMap::new();
    fill_missing(&mut data, generate)?;
    let state = SecretState {
        extra: extra(&data),
        annotations: annotations(&data, 0, request_id(stack), None, &Rotated::default()),
    };
    Ok((credentials_of(&data), state))
}

/// Generates the passwords a Secret lacks; the database's administrative account
/// takes root's (see [`initial_secret`]).
fn fill_missing(
    data: &mut BTreeMap<String, String>,
    generate: &mut dyn FnMut() -> Result<String>,
) -> Result<()> {
    for key in [
        DATABASE_ROOT_PASSWORD_KEY,
        DATABASE_PASSWORD_KEY,
        DATABASE_BACKUP_PASSWORD_KEY,
        CACHE_PASSWORD_KEY,
        CACHE_ADMIN_PASSWORD_KEY,
        DATABASE_MONITOR_PASSWORD_KEY,
        CACHE_MONITOR_PASSWORD_KEY,
    ] {
        if data.get(key).is_none_or(String::is_empty) {
            data.insert(key.to_string(), generate()?);
        }
    }
    if data
        .get(DATABASE_ADMIN_PASSWORD_KEY)
        .is_none_or(String::is_empty)
    {
        let root = data
            .get(DATABASE_ROOT_PASSWORD_KEY)
            .cloned()
            .unwrap_or_default();
        data.insert(DATABASE_ADMIN_PASSWORD_KEY.to_string(), root);
    }
    Ok(())
}

/// What the controller must read for [`decide`]: the servers' readiness while a
/// rotation may run, the current step's Jobs, whether the WAS has settled (before a
/// switch) and whether it moved to the Secret's generation (before finishing). A
/// stack with no rotation under way or due needs nothing beyond the Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Whether the readiness of the database and the cache matters.
    pub servers: bool,
    /// The Jobs of the step the Secret records.
    pub jobs: Option<RotationJobs>,
    /// Whether a WAS release or migration under way matters.
    pub settled: bool,
    /// Whether every WAS pod runs the Secret's generation matters.
    pub switched: bool,
}

/// The generation the Secret records; 0 when it cannot be read (which [`decide`]
/// reports as an edit).
pub fn secret_generation(secret: &SecretSnapshot) -> u64 {
    generation(secret).unwrap_or(0)
}

/// The Jobs of `step`, named for this Secret, generation and attempt.
fn step_jobs(
    stack: &ValidatedStack,
    secret: &SecretSnapshot,
    generation: u64,
    step: RotationStep,
    attempt: &str,
) -> RotationJobs {
    let spec = &stack.spec.database;
    let (from, to) = match step {
        RotationStep::Add => (generation, generation + 1),
        RotationStep::Finish => (generation.saturating_sub(1), generation),
    };
    RotationJobs {
        step,
        suffix: checksum(&format!(
            "{}/{generation}/{}/{attempt}",
            secret.uid,
            step.as_str()
        ))[..8]
            .to_string(),
        from_account: database_user(spec, from),
        to_account: database_user(spec, to),
    }
}

/// What to read before deciding at `now`.
pub fn needs(stack: &ValidatedStack, secret: &SecretSnapshot, now: Timestamp) -> Needs {
    let Some(record) = record(secret) else {
        let requested = request_id(stack).is_some_and(|r| {
            secret
                .annotations
                .get(REQUEST_ANNOTATION)
                .map(String::as_str)
                != Some(r)
        });
        let due = due(stack, secret, &rotated(secret)).is_some_and(|d| d <= now);
        return Needs {
            servers: requested || due,
            ..Needs::default()
        };
    };
    let generation = secret_generation(secret);
    Needs {
        servers: true,
        jobs: record_jobs(stack, secret, generation, &record),
        settled: matches!(record.step, Step::Adding | Step::Added),
        switched: record.step == Step::RollingOut,
    }
}

/// How the Jobs of one step ended, one per embedded tier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepOutcome {
    /// The Jobs these outcomes are of; an outcome of other Jobs (an earlier step, an
    /// earlier attempt) counts for nothing.
    pub jobs: Option<RotationJobs>,
    /// Whether any of them exists.
    pub exists: bool,
    /// The database's Job; `None` when the database is external.
    pub database: Option<JobOutcome>,
    /// The cache's Job; `None` when the cache is external.
    pub cache: Option<JobOutcome>,
}

impl StepOutcome {
    fn all(&self) -> impl Iterator<Item = (&'static str, &JobOutcome)> {
        [("database", &self.database), ("cache", &self.cache)]
            .into_iter()
            .filter_map(|(tier, o)| o.as_ref().map(|o| (tier, o)))
    }

    fn succeeded(&self) -> bool {
        self.all().next().is_some() && self.all().all(|(_, o)| *o == JobOutcome::Succeeded)
    }

    fn failure(&self) -> Option<String> {
        let failed: Vec<String> = self
            .all()
            .filter_map(|(tier, o)| match o {
                JobOutcome::Failed(why) => Some(format!("the {tier} Job failed: {why}")),
                _ => None,
            })
            .collect();
        (!failed.is_empty()).then(|| failed.join("; "))
    }
}

/// What the controller observed.
#[derive(Clone, Debug)]
pub struct Observation<'a> {
    /// The stack.
    pub stack: &'a ValidatedStack,
    /// The credentials Secret.
    pub secret: &'a SecretSnapshot,
    /// The embedded database and cache accept connections; else what is waited for.
    pub servers_ready: std::result::Result<(), String>,
    /// No WAS release or migration is under way (read when [`Needs::settled`]); else
    /// what is waited for.
    pub was_settled: std::result::Result<(), String>,
    /// Every WAS pod runs the Secret's generation (read when [`Needs::switched`]); else
    /// what is waited for.
    pub was_switched: std::result::Result<(), String>,
    /// The Jobs of [`Needs::jobs`].
    pub jobs: StepOutcome,
    /// The credentials record in the previous status.
    pub previous: Option<&'a CredentialsStatus>,
    /// Now.
    pub now: Timestamp,
}

/// The `CredentialsSynced` condition's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `True` or `False`.
    pub ok: bool,
    /// `Synced`, `Rotating`, `RotationFailed` or `SecretEdited`.
    pub reason: &'static str,
    /// For people.
    pub message: String,
}

/// Something worth an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Happened {
    /// A Warning, not a Normal event.
    pub warning: bool,
    /// Event reason.
    pub reason: &'static str,
    /// Event note.
    pub message: String,
}

/// What the controller does about the credentials.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The four current passwords for render; `None` leaves the Secret alone (it was
    /// edited by hand).
    pub credentials: Option<Credentials>,
    /// The Secret's further keys and annotations, for render.
    pub secret: SecretState,
    /// The generation the WAS pod template carries.
    pub generation: u64,
    /// The rotation Jobs to keep.
    pub jobs: Option<RotationJobs>,
    /// The status record.
    pub status: CredentialsStatus,
    /// The `CredentialsSynced` condition.
    pub condition: Verdict,
    /// Events.
    pub happened: Vec<Happened>,
    /// A rotation is under way: look again soon.
    pub progressing: bool,
    /// A person must act (a failed step, an edited Secret): why.
    pub stalled: Option<String>,
    /// When an interval rotation is due next, while none is under way.
    pub next_due: Option<Timestamp>,
}

fn time(t: Timestamp) -> Time {
    Time(t)
}

/// The values of the Secret the operator manages, with what an older operator version
/// did not write generated, and the keys edited by hand (then nothing is generated).
fn adopt(
    secret: &SecretSnapshot,
    generate: &mut dyn FnMut() -> Result<String>,
) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let mut data: BTreeMap<String, String> = secret
        .data
        .iter()
        .filter(|(k, _)| managed(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut edited = match secret.annotations.get(FINGERPRINT_ANNOTATION) {
        // An operator version before rotations wrote this Secret, or a person removed
        // the fingerprint to accept what it holds: take it as it is.
        None => Vec::new(),
        Some(recorded) => edited_keys(recorded, &data, managed)
            .unwrap_or_else(|| vec![FINGERPRINT_ANNOTATION.to_string()]),
    };
    if generation(secret).is_none() {
        edited.push(GENERATION_ANNOTATION.to_string());
    }
    if edited.is_empty() {
        fill_missing(&mut data, generate)?;
    }
    Ok((data, edited))
}

fn credentials_of(data: &BTreeMap<String, String>) -> Credentials {
    let get = |k: &str| data.get(k).cloned().unwrap_or_default();
    Credentials {
        database_root_password: get(DATABASE_ROOT_PASSWORD_KEY),
        database_password: get(DATABASE_PASSWORD_KEY),
        database_backup_password: get(DATABASE_BACKUP_PASSWORD_KEY),
        cache_password: get(CACHE_PASSWORD_KEY),
    }
}

/// The keys [`Credentials`] holds; the others travel in [`SecretState::extra`].
const CORE_KEYS: [&str; 4] = [
    DATABASE_ROOT_PASSWORD_KEY,
    DATABASE_PASSWORD_KEY,
    DATABASE_BACKUP_PASSWORD_KEY,
    CACHE_PASSWORD_KEY,
];

fn extra(data: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    data.iter()
        .filter(|(k, _)| !CORE_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The annotations the operator keeps on the Secret.
fn annotations(
    data: &BTreeMap<String, String>,
    generation: u64,
    request: Option<&str>,
    record: Option<&Record>,
    rotated: &Rotated,
) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([(FINGERPRINT_ANNOTATION.to_string(), fingerprint(data))]);
    if generation > 0 {
        annotations.insert(GENERATION_ANNOTATION.to_string(), generation.to_string());
    }
    if let Some(request) = request {
        annotations.insert(REQUEST_ANNOTATION.to_string(), request.to_string());
    }
    if let Some(record) = record {
        annotations.insert(
            ROTATION_ANNOTATION.to_string(),
            serde_json::to_string(record).unwrap_or_default(),
        );
    }
    if *rotated != Rotated::default() {
        annotations.insert(
            ROTATED_ANNOTATION.to_string(),
            serde_json::to_string(rotated).unwrap_or_default(),
        );
    }
    annotations
}

/// When an interval rotation is due: `intervalDays` after the last rotation of the
/// tier rotated longest ago (or after the Secret was created, for a tier never rotated).
fn due(stack: &ValidatedStack, secret: &SecretSnapshot, rotated: &Rotated) -> Option<Timestamp> {
    let days = interval_days(stack)?;
    let (database, cache) = embedded(stack);
    let base = [(database, rotated.database), (cache, rotated.cache)]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, t)| t.or(secret.created))
        .min()
        .flatten()?;
    base.checked_add(SignedDuration::from_hours(24 * i64::from(days)))
        .ok()
}

fn describe(request: &str) -> String {
    if request == INTERVAL_REQUEST {
        "spec.credentials.rotation.intervalDays".to_string()
    } else {
        format!("request {request}")
    }
}

fn account_note(stack: &ValidatedStack, generation: u64) -> String {
    if stack.spec.database.mode == ServiceMode::Embedded {
        format!(
            ", as database account {}",
            database_user(&stack.spec.database, generation)
        )
    } else {
        String::new()
    }
}

/// The switch: every new value becomes the current one, and the Redis password of
/// the WAS pods still running is kept as the previous one.
fn switch(data: &mut BTreeMap<String, String>, keys: &[&str]) {
    for key in keys {
        if let Some(new) = data.remove(&next_key(key)) {
            let old = data.insert(key.to_string(), new);
            if *key == CACHE_PASSWORD_KEY
                && let Some(old) = old
            {
                data.insert(CACHE_PREVIOUS_PASSWORD_KEY.to_string(), old);
            }
        }
    }
}

/// The Jobs of the step `record` is at.
fn record_jobs(
    stack: &ValidatedStack,
    secret: &SecretSnapshot,
    generation: u64,
    record: &Record,
) -> Option<RotationJobs> {
    let step = match record.step {
        Step::Adding => RotationStep::Add,
        Step::Finishing => RotationStep::Finish,
        Step::Added | Step::RollingOut => return None,
    };
    Some(step_jobs(stack, secret, generation, step, &record.attempt))
}

/// The names of the Jobs of `jobs`, one per embedded tier.
pub fn job_names(stack: &ValidatedStack, jobs: &RotationJobs) -> Vec<String> {
    let (database, cache) = embedded(stack);
    let mut names = Vec::new();
    if database {
        names.push(job_name(stack, DATABASE_ROTATION_COMPONENT, jobs));
    }
    if cache {
        names.push(job_name(stack, CACHE_ROTATION_COMPONENT, jobs));
    }
    names
}

/// Moves the credentials one step on; see the module documentation.
pub fn decide(
    observation: &Observation<'_>,
    generate: &mut dyn FnMut() -> Result<String>,
) -> Result<Decision> {
    let stack = observation.stack;
    let secret = observation.secret;
    let previous = observation.previous;
    // Whole seconds: the API server keeps times so, and a status with a finer time
    // would differ from the stored one at every reconcile, and be written each time.
    let now = Timestamp::from_second(observation.now.as_second()).unwrap_or(observation.now);
    let name = secret_name(stack);
    let (mut data, edited) = adopt(secret, generate)?;
    let mut generation = generation(secret)
        .or_else(|| previous.map(|p| p.generation))
        .unwrap_or(0);
    let mut record = record(secret);
    let mut rotated = rotated(secret);
    let mut request = secret.annotations.get(REQUEST_ANNOTATION).cloned();
    let mut happened = Vec::new();

    if !edited.is_empty() {
        return Ok(edited_decision(
            observation,
            edited,
            generation,
            record,
            rotated,
        ));
    }

    // The outcome observed counts only for the Jobs of the step the record is at.
    let outcome_for = |record: &Record, generation: u64| -> StepOutcome {
        let jobs = record_jobs(stack, secret, generation, record);
        if jobs.is_some() && observation.jobs.jobs == jobs {
            observation.jobs.clone()
        } else {
            StepOutcome {
                jobs,
                ..StepOutcome::default()
            }
        }
    };

    // A new request, or the interval, starts a rotation; a new request after a failed
    // step retries that step with new Jobs.
    let new_request = request_id(stack).filter(|r| request.as_deref() != Some(*r));
    match (record.as_mut(), new_request) {
        (None, Some(r)) => {
            record = Some(started(r, now, stack, &mut happened));
            request = Some(r.to_string());
        }
        (None, None) if due(stack, secret, &rotated).is_some_and(|d| d <= now) => {
            record = Some(started(INTERVAL_REQUEST, now, stack, &mut happened));
        }
        (Some(current), Some(r)) if outcome_for(current, generation).failure().is_some() => {
            current.attempt = r.to_string();
            request = Some(r.to_string());
            happened.push(Happened {
                warning: false,
                reason: "RotationRetried",
                message: format!(
                    "request {r} retries the step of the rotation for {} that failed",
                    describe(&current.request)
                ),
            });
        }
        _ => {}
    }

    let keys = rotated_keys(stack);
    let mut failure = None;
    let mut waiting = None;
    let mut finished = None;
    let mut switched_now = false;
    if let Some(current) = record.as_mut() {
        if current.step == Step::Adding {
            // Stored before any server sees them, and kept by a retry or a crash.
            for key in &keys {
                let next = next_key(key);
                if data.get(&next).is_none_or(String::is_empty) {
                    data.insert(next, generate()?);
                }
            }
            let outcome = outcome_for(current, generation);
            if let Some(why) = outcome.failure() {
                failure = Some(format!(
                    "giving the servers the new passwords failed: {why}"
                ));
            } else if outcome.succeeded() {
                current.step = Step::Added;
            } else if let Err(why) = &observation.servers_ready {
                waiting = Some(format!("waiting for {why}"));
            }
        }
        if current.step == Step::Added {
            match &observation.was_settled {
                Ok(()) => {
                    switch(&mut data, &keys);
                    generation += 1;
                    switched_now = true;
                    current.step = Step::RollingOut;
                    happened.push(Happened {
                        warning: false,
                        reason: "CredentialsSwitched",
                        message: format!(
                            "the servers accept the old and the new passwords; {name} holds the new ones (generation {generation}) and the WAS rolls onto them{}",
                            account_note(stack, generation)
                        ),
                    });
                }
                Err(why) => {
                    waiting = Some(format!(
                        "the servers accept the new passwords; the WAS moves to them after {why}"
                    ));
                }
            }
        }
        // What was read of the WAS is of the generation before a switch made now.
        if current.step == Step::RollingOut && !switched_now {
            match &observation.was_switched {
                Ok(()) => {
                    // Gone from the Secret first: a Redis that restarts from now on
                    // knows only the new password.
                    data.remove(CACHE_PREVIOUS_PASSWORD_KEY);
                    current.step = Step::Finishing;
                }
                Err(why) => waiting = Some(format!("waiting for {why}")),
            }
        }
        if current.step == Step::Finishing {
            let outcome = outcome_for(current, generation);
            if let Some(why) = outcome.failure() {
                failure = Some(format!(
                    "making the servers refuse the old passwords failed: {why}"
                ));
            } else if outcome.succeeded() {
                finished = Some(current.clone());
            } else if let Err(why) = &observation.servers_ready {
                waiting = Some(format!("waiting for {why}"));
            }
        }
    }
    if let Some(done) = &finished {
        record = None;
        let (database, cache) = embedded(stack);
        if database {
            rotated.database = Some(now);
        }
        if cache {
            rotated.cache = Some(now);
        }
        happened.push(Happened {
            warning: false,
            reason: "CredentialsRotated",
            message: format!(
                "every generated credential was rotated for {} in {}s; the old passwords are refused",
                describe(&done.request),
                now.duration_since(done.started).as_secs()
            ),
        });
    }

    // A step's Jobs exist from when the servers are ready until the step is over.
    let jobs = record.as_ref().and_then(|r| {
        let outcome = outcome_for(r, generation);
        (observation.servers_ready.is_ok() || outcome.exists)
            .then(|| record_jobs(stack, secret, generation, r))
            .flatten()
    });
    let failed_already = previous
        .and_then(|p| p.rotation.as_ref())
        .filter(|r| r.phase == RotationPhase::Failed);
    if let Some(why) = &failure
        && failed_already.is_none()
    {
        happened.push(Happened {
            warning: true,
            reason: "RotationFailed",
            message: format!("{why}; {}", RETRY),
        });
    }
    let rotation = match (&record, &finished) {
        (Some(r), _) => Some(rotation_status(
            stack,
            r,
            generation,
            jobs.as_ref(),
            failure.as_deref(),
            waiting.as_deref(),
            failed_already.and_then(|f| f.completion_time.clone()),
            now,
        )),
        (None, Some(done)) => Some(RotationStatus {
            request: done.request.clone(),
            phase: RotationPhase::Succeeded,
            message: Some(format!(
                "{}: every generated credential was rotated; the old passwords are refused",
                describe(&done.request)
            )),
            jobs: Vec::new(),
            start_time: Some(time(done.started)),
            completion_time: Some(time(now)),
        }),
        (None, None) => previous.and_then(|p| p.rotation.clone()),
    };
    let condition = match (&failure, &record) {
        (Some(why), _) => Verdict {
            ok: false,
            reason: "RotationFailed",
            message: format!("{why}; {RETRY}"),
        },
        (None, Some(_)) => Verdict {
            ok: false,
            reason: "Rotating",
            message: rotation
                .as_ref()
                .and_then(|r| r.message.clone())
                .unwrap_or_default(),
        },
        (None, None) => Verdict {
            ok: true,
            reason: "Synced",
            message: format!(
                "the servers accept the credentials in {name} (generation {generation}) and no others"
            ),
        },
    };
    let status = CredentialsStatus {
        generation,
        database_user: embedded(stack)
            .0
            .then(|| database_user(&stack.spec.database, generation)),
        last_rotated: times(stack, &rotated),
        rotation,
        edited_keys: Vec::new(),
    };
    let secret_state = SecretState {
        extra: extra(&data),
        annotations: annotations(
            &data,
            generation,
            request.as_deref(),
            record.as_ref(),
            &rotated,
        ),
    };
    Ok(Decision {
        credentials: Some(credentials_of(&data)),
        secret: secret_state,
        generation,
        jobs,
        status,
        stalled: failure
            .as_ref()
            .map(|why| format!("credentials rotation: {why}")),
        progressing: record.is_some() && failure.is_none(),
        next_due: record
            .is_none()
            .then(|| due(stack, secret, &rotated))
            .flatten(),
        condition,
        happened,
    })
}

/// What to do after a failed step.
const RETRY: &str = "the old and the new passwords both still work; set a new spec.credentials.rotation.requestId to retry the step";

fn started(
    request: &str,
    now: Timestamp,
    stack: &ValidatedStack,
    happened: &mut Vec<Happened>,
) -> Record {
    happened.push(Happened {
        warning: false,
        reason: "RotationStarted",
        message: format!(
            "rotating every generated credential for {}; the new passwords are stored in {} before any server gets them",
            describe(request),
            secret_name(stack)
        ),
    });
    Record {
        request: request.to_string(),
        attempt: request.to_string(),
        step: Step::Adding,
        started: now,
    }
}

fn times(stack: &ValidatedStack, rotated: &Rotated) -> Option<CredentialTimes> {
    let (database, cache) = embedded(stack);
    let database = rotated.database.filter(|_| database).map(time);
    let times = CredentialTimes {
        database: database.clone(),
        database_backup: database.clone(),
        database_root: database,
        cache: rotated.cache.filter(|_| cache).map(time),
    };
    (times != CredentialTimes::default()).then_some(times)
}

#[allow(clippy::too_many_arguments)]
fn rotation_status(
    stack: &ValidatedStack,
    record: &Record,
    generation: u64,
    jobs: Option<&RotationJobs>,
    failure: Option<&str>,
    waiting: Option<&str>,
    failed_since: Option<Time>,
    now: Timestamp,
) -> RotationStatus {
    let (phase, doing) = match record.step {
        Step::Adding if jobs.is_some() => (
            RotationPhase::Adding,
            "Jobs give the servers the new passwords beside the old ones".to_string(),
        ),
        Step::Adding => (
            RotationPhase::Pending,
            "the new passwords are stored".to_string(),
        ),
        Step::Added => (
            RotationPhase::Switching,
            "the servers accept the old and the new passwords".to_string(),
        ),
        Step::RollingOut => (
            RotationPhase::RollingOut,
            format!(
                "the WAS rolls onto the new credentials (generation {generation}{})",
                account_note(stack, generation)
            ),
        ),
        Step::Finishing => (
            RotationPhase::Finishing,
            "Jobs make the servers refuse the old passwords".to_string(),
        ),
    };
    let (phase, detail) = match (failure, waiting) {
        (Some(why), _) => (RotationPhase::Failed, why.to_string()),
        (None, Some(wait)) => (phase, format!("{doing}; {wait}")),
        (None, None) => (phase, doing),
    };
    RotationStatus {
        request: record.request.clone(),
        phase,
        message: Some(format!("{}: {detail}", describe(&record.request))),
        jobs: jobs.map(|j| job_names(stack, j)).unwrap_or_default(),
        start_time: Some(time(record.started)),
        completion_time: failure.map(|_| failed_since.unwrap_or(time(now))),
    }
}

/// The decision for a Secret edited by hand: report it, keep everything as it is,
/// and leave the Secret alone.
fn edited_decision(
    observation: &Observation<'_>,
    edited: Vec<String>,
    generation: u64,
    record: Option<Record>,
    rotated: Rotated,
) -> Decision {
    let stack = observation.stack;
    let name = secret_name(stack);
    let keys = edited.join(", ");
    let message = format!(
        "{name} differs from what the operator wrote ({keys}); pods that start now get what it holds, and no credential is rotated. Put the values back or, if the servers already use them, remove the annotation {FINGERPRINT_ANNOTATION} from {name} to accept them"
    );
    let mut happened = Vec::new();
    if observation.previous.is_none_or(|p| p.edited_keys != edited) {
        happened.push(Happened {
            warning: true,
            reason: "CredentialsEdited",
            message: message.clone(),
        });
    }
    let jobs = record
        .as_ref()
        .and_then(|r| record_jobs(stack, observation.secret, generation, r))
        .filter(|_| observation.jobs.exists);
    Decision {
        credentials: None,
        secret: SecretState::default(),
        generation,
        jobs,
        status: CredentialsStatus {
            generation,
            database_user: embedded(stack)
                .0
                .then(|| database_user(&stack.spec.database, generation)),
            last_rotated: times(stack, &rotated),
            rotation: observation.previous.and_then(|p| p.rotation.clone()),
            edited_keys: edited,
        },
        condition: Verdict {
            ok: false,
            reason: "SecretEdited",
            message: message.clone(),
        },
        happened,
        progressing: false,
        stalled: Some(message),
        next_due: None,
    }
}

/// Sets condition `type_` of `status`, keeping its `lastTransitionTime` from the
/// previous status while its value stays the same.
fn set_condition(
    status: &mut WebtoonStackStatus,
    previous: Option<&WebtoonStackStatus>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    now: &Time,
) {
    let value = if ok { "True" } else { "False" };
    let since = previous
        .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == value)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    let condition = Condition {
        type_: type_.to_string(),
        status: value.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: status.observed_generation,
        last_transition_time: since,
    };
    match status.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => *existing = condition,
        None => status.conditions.push(condition),
    }
}

/// Adds the credentials record and the `CredentialsSynced` condition to `status`; a
/// rotation under way shows in `Reconciling`, one that needs a person in `Stalled`.
pub fn report(
    status: &mut WebtoonStackStatus,
    decision: &Decision,
    previous: Option<&WebtoonStackStatus>,
    now: Time,
) {
    status.credentials = Some(decision.status.clone());
    let verdict = &decision.condition;
    set_condition(
        status,
        previous,
        CREDENTIALS_SYNCED,
        verdict.ok,
        verdict.reason,
        verdict.message.clone(),
        &now,
    );
    let is_true = |status: &WebtoonStackStatus, type_: &str| {
        status
            .conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == "True")
    };
    if decision.progressing && !is_true(status, RECONCILING) {
        set_condition(
            status,
            previous,
            RECONCILING,
            true,
            "RotatingCredentials",
            verdict.message.clone(),
            &now,
        );
    }
    if let Some(why) = &decision.stalled {
        match status
            .conditions
            .iter_mut()
            .find(|c| c.type_ == STALLED && c.status == "True")
        {
            Some(stalled) => stalled.message = format!("{}; {why}", stalled.message),
            None => set_condition(
                status,
                previous,
                STALLED,
                true,
                verdict.reason,
                why.clone(),
                &now,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{WebtoonStack, validate};
    use crate::render::credentials::secret_data;

    const NOW: &str = "2026-12-01T03:00:00.25Z";

    fn stack(rotation: &str) -> ValidatedStack {
        let stack: WebtoonStack = serde_saphyr::from_str(&format!(
            "apiVersion: webtoon.io/v1alpha1\nkind: WebtoonStack\nmetadata: {{name: minitoon, namespace: webtoon}}\nspec:\n  hosts: [minitoon.example]\n  was: {{image: registry.example/was:1.0.0}}\n  credentials: {{rotation: {rotation}}}\n"
        ))
        .expect("a stack");
        validate(&stack).expect("a valid stack")
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    /// A generator of distinct, predictable passwords.
    fn passwords() -> impl FnMut() -> Result<String> {
        let mut n = 0;
        move || {
            n += 1;
            Ok(format!("password-{n:02}"))
        }
    }

    /// The Secret as the apply step would leave it after `decision`.
    fn written(before: &SecretSnapshot, decision: &Decision) -> SecretSnapshot {
        let credentials = decision.credentials.clone().expect("the Secret is written");
        SecretSnapshot {
            data: secret_data(&credentials, &decision.secret),
            annotations: decision.secret.annotations.clone(),
            ..before.clone()
        }
    }

    fn created(
        stack: &ValidatedStack,
        generate: &mut dyn FnMut() -> Result<String>,
    ) -> SecretSnapshot {
        let (credentials, state) = initial_secret(stack, generate).expect("a Secret");
        SecretSnapshot {
            data: secret_data(&credentials, &state),
            annotations: state.annotations,
            uid: "uid-1".to_string(),
            created: Some(at("2026-11-01T00:00:00Z")),
        }
    }

    /// Everything ready and settled; no Job observed.
    fn observe<'a>(
        stack: &'a ValidatedStack,
        secret: &'a SecretSnapshot,
        previous: Option<&'a CredentialsStatus>,
    ) -> Observation<'a> {
        Observation {
            stack,
            secret,
            servers_ready: Ok(()),
            was_settled: Ok(()),
            was_switched: Ok(()),
            jobs: StepOutcome::default(),
            previous,
            now: at(NOW),
        }
    }

    fn finished(jobs: &RotationJobs, outcome: JobOutcome) -> StepOutcome {
        StepOutcome {
            jobs: Some(jobs.clone()),
            exists: true,
            database: Some(outcome.clone()),
            cache: Some(outcome),
        }
    }

    fn reasons(decision: &Decision) -> Vec<&'static str> {
        decision.happened.iter().map(|h| h.reason).collect()
    }

    #[test]
    fn a_new_stack_takes_its_request_as_served_and_rotates_nothing() {
        let stack = stack("{requestId: first}");
        let mut generate = passwords();
        let secret = created(&stack, &mut generate);
        assert_eq!(
            secret.data[DATABASE_ADMIN_PASSWORD_KEY], secret.data[DATABASE_ROOT_PASSWORD_KEY],
            "the administrative account starts with root's password"
        );
        let decision = decide(&observe(&stack, &secret, None), &mut generate).expect("decided");
        assert_eq!(decision.jobs, None);
        assert!(decision.happened.is_empty());
        assert!(decision.condition.ok, "{:?}", decision.condition);
        assert_eq!(written(&secret, &decision), secret, "nothing to write");
        assert_eq!(
            needs(&stack, &secret, at(NOW)),
            Needs::default(),
            "nothing to read"
        );
    }

    #[test]
    fn a_secret_of_an_older_version_is_adopted_with_its_values() {
        let stack = stack("{intervalDays: 90}");
        let old = SecretSnapshot {
            data: BTreeMap::from([
                (DATABASE_ROOT_PASSWORD_KEY.to_string(), "root".to_string()),
                (DATABASE_PASSWORD_KEY.to_string(), "app".to_string()),
                (
                    DATABASE_BACKUP_PASSWORD_KEY.to_string(),
                    "backup".to_string(),
                ),
                (CACHE_PASSWORD_KEY.to_string(), "cache".to_string()),
            ]),
            uid: "uid-1".to_string(),
            created: Some(at("2026-11-01T00:00:00Z")),
            ..Default::default()
        };
        let decision = decide(&observe(&stack, &old, None), &mut passwords()).expect("decided");
        let now = written(&old, &decision);
        for (key, value) in &old.data {
            assert_eq!(&now.data[key], value, "{key} is kept");
        }
        assert_eq!(now.data[DATABASE_ADMIN_PASSWORD_KEY], "root");
        assert_eq!(now.data[CACHE_ADMIN_PASSWORD_KEY], "password-01");
        assert!(now.annotations.contains_key(FINGERPRINT_ANNOTATION));
        assert_eq!(decision.status.database_user.as_deref(), Some("webtoon"));
        assert_eq!(decision.next_due, Some(at("2027-01-30T00:00:00Z")));
    }

    #[test]
    fn a_rotation_adds_switches_and_finishes_without_ever_losing_a_password() {
        let stack = stack("{requestId: first}");
        let mut generate = passwords();
        let secret = created(&stack, &mut generate);
        let original = secret.data.clone();
        let asked = super::tests::stack("{requestId: leak-1}");

        // Asked for, while the database is still starting: new values are stored first.
        let mut waiting = observe(&asked, &secret, None);
        waiting.servers_ready = Err("the database to be ready".to_string());
        let pending = decide(&waiting, &mut generate).expect("decided");
        assert_eq!(reasons(&pending), ["RotationStarted"]);
        assert_eq!(pending.jobs, None, "no Job before the servers are ready");
        let rotation = pending.status.rotation.clone().expect("a rotation");
        assert_eq!(rotation.phase, RotationPhase::Pending);
        let adding = written(&secret, &pending);
        for key in DATABASE_ROTATED_KEYS
            .iter()
            .chain(CACHE_ROTATED_KEYS.iter())
        {
            assert_eq!(
                adding.data[*key], original[*key],
                "{key} stays until the switch"
            );
            assert_ne!(
                adding.data[&next_key(key)],
                original[*key],
                "{key} has a new value"
            );
        }
        // Read again after a crash: the same new values, never others.
        let again = decide(
            &observe(&asked, &adding, Some(&pending.status)),
            &mut generate,
        )
        .expect("decided");
        assert_eq!(written(&adding, &again).data, adding.data);
        let add = again
            .jobs
            .clone()
            .expect("the add Jobs, once the servers are ready");
        assert_eq!(
            (add.step, add.from_account.as_str(), add.to_account.as_str()),
            (RotationStep::Add, "webtoon", "webtoon_2")
        );
        assert_eq!(needs(&asked, &adding, at(NOW)).jobs, Some(add.clone()));

        // The Jobs succeed while a WAS release is under way: the switch waits.
        let mut unsettled = observe(&asked, &adding, Some(&again.status));
        unsettled.jobs = finished(&add, JobOutcome::Succeeded);
        unsettled.was_settled = Err("the WAS release under way".to_string());
        let added = decide(&unsettled, &mut generate).expect("decided");
        assert_eq!(added.jobs, None);
        assert_eq!(
            added.status.rotation.as_ref().map(|r| r.phase),
            Some(RotationPhase::Switching)
        );
        let added_secret = written(&adding, &added);
        assert_eq!(added_secret.data, adding.data);

        // Settled: the switch.
        let switched = decide(
            &observe(&asked, &added_secret, Some(&added.status)),
            &mut generate,
        )
        .expect("decided");
        assert_eq!(reasons(&switched), ["CredentialsSwitched"]);
        assert_eq!(switched.generation, 1);
        assert_eq!(switched.status.database_user.as_deref(), Some("webtoon_2"));
        let rolling = written(&added_secret, &switched);
        for key in DATABASE_ROTATED_KEYS
            .iter()
            .chain(CACHE_ROTATED_KEYS.iter())
        {
            assert_eq!(
                rolling.data[*key],
                adding.data[&next_key(key)],
                "{key} switched"
            );
            assert!(!rolling.data.contains_key(&next_key(key)));
        }
        assert_eq!(
            rolling.data[CACHE_PREVIOUS_PASSWORD_KEY],
            original[CACHE_PASSWORD_KEY]
        );
        assert_eq!(rolling.annotations[GENERATION_ANNOTATION], "1");

        // The WAS rolls; then the old password goes from the Secret and the finish Jobs run.
        let mut rolling_out = observe(&asked, &rolling, Some(&switched.status));
        rolling_out.was_switched =
            Err("WAS pods of the old credentials to stop (was-1)".to_string());
        let waiting = decide(&rolling_out, &mut generate).expect("decided");
        assert!(waiting.progressing && waiting.jobs.is_none());
        assert!(
            waiting.condition.message.contains("was-1"),
            "{}",
            waiting.condition.message
        );
        let finishing = decide(
            &observe(&asked, &rolling, Some(&waiting.status)),
            &mut generate,
        )
        .expect("decided");
        let finish = finishing.jobs.clone().expect("the finish Jobs");
        assert_eq!(
            (finish.step, finish.from_account.as_str()),
            (RotationStep::Finish, "webtoon")
        );
        assert_ne!(finish.suffix, add.suffix);
        let finish_secret = written(&rolling, &finishing);
        assert!(!finish_secret.data.contains_key(CACHE_PREVIOUS_PASSWORD_KEY));

        let mut done = observe(&asked, &finish_secret, Some(&finishing.status));
        done.jobs = finished(&finish, JobOutcome::Succeeded);
        let rotated = decide(&done, &mut generate).expect("decided");
        assert_eq!(reasons(&rotated), ["CredentialsRotated"]);
        assert!(!rotated.progressing && rotated.condition.ok);
        let record = rotated.status.rotation.clone().expect("the last rotation");
        assert_eq!(
            (record.request.as_str(), record.phase),
            ("leak-1", RotationPhase::Succeeded)
        );
        let times = rotated.status.last_rotated.clone().expect("times");
        let second = Some(Time(at("2026-12-01T03:00:00Z")));
        assert_eq!(times.database_root, second, "whole seconds, as stored");
        assert_eq!(times.cache, second);
        let idle = written(&finish_secret, &rotated);
        assert!(!idle.annotations.contains_key(ROTATION_ANNOTATION));
        // Settled again: the same request asks for nothing.
        let steady = decide(
            &observe(&asked, &idle, Some(&rotated.status)),
            &mut generate,
        )
        .expect("decided");
        assert!(steady.happened.is_empty() && steady.jobs.is_none());
        assert_eq!(written(&idle, &steady), idle);
        assert_eq!(steady.status, rotated.status);
        // As the API server stores it: the same status, so no write.
        let stored: CredentialsStatus =
            serde_json::from_value(serde_json::to_value(&steady.status).expect("json"))
                .expect("a status");
        assert_eq!(stored, steady.status);
    }

    #[test]
    fn a_failed_step_is_reported_once_and_retried_by_a_new_request_only() {
        let stack = stack("{requestId: first}");
        let mut generate = passwords();
        let secret = created(&stack, &mut generate);
        let asked = super::tests::stack("{requestId: second}");
        let started = decide(&observe(&asked, &secret, None), &mut generate).expect("decided");
        let adding = written(&secret, &started);
        let add = started.jobs.clone().expect("add Jobs");
        let mut failing = observe(&asked, &adding, Some(&started.status));
        failing.jobs = StepOutcome {
            database: Some(JobOutcome::Failed(
                "database rotation add failed: the database refused the account webtoon_admin"
                    .to_string(),
            )),
            ..finished(&add, JobOutcome::Succeeded)
        };
        let failed = decide(&failing, &mut generate).expect("decided");
        assert_eq!(reasons(&failed), ["RotationFailed"]);
        assert_eq!(failed.condition.reason, "RotationFailed");
        assert!(
            failed
                .stalled
                .as_deref()
                .is_some_and(|s| s.contains("webtoon_admin"))
        );
        assert!(!failed.progressing);
        assert_eq!(
            failed.jobs,
            Some(add.clone()),
            "the failed Jobs stay for their logs"
        );
        let mut again = failing.clone();
        again.previous = Some(&failed.status);
        let still = decide(&again, &mut generate).expect("decided");
        assert!(still.happened.is_empty(), "reported once");
        assert_eq!(written(&adding, &still), written(&adding, &failed));

        let retry = super::tests::stack("{requestId: third}");
        let mut retrying = observe(&retry, &adding, Some(&still.status));
        retrying.jobs = failing.jobs.clone();
        let retried = decide(&retrying, &mut generate).expect("decided");
        assert_eq!(reasons(&retried), ["RotationRetried"]);
        let new = retried.jobs.clone().expect("new Jobs");
        assert_ne!(new.suffix, add.suffix);
        assert_eq!(
            written(&adding, &retried).data,
            adding.data,
            "the retry uses the values stored before the failure"
        );
        assert!(retried.progressing);
    }

    #[test]
    fn a_hand_edit_is_reported_and_stops_everything_until_resolved() {
        let stack = stack("{requestId: first}");
        let mut generate = passwords();
        let mut secret = created(&stack, &mut generate);
        secret.data.insert(
            DATABASE_PASSWORD_KEY.to_string(),
            "typed by hand".to_string(),
        );
        secret.data.remove(CACHE_ADMIN_PASSWORD_KEY);
        let asked = super::tests::stack("{requestId: second}");
        let decision = decide(&observe(&asked, &secret, None), &mut generate).expect("decided");
        assert_eq!(decision.credentials, None, "the Secret is left as it is");
        assert_eq!(
            decision.status.edited_keys,
            [CACHE_ADMIN_PASSWORD_KEY, DATABASE_PASSWORD_KEY]
        );
        assert_eq!(reasons(&decision), ["CredentialsEdited"]);
        assert_eq!(decision.condition.reason, "SecretEdited");
        assert!(decision.jobs.is_none() && !decision.progressing);
        let again = decide(
            &observe(&asked, &secret, Some(&decision.status)),
            &mut generate,
        )
        .expect("decided");
        assert!(again.happened.is_empty(), "reported once");

        // Accepted by removing the fingerprint: the values are taken as they are.
        secret.annotations.remove(FINGERPRINT_ANNOTATION);
        let accepted = decide(
            &observe(&stack, &secret, Some(&again.status)),
            &mut generate,
        )
        .expect("decided");
        let now = written(&secret, &accepted);
        assert_eq!(now.data[DATABASE_PASSWORD_KEY], "typed by hand");
        assert!(accepted.condition.ok && accepted.status.edited_keys.is_empty());
    }

    #[test]
    fn the_interval_starts_a_rotation_when_due() {
        let stack = stack("{intervalDays: 30}");
        let mut generate = passwords();
        let secret = created(&stack, &mut generate);
        assert!(
            needs(&stack, &secret, at(NOW)).servers,
            "created 30 days ago: due"
        );
        let decision = decide(&observe(&stack, &secret, None), &mut generate).expect("decided");
        assert_eq!(reasons(&decision), ["RotationStarted"]);
        assert_eq!(
            decision.status.rotation.map(|r| r.request),
            Some(INTERVAL_REQUEST.to_string())
        );
        let early = observe(&stack, &secret, None);
        let early = Observation {
            now: at("2026-11-20T00:00:00Z"),
            ..early
        };
        let idle = decide(&early, &mut generate).expect("decided");
        assert_eq!(idle.next_due, Some(at("2026-12-01T00:00:00Z")));
        assert!(idle.happened.is_empty());
    }

    #[test]
    fn a_rotation_spec_is_validated_field_by_field() {
        let errors = |rotation: &str, extra: &str| -> Vec<String> {
            let stack: WebtoonStack = serde_saphyr::from_str(&format!(
                "apiVersion: webtoon.io/v1alpha1\nkind: WebtoonStack\nmetadata: {{name: minitoon, namespace: webtoon}}\nspec:\n  hosts: [minitoon.example]\n  was: {{image: registry.example/was:1.0.0}}\n  credentials: {{rotation: {rotation}}}\n{extra}"
            ))
            .expect("a stack");
            validate(&stack)
                .err()
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert!(errors("{requestId: 2026-05-01T10:00:00Z, intervalDays: 90}", "").is_empty());
        let empty = errors("{}", "");
        assert!(
            empty[0].starts_with("spec.credentials.rotation: is empty"),
            "{empty:?}"
        );
        let bad = errors("{requestId: 'no spaces'}", "");
        assert!(
            bad[0].starts_with(
                "spec.credentials.rotation.requestId: \"no spaces\" is not a request ID"
            ),
            "{bad:?}"
        );
        let long = errors("{intervalDays: 0}", "");
        assert_eq!(
            long,
            ["spec.credentials.rotation.intervalDays: is 0; it must be between 1 and 3650"]
        );
        let external = errors(
            "{requestId: x}",
            "  database: {mode: external, external: {host: db.example, port: 3306, secretName: db}}\n  cache: {mode: external, external: {host: cache.example, port: 6379, secretName: cache}}\n",
        );
        assert!(external[0].contains("both external"), "{external:?}");
    }

    #[test]
    fn the_status_shows_a_rotation_in_reconciling_and_a_failure_in_stalled() {
        let stack = stack("{requestId: first}");
        let mut generate = passwords();
        let secret = created(&stack, &mut generate);
        let asked = super::tests::stack("{requestId: second}");
        let started = decide(&observe(&asked, &secret, None), &mut generate).expect("decided");
        let condition = |status: &WebtoonStackStatus, type_: &str| {
            status
                .conditions
                .iter()
                .find(|c| c.type_ == type_)
                .map(|c| (c.status.clone(), c.reason.clone()))
        };
        let settled = WebtoonStackStatus {
            conditions: vec![
                Condition {
                    type_: RECONCILING.to_string(),
                    status: "False".to_string(),
                    reason: "Reconciled".to_string(),
                    message: String::new(),
                    observed_generation: Some(2),
                    last_transition_time: Time(at("2026-11-01T00:00:00Z")),
                },
                Condition {
                    type_: STALLED.to_string(),
                    status: "False".to_string(),
                    reason: "Progressing".to_string(),
                    message: String::new(),
                    observed_generation: Some(2),
                    last_transition_time: Time(at("2026-11-01T00:00:00Z")),
                },
            ],
            ..Default::default()
        };
        let mut status = settled.clone();
        report(&mut status, &started, Some(&settled), Time(at(NOW)));
        assert_eq!(
            condition(&status, RECONCILING),
            Some(("True".to_string(), "RotatingCredentials".to_string()))
        );
        assert_eq!(
            condition(&status, CREDENTIALS_SYNCED),
            Some(("False".to_string(), "Rotating".to_string()))
        );
        assert_eq!(status.credentials.as_ref().map(|c| c.generation), Some(0));

        let adding = written(&secret, &started);
        let jobs = started.jobs.clone().expect("jobs");
        let mut failing = observe(&asked, &adding, Some(&started.status));
        failing.jobs = finished(
            &jobs,
            JobOutcome::Failed("BackoffLimitExceeded".to_string()),
        );
        let failed = decide(&failing, &mut generate).expect("decided");
        let mut status = settled.clone();
        report(&mut status, &failed, Some(&settled), Time(at(NOW)));
        assert_eq!(
            condition(&status, STALLED),
            Some(("True".to_string(), "RotationFailed".to_string()))
        );
        assert_eq!(
            condition(&status, RECONCILING).map(|c| c.0),
            Some("False".to_string())
        );
    }

    #[test]
    fn an_external_cache_keeps_its_keys_out_of_the_rotation() {
        let mut external = stack("{requestId: second}");
        external.spec.cache.mode = ServiceMode::External;
        let mut generate = passwords();
        let secret = created(&stack("{requestId: first}"), &mut generate);
        let decision = decide(&observe(&external, &secret, None), &mut generate).expect("decided");
        let now = written(&secret, &decision);
        assert!(now.data.contains_key(&next_key(DATABASE_ROOT_PASSWORD_KEY)));
        assert!(!now.data.contains_key(&next_key(CACHE_PASSWORD_KEY)));
        let jobs = decision.jobs.expect("jobs");
        assert_eq!(
            job_names(&external, &jobs).len(),
            1,
            "the database's Job alone"
        );
    }
}
