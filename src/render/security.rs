//! Pod and container security settings that meet the Pod Security Standards
//! "restricted" profile.

use k8s_openapi::api::core::v1::{
    Capabilities, EmptyDirVolumeSource, PodSecurityContext, SeccompProfile, SecurityContext, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// A restricted pod security context running as `uid`, with `fs_group` owning volumes.
pub fn pod_security_context(uid: i64, fs_group: Option<i64>) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        fs_group,
        fs_group_change_policy: fs_group.map(|_| "OnRootMismatch".to_string()),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A restricted container security context: no privilege escalation, no
/// capabilities, and a read-only root filesystem unless the image must write to it.
pub fn container_security_context(read_only_root: bool) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(read_only_root),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            ..Default::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A writable scratch volume for a read-only container, bounded in size.
pub fn scratch_volume(name: &str, size_limit: &str, in_memory: bool) -> Volume {
    Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: in_memory.then(|| "Memory".to_string()),
            size_limit: Some(Quantity(size_limit.to_string())),
        }),
        ..Default::default()
    }
}

/// A restricted pod security context that keeps the user the image declares, for
/// customer images whose uid the operator cannot know; the kubelet refuses to start
/// an image whose user is root.
pub fn pod_security_context_image_user() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}
