//! The hardening audit over every pod the operator renders: every example, the
//! variants that switch on the optional parts, stacks whose migration and
//! pre-migration backup Jobs exist, and (in render_properties) generated specs. The
//! audit itself is shown to catch each kind of weakness it looks for.

mod common;

use common::hardening::{audit, pod_specs, violations};
use common::migration::{MIGRATION_STACK, migrating, without_backups};
use common::{VARIANTS, example_files, stack_from_yaml, stacks_in, test_credentials};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{HostPathVolumeSource, PodSpec, Volume};
use webtoon_operator::api::ValidatedStack;
use webtoon_operator::manifest::validated;
use webtoon_operator::render::meta::COMPONENT_LABEL;
use webtoon_operator::render::was::MIGRATION_COMPONENT;
use webtoon_operator::render::{Children, Observed, render};

fn observed() -> Observed {
    Observed {
        credentials: Some(test_credentials()),
        now: None,
        ..Default::default()
    }
}

fn every_stack() -> Vec<ValidatedStack> {
    let mut stacks: Vec<ValidatedStack> = example_files()
        .iter()
        .flat_map(|f| stacks_in(f))
        .map(|s| validated(&s).expect("example is valid"))
        .collect();
    stacks.extend(VARIANTS.iter().map(|y| stack_from_yaml(y)));
    stacks.extend(migration_stacks());
    stacks
}

/// Stacks with a migration: with backups and a timeout of its own, and with the
/// default timeout and no backups.
fn migration_stacks() -> [ValidatedStack; 2] {
    let plain = stack_from_yaml(&without_backups(
        &MIGRATION_STACK.replace("      timeoutSeconds: 900\n", ""),
    ));
    assert!(plain.spec.database.backup.is_none());
    assert_eq!(
        plain.spec.was.migration.as_ref().map(|m| m.timeout_seconds),
        Some(600),
        "the default timeout"
    );
    [stack_from_yaml(MIGRATION_STACK), plain]
}

/// The pod template of every Job, named `Job/name` (the shared `pod_specs` covers
/// the long-running workloads and the CronJobs).
fn job_pods(children: &Children) -> Vec<(String, &Job, PodSpec)> {
    children
        .jobs
        .iter()
        .map(|job| {
            let pod = job
                .spec
                .as_ref()
                .and_then(|s| s.template.spec.clone())
                .expect("a Job has a pod template");
            let name = job.metadata.name.clone().unwrap_or_default();
            (format!("Job/{name}"), job, pod)
        })
        .collect()
}

fn component(job: &Job) -> Option<&str> {
    job.metadata
        .labels
        .as_ref()?
        .get(COMPONENT_LABEL)
        .map(String::as_str)
}

#[test]
fn every_rendered_pod_passes_the_hardening_audit() {
    let (mut pods, mut jobs) = (0, 0);
    for stack in every_stack() {
        // Observing a migration adds its Jobs to stacks that have one, and nothing
        // to the others.
        let children = render(&stack, &migrating(&stack));
        pods += pod_specs(&children).len();
        let mut found = audit(&stack, &children);
        for (owner, _, pod) in job_pods(&children) {
            jobs += 1;
            found.extend(
                violations(&stack, &pod)
                    .into_iter()
                    .map(|v| format!("{owner}: {v}")),
            );
        }
        assert!(found.is_empty(), "{}: {found:#?}", stack.name);
    }
    assert!(pods >= 12, "the audit saw the pods ({pods})");
    assert!(
        jobs >= 3,
        "the audit saw both Jobs of one migration and the migration of the other ({jobs})"
    );
}

#[test]
fn migration_and_pre_migration_backup_jobs_run_once_hardened() {
    for stack in migration_stacks() {
        let migration = stack.spec.was.migration.clone().expect("migration spec");
        let children = render(&stack, &migrating(&stack));
        let pods = job_pods(&children);
        let expected = if stack.spec.database.backup.is_some() {
            2
        } else {
            1
        };
        assert_eq!(pods.len(), expected, "{}: the Jobs", stack.name);
        for (owner, job, pod) in pods {
            let found = violations(&stack, &pod);
            assert!(found.is_empty(), "{owner}: {found:#?}");
            let spec = job.spec.as_ref().expect("job spec");
            assert_eq!(pod.restart_policy.as_deref(), Some("Never"), "{owner}");
            assert_eq!(pod.automount_service_account_token, Some(false), "{owner}");
            assert_eq!(pod.enable_service_links, Some(false), "{owner}");
            assert!(
                pod.init_containers.is_none() && pod.containers.len() == 1,
                "{owner}: one container"
            );
            let container = &pod.containers[0];
            let sc = container
                .security_context
                .clone()
                .expect("security context");
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{owner}");
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{owner}");
            assert_eq!(
                sc.capabilities.and_then(|c| c.drop),
                Some(vec!["ALL".to_string()]),
                "{owner}"
            );
            let pod_sc = pod.security_context.clone().expect("pod security context");
            assert_eq!(
                sc.run_as_non_root.or(pod_sc.run_as_non_root),
                Some(true),
                "{owner}"
            );
            assert_eq!(
                sc.seccomp_profile
                    .or(pod_sc.seccomp_profile)
                    .map(|s| s.type_)
                    .as_deref(),
                Some("RuntimeDefault"),
                "{owner}"
            );
            let resources = container.resources.clone().expect("resources");
            assert!(
                resources.requests.is_some() && resources.limits.is_some(),
                "{owner}"
            );
            assert!(
                spec.active_deadline_seconds.is_some(),
                "{owner}: a hung Job is stopped"
            );
            match component(job) {
                Some(MIGRATION_COMPONENT) => {
                    assert_eq!(spec.backoff_limit, Some(0), "{owner}: never retried");
                    assert_eq!(
                        spec.active_deadline_seconds,
                        Some(i64::from(migration.timeout_seconds)),
                        "{owner}: stopped after the spec's timeout"
                    );
                    assert_eq!(
                        container.resources,
                        Some(stack.spec.was.resources.clone()),
                        "{owner}: the WAS's resources"
                    );
                }
                Some("database-backup") => {}
                other => panic!("{owner}: unexpected component {other:?}"),
            }
        }
    }
}

#[test]
fn a_migration_follows_the_was_to_a_writable_root_and_no_further() {
    let stack = stack_from_yaml(&MIGRATION_STACK.replace(
        "    migration:\n",
        "    writableRootFilesystem: true\n    migration:\n",
    ));
    assert!(stack.spec.was.writable_root_filesystem);
    let children = render(&stack, &migrating(&stack));
    let pods = job_pods(&children);
    assert_eq!(pods.len(), 2);
    for (owner, job, pod) in pods {
        let root = pod.containers[0]
            .security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem);
        let found = violations(&stack, &pod);
        if component(job) == Some(MIGRATION_COMPONENT) {
            // The migration runs the WAS image, which asked for a writable root; the
            // audit allows that to the `was` container only, so it is the one finding.
            assert_ne!(root, Some(true), "{owner}: the image writes to its root");
            assert!(
                found.len() == 1 && found[0].contains("root filesystem is writable"),
                "{owner}: {found:#?}"
            );
        } else {
            assert_eq!(
                root,
                Some(true),
                "{owner}: the backup keeps a read-only root"
            );
            assert!(found.is_empty(), "{owner}: {found:#?}");
        }
    }
}

#[test]
fn a_writable_root_is_allowed_only_to_a_was_that_asks_for_it() {
    let stack = stack_from_yaml(
        r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: rwtoon, namespace: webtoon}
spec:
  hosts: [rwtoon.example]
  was: {image: "registry.example/rw:1.0.0", writableRootFilesystem: true}
"#,
    );
    let children = render(&stack, &observed());
    assert!(audit(&stack, &children).is_empty());
    let was = pod_specs(&children)
        .into_iter()
        .find(|(owner, _)| owner == "Deployment/rwtoon-was")
        .expect("was pod");
    let root = was.1.containers[0]
        .security_context
        .as_ref()
        .and_then(|s| s.read_only_root_filesystem);
    assert_ne!(root, Some(true), "the WAS asked for a writable root");
}

/// What a weakening is called, and how it changes a pod.
type Weakening = (&'static str, fn(&mut PodSpec));

#[test]
fn the_audit_catches_each_weakness() {
    let stack = stack_from_yaml(VARIANTS[0]);
    let children = render(&stack, &observed());
    let (_, clean) = pod_specs(&children)
        .into_iter()
        .find(|(owner, _)| owner.starts_with("Deployment/") && owner.ends_with("-proxy"))
        .expect("proxy pod");
    assert!(violations(&stack, &clean).is_empty());

    let weakened: Vec<Weakening> = vec![
        ("automountServiceAccountToken", |p| {
            p.automount_service_account_token = None
        }),
        ("hostNetwork", |p| p.host_network = Some(true)),
        ("hostPath", |p| {
            p.volumes.get_or_insert_with(Vec::new).push(Volume {
                name: "host".into(),
                host_path: Some(HostPathVolumeSource {
                    path: "/".into(),
                    type_: None,
                }),
                ..Default::default()
            })
        }),
        ("allowPrivilegeEscalation", |p| {
            if let Some(sc) = p.containers[0].security_context.as_mut() {
                sc.allow_privilege_escalation = None;
            }
        }),
        ("privileged", |p| {
            if let Some(sc) = p.containers[0].security_context.as_mut() {
                sc.privileged = Some(true);
            }
        }),
        ("capabilities", |p| {
            if let Some(sc) = p.containers[0].security_context.as_mut() {
                sc.capabilities = None;
            }
        }),
        ("runAsNonRoot", |p| {
            if let Some(sc) = p.security_context.as_mut() {
                sc.run_as_non_root = None;
            }
            if let Some(sc) = p.containers[0].security_context.as_mut() {
                sc.run_as_non_root = None;
            }
        }),
        ("seccomp", |p| {
            if let Some(sc) = p.security_context.as_mut() {
                sc.seccomp_profile = None;
            }
            if let Some(sc) = p.containers[0].security_context.as_mut() {
                sc.seccomp_profile = None;
            }
        }),
        ("root filesystem", |p| {
            if let Some(sc) = p.containers[0].security_context.as_mut() {
                sc.read_only_root_filesystem = Some(false);
            }
        }),
        ("/tmp", |p| {
            if let Some(m) = p.containers[0].volume_mounts.as_mut() {
                m.retain(|m| m.mount_path != "/tmp");
            }
        }),
        ("limits", |p| {
            if let Some(r) = p.containers[0].resources.as_mut() {
                r.limits = None;
            }
        }),
        ("latest", |p| {
            p.containers[0].image = Some("nginx:latest".into())
        }),
        ("untagged", |p| {
            p.containers[0].image = Some("registry.example:5000/nginx".into())
        }),
    ];
    for (what, weaken) in weakened {
        let mut pod = clean.clone();
        weaken(&mut pod);
        assert!(
            !violations(&stack, &pod).is_empty(),
            "the audit misses {what}"
        );
    }
}
