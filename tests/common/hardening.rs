//! The hardening audit of rendered pods: the Pod Security Standards "restricted"
//! profile, a read-only root filesystem with a writable emptyDir for temporary files
//! (where the image allows it), no service-account token, requests and limits, and
//! pinned images. Returns every violation, so one run names them all.

use k8s_openapi::api::core::v1::{Container, PodSpec};
use webtoon_operator::api::ValidatedStack;
use webtoon_operator::render::Children;

/// Every pod template of the rendered children, named `Kind/name`.
pub fn pod_specs(children: &Children) -> Vec<(String, PodSpec)> {
    let mut pods = Vec::new();
    for d in &children.deployments {
        if let Some(pod) = d.spec.as_ref().and_then(|s| s.template.spec.clone()) {
            pods.push((
                format!("Deployment/{}", d.metadata.name.clone().unwrap_or_default()),
                pod,
            ));
        }
    }
    for c in &children.cron_jobs {
        let pod = c
            .spec
            .as_ref()
            .and_then(|s| s.job_template.spec.as_ref())
            .and_then(|j| j.template.spec.clone());
        if let Some(pod) = pod {
            pods.push((
                format!("CronJob/{}", c.metadata.name.clone().unwrap_or_default()),
                pod,
            ));
        }
    }
    for s in &children.stateful_sets {
        if let Some(pod) = s.spec.as_ref().and_then(|s| s.template.spec.clone()) {
            pods.push((
                format!(
                    "StatefulSet/{}",
                    s.metadata.name.clone().unwrap_or_default()
                ),
                pod,
            ));
        }
    }
    pods
}

fn pinned(image: &str) -> bool {
    let last = image.rsplit('/').next().unwrap_or_default();
    !image.is_empty()
        && !image.ends_with(":latest")
        && (image.contains("@sha256:") || last.contains(':'))
}

fn container_violations(
    stack: &ValidatedStack,
    pod: &PodSpec,
    container: &Container,
    out: &mut Vec<String>,
) {
    let name = &container.name;
    let mut fail = |what: &str| out.push(format!("container {name}: {what}"));
    let sc = container.security_context.clone().unwrap_or_default();
    if sc.allow_privilege_escalation != Some(false) {
        fail("allowPrivilegeEscalation is not false");
    }
    if sc.privileged == Some(true) {
        fail("privileged");
    }
    let capabilities = sc.capabilities.clone().unwrap_or_default();
    if capabilities.drop != Some(vec!["ALL".to_string()]) {
        fail("does not drop ALL capabilities");
    }
    if capabilities
        .add
        .iter()
        .flatten()
        .any(|c| c != "NET_BIND_SERVICE")
    {
        fail("adds a capability beyond NET_BIND_SERVICE");
    }
    if sc.run_as_user == Some(0) {
        fail("runs as root");
    }
    let pod_sc = pod.security_context.clone().unwrap_or_default();
    let non_root = sc.run_as_non_root.or(pod_sc.run_as_non_root);
    if non_root != Some(true) {
        fail("runAsNonRoot is not true");
    }
    let seccomp = sc
        .seccomp_profile
        .or(pod_sc.seccomp_profile)
        .map(|s| s.type_);
    if !matches!(seccomp.as_deref(), Some("RuntimeDefault" | "Localhost")) {
        fail("no RuntimeDefault seccomp profile");
    }
    let writable_root_allowed = name == "was" && stack.spec.was.writable_root_filesystem;
    if sc.read_only_root_filesystem != Some(true) && !writable_root_allowed {
        fail("root filesystem is writable");
    }
    if sc.read_only_root_filesystem == Some(true) {
        let tmp = container
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == "/tmp");
        let from_empty_dir = tmp.is_some_and(|m| {
            m.read_only != Some(true)
                && pod
                    .volumes
                    .iter()
                    .flatten()
                    .any(|v| v.name == m.name && v.empty_dir.is_some())
        });
        if !from_empty_dir {
            fail("read-only root without a writable emptyDir at /tmp");
        }
    }
    let resources = container.resources.clone().unwrap_or_default();
    for (kind, map) in [
        ("requests", resources.requests),
        ("limits", resources.limits),
    ] {
        for resource in ["cpu", "memory"] {
            if !map.as_ref().is_some_and(|m| m.contains_key(resource)) {
                fail(&format!("no {resource} in {kind}"));
            }
        }
    }
    match container.image.as_deref() {
        Some(image) if pinned(image) => {}
        other => fail(&format!("image {other:?} is not pinned to a tag or digest")),
    }
}

/// Every hardening violation in `pod`.
pub fn violations(stack: &ValidatedStack, pod: &PodSpec) -> Vec<String> {
    let mut out = Vec::new();
    if pod.automount_service_account_token != Some(false) {
        out.push("automountServiceAccountToken is not false".to_string());
    }
    for (flag, set) in [
        ("hostNetwork", pod.host_network),
        ("hostPID", pod.host_pid),
        ("hostIPC", pod.host_ipc),
    ] {
        if set == Some(true) {
            out.push(format!("{flag} is set"));
        }
    }
    for volume in pod.volumes.iter().flatten() {
        if volume.host_path.is_some() {
            out.push(format!("volume {} is a hostPath", volume.name));
        }
    }
    for container in pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
    {
        container_violations(stack, pod, container, &mut out);
    }
    out
}

/// Every violation in every pod of `children`, prefixed with the pod's owner.
pub fn audit(stack: &ValidatedStack, children: &Children) -> Vec<String> {
    pod_specs(children)
        .into_iter()
        .flat_map(|(owner, pod)| {
            violations(stack, &pod)
                .into_iter()
                .map(move |v| format!("{owner}: {v}"))
        })
        .collect()
}
