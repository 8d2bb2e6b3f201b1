//! Volumes and mounts shared by every tier's pod template.

use k8s_openapi::api::core::v1::{ConfigMapVolumeSource, Volume, VolumeMount};

/// A mount of the pod volume `volume` at `path`; `read_only` is written only when set.
pub fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.to_string(),
        mount_path: path.to_string(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

/// The pod volume `volume` holding the keys of `config_map` as files; `executable`
/// files get mode 0555 so that scripts run rather than being sourced.
pub fn config_map_volume(volume: &str, config_map: &str, executable: bool) -> Volume {
    Volume {
        name: volume.to_string(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.to_string(),
            default_mode: executable.then_some(0o555),
            ..Default::default()
        }),
        ..Default::default()
    }
}
