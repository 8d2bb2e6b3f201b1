//! The hardening audit over every pod the operator renders: every example, the
//! variants that switch on the optional parts, and (in render_properties) generated
//! specs. The audit itself is shown to catch each kind of weakness it looks for.

mod common;

use common::hardening::{audit, pod_specs, violations};
use common::{VARIANTS, example_files, stack_from_yaml, stacks_in, test_credentials};
use k8s_openapi::api::core::v1::{HostPathVolumeSource, PodSpec, Volume};
use webtoon_operator::api::ValidatedStack;
use webtoon_operator::manifest::validated;
use webtoon_operator::render::{Observed, render};

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
    stacks
}

#[test]
fn every_rendered_pod_passes_the_hardening_audit() {
    let mut pods = 0;
    for stack in every_stack() {
        let children = render(&stack, &observed());
        pods += pod_specs(&children).len();
        let found = audit(&stack, &children);
        assert!(found.is_empty(), "{}: {found:#?}", stack.name);
    }
    assert!(pods >= 12, "the audit saw the pods ({pods})");
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
