//! The stack's passwords: generated once with the operating system's CSPRNG, stored
//! in `<stack>-credentials`, and changed only by a rotation. A value that is already
//! there is kept as it is, so a stack re-created under `deletionPolicy: Retain` finds
//! its data readable with the same passwords.
//!
//! This module reads what a rotation depends on (the Secret, the rotation Jobs, the
//! database and cache, the WAS) and lets [`rotation::decide`] choose; only what that
//! needs is read, so a stack with no rotation under way costs one read of its Secret.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};

use super::migration::{self, JobOutcome};
use super::release::get_opt;
use super::rollout::{self, Progress};
use super::rotation::{self, Decision, Observation, SecretSnapshot, StepOutcome};
use crate::api::{MigrationPhase, ServiceMode, ValidatedStack, WebtoonStackStatus};
use crate::render::cache::acl_rotation::CACHE_ROTATION_COMPONENT;
use crate::render::credentials::{GENERATION_ANNOTATION, RotationJobs, secret, secret_name};
use crate::render::database::rotation_job::DATABASE_ROTATION_COMPONENT;
use crate::render::meta::{child_name, selector_labels};
use crate::render::release::template_hash;
use crate::render::rotation::job_name;
use crate::render::was;
use crate::{Error, Result};

/// Length of generated passwords: 32 characters of 62 symbols, about 190 bits.
pub const PASSWORD_LENGTH: usize = 32;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh random password of [`PASSWORD_LENGTH`] letters and digits.
pub fn generate_password() -> Result<String> {
    let mut password = String::with_capacity(PASSWORD_LENGTH);
    let mut buffer = [0u8; 64];
    while password.len() < PASSWORD_LENGTH {
        getrandom::fill(&mut buffer).map_err(|e| Error::Credentials(e.to_string()))?;
        // Rejection sampling keeps every symbol equally likely: 248 = 4 * 62.
        for byte in buffer.iter().filter(|b| **b < 248) {
            if password.len() == PASSWORD_LENGTH {
                break;
            }
            password.push(char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]));
        }
    }
    Ok(password)
}

/// The Secret's data as text; a value that is not UTF-8 counts as absent (and, in a
/// fingerprinted Secret, as edited).
fn snapshot(secret: &Secret) -> SecretSnapshot {
    let data = secret
        .data
        .iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), String::from_utf8(v.0.clone()).ok()?)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    SecretSnapshot {
        data,
        annotations: secret.metadata.annotations.clone().unwrap_or_default(),
        uid: secret.metadata.uid.clone().unwrap_or_default(),
        created: secret.metadata.creation_timestamp.as_ref().map(|t| t.0),
    }
}

/// The credentials Secret, created with fresh passwords when it does not exist. A
/// Secret someone else created first wins: its values, never ours.
async fn read_or_create(client: &Client, stack: &ValidatedStack) -> Result<Secret> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &stack.namespace);
    let name = secret_name(stack);
    if let Some(existing) = api
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube("read", "Secret", &name, e))?
    {
        return Ok(existing);
    }
    let (credentials, state) = rotation::initial_secret(stack, &mut || generate_password())?;
    match api
        .create(&PostParams::default(), &secret(stack, &credentials, &state))
        .await
    {
        Ok(created) => Ok(created),
        Err(kube::Error::Api(status)) if status.code == 409 => api
            .get(&name)
            .await
            .map_err(|e| Error::kube("read", "Secret", &name, e)),
        Err(e) => Err(Error::kube("create", "Secret", &name, e)),
    }
}

/// The stack's credentials and what a rotation does next: reads the Secret (creating
/// it when missing) and, while a rotation is under way or due, what it depends on.
pub async fn observe(
    client: &Client,
    stack: &ValidatedStack,
    previous: Option<&WebtoonStackStatus>,
    now: Timestamp,
) -> Result<Decision> {
    let secret = snapshot(&read_or_create(client, stack).await?);
    // The WAS's templates as of the generation the Secret records.
    let mut at_generation = stack.clone();
    at_generation.credentials_generation = rotation::secret_generation(&secret);
    let needs = rotation::needs(stack, &secret, now);
    let servers_ready = if needs.servers {
        servers_ready(client, stack).await?
    } else {
        Ok(())
    };
    let jobs = match &needs.jobs {
        Some(jobs) => step_outcome(client, stack, jobs).await?,
        None => StepOutcome::default(),
    };
    let was_settled = if needs.settled {
        was_settled(client, &at_generation, previous, now).await?
    } else {
        Err("the WAS release under way".to_string())
    };
    let was_switched = if needs.switched {
        was_switched(client, &at_generation, now).await?
    } else {
        Err("every WAS pod to run the new credentials".to_string())
    };
    rotation::decide(
        &Observation {
            stack,
            secret: &secret,
            servers_ready,
            was_settled,
            was_switched,
            jobs,
            previous: previous.and_then(|p| p.credentials.as_ref()),
            now,
        },
        &mut || generate_password(),
    )
}

/// Whether the embedded database and cache are ready; else what is waited for.
async fn servers_ready(
    client: &Client,
    stack: &ValidatedStack,
) -> Result<std::result::Result<(), String>> {
    let mut waiting = Vec::new();
    for (mode, component, label) in [
        (stack.spec.database.mode, "database", "the database"),
        (stack.spec.cache.mode, "cache", "the cache"),
    ] {
        if mode != ServiceMode::Embedded {
            continue;
        }
        let set: Option<StatefulSet> =
            get_opt(client, &stack.namespace, &child_name(stack, component)).await?;
        let ready = set
            .and_then(|s| s.status)
            .and_then(|s| s.ready_replicas)
            .is_some_and(|r| r >= 1);
        if !ready {
            waiting.push(label);
        }
    }
    Ok(if waiting.is_empty() {
        Ok(())
    } else {
        Err(format!("{} to be ready", waiting.join(" and ")))
    })
}

/// How the Jobs of a step ended, with the termination message of a failed one.
async fn step_outcome(
    client: &Client,
    stack: &ValidatedStack,
    jobs: &RotationJobs,
) -> Result<StepOutcome> {
    let mut outcome = StepOutcome {
        jobs: Some(jobs.clone()),
        ..StepOutcome::default()
    };
    for (mode, component) in [
        (stack.spec.database.mode, DATABASE_ROTATION_COMPONENT),
        (stack.spec.cache.mode, CACHE_ROTATION_COMPONENT),
    ] {
        if mode != ServiceMode::Embedded {
            continue;
        }
        let name = job_name(stack, component, jobs);
        let job: Option<Job> = get_opt(client, &stack.namespace, &name).await?;
        outcome.exists |= job.is_some();
        let mut result = migration::outcome(job.as_ref());
        if let JobOutcome::Failed(why) = &result {
            let said = last_words(client, stack, &name).await?;
            result = JobOutcome::Failed(match said {
                Some(said) => format!("{said} ({why})"),
                None => why.clone(),
            });
        }
        if component == DATABASE_ROTATION_COMPONENT {
            outcome.database = Some(result);
        } else {
            outcome.cache = Some(result);
        }
    }
    Ok(outcome)
}

/// The termination message of the newest failed pod of the Job `name`.
async fn last_words(client: &Client, stack: &ValidatedStack, name: &str) -> Result<Option<String>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &stack.namespace);
    let list = pods
        .list(&ListParams::default().labels(&format!("job-name={name}")))
        .await
        .map_err(|e| Error::kube("list", "Pod", "", e))?;
    let mut said: Vec<(Option<Timestamp>, String)> = list
        .items
        .iter()
        .flat_map(|p| {
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .filter_map(|c| {
            let terminated = c.state.as_ref()?.terminated.as_ref()?;
            let message = terminated.message.as_deref()?.trim();
            (terminated.exit_code != 0 && !message.is_empty()).then(|| {
                (
                    terminated.finished_at.as_ref().map(|t| t.0),
                    message.lines().last().unwrap_or(message).to_string(),
                )
            })
        })
        .collect();
    said.sort();
    Ok(said.pop().map(|(_, message)| message))
}

/// Whether the WAS runs its spec's template completely, with no release failed and
/// no migration under way; else what is waited for.
async fn was_settled(
    client: &Client,
    stack: &ValidatedStack,
    previous: Option<&WebtoonStackStatus>,
    now: Timestamp,
) -> Result<std::result::Result<(), String>> {
    if let Some(failed) = previous
        .and_then(|p| p.rollouts.as_ref())
        .and_then(|r| r.was.as_ref())
        .and_then(|w| w.failed.as_ref())
    {
        return Ok(Err(format!(
            "a new WAS release (the one of image {} failed)",
            failed.image
        )));
    }
    if let Some(migration) = previous.and_then(|p| p.migration.as_ref()).filter(|m| {
        matches!(
            m.phase,
            MigrationPhase::Pending | MigrationPhase::BackingUp | MigrationPhase::Running
        )
    }) {
        return Ok(Err(format!("the migration of image {}", migration.image)));
    }
    let deployment: Option<Deployment> =
        get_opt(client, &stack.namespace, &child_name(stack, "was")).await?;
    let hash = template_hash(&was::pod_template(stack));
    Ok(
        match rollout::progress(deployment.as_ref(), &hash, &[], now) {
            Progress::Complete => Ok(()),
            _ => Err("the WAS release under way".to_string()),
        },
    )
}

/// Whether every WAS pod, terminating ones included, runs the stack's credentials
/// generation, and the release of it has rolled out; else what is waited for.
async fn was_switched(
    client: &Client,
    stack: &ValidatedStack,
    now: Timestamp,
) -> Result<std::result::Result<(), String>> {
    let deployment: Option<Deployment> =
        get_opt(client, &stack.namespace, &child_name(stack, "was")).await?;
    let hash = template_hash(&was::pod_template(stack));
    if rollout::progress(deployment.as_ref(), &hash, &[], now) != Progress::Complete {
        return Ok(Err("the WAS to roll out the new credentials".to_string()));
    }
    let selector = selector_labels(stack, "was")
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &stack.namespace);
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| Error::kube("list", "Pod", "", e))?;
    let generation = stack.credentials_generation.to_string();
    let old: Vec<String> = list
        .items
        .iter()
        .filter(|p| {
            p.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(GENERATION_ANNOTATION))
                != Some(&generation)
        })
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    Ok(if old.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "WAS pods of the old credentials to stop ({})",
            old.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_alphanumeric_and_distinct() {
        let a = generate_password().expect("random");
        let b = generate_password().expect("random");
        assert_eq!(a.len(), PASSWORD_LENGTH);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
