//! How backup pods reach an S3-compatible bucket: the environment the operator's
//! `backup upload` and `backup fetch` read, the keys from the user's Secret, a
//! private CA from a ConfigMap, and the port the NetworkPolicies open.

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EnvVar, KeyToPath, Volume, VolumeMount,
};

use crate::api::{ObjectStoreSpec, ValidatedStack};
use crate::backup::report::{REPORT_FILE_ENV, TERMINATION_LOG};
use crate::render::credentials::{env_from_secret, env_value};
use crate::render::security::container_security_context;
use crate::render::volumes::mount;

/// Key of the access key id in the user's Secret, named as AWS tools name it.
pub const ACCESS_KEY_ID_KEY: &str = "AWS_ACCESS_KEY_ID";
/// Key of the secret access key in the user's Secret.
pub const SECRET_ACCESS_KEY_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// Key of the CA certificates in `caConfigMap`.
pub const CA_KEY: &str = "ca.crt";
/// Where the CA certificates are mounted in the operator's container.
const CA_DIR: &str = "/etc/webtoon/object-store-ca";
/// Name of the CA volume in the pod.
const CA_VOLUME: &str = "object-store-ca";

/// The key prefix of the stack's backups: `prefix`, or `<namespace>/<stack>/`.
pub fn prefix(stack: &ValidatedStack, store: &ObjectStoreSpec) -> String {
    store
        .prefix
        .clone()
        .unwrap_or_else(|| format!("{}/{}/", stack.namespace, stack.name))
}

/// The endpoint's TCP port: the one written in it, else 443 for `https` and 80 for `http`.
pub fn endpoint_port(store: &ObjectStoreSpec) -> i32 {
    let authority = store
        .endpoint
        .split_once("://")
        .map_or(store.endpoint.as_str(), |(_, rest)| rest)
        .trim_end_matches('/');
    match authority.rsplit_once(':').map(|(_, port)| port.parse()) {
        Some(Ok(port)) => port,
        _ if store.endpoint.starts_with("http://") => 80,
        _ => 443,
    }
}

/// The environment of `webtoon-operator backup upload|fetch` for `store`, reporting
/// to the container's termination message.
pub fn env(stack: &ValidatedStack, store: &ObjectStoreSpec) -> Vec<EnvVar> {
    let mut env = vec![
        env_value("WEBTOON_S3_ENDPOINT", store.endpoint.clone()),
        env_value("WEBTOON_S3_BUCKET", store.bucket.clone()),
        env_value("WEBTOON_S3_PREFIX", prefix(stack, store)),
        env_value("WEBTOON_S3_REGION", store.region.clone()),
        env_from_secret(
            ACCESS_KEY_ID_KEY,
            &store.secret_name,
            ACCESS_KEY_ID_KEY,
            false,
        ),
        env_from_secret(
            SECRET_ACCESS_KEY_KEY,
            &store.secret_name,
            SECRET_ACCESS_KEY_KEY,
            false,
        ),
        // Named in the tool's messages when the store refuses the keys.
        env_value("WEBTOON_S3_SECRET_NAME", store.secret_name.clone()),
        env_value("WEBTOON_DB_NAME", stack.spec.database.name.clone()),
        env_value(REPORT_FILE_ENV, TERMINATION_LOG),
    ];
    if store.insecure {
        env.push(env_value("WEBTOON_S3_ALLOW_HTTP", "true"));
    }
    if store.ca_config_map.is_some() {
        env.push(env_value(
            "WEBTOON_S3_CA_FILE",
            format!("{CA_DIR}/{CA_KEY}"),
        ));
    }
    env
}

/// The CA volume, when the store names a ConfigMap.
pub fn ca_volume(store: &ObjectStoreSpec) -> Option<Volume> {
    store.ca_config_map.as_ref().map(|name| Volume {
        name: CA_VOLUME.to_string(),
        config_map: Some(ConfigMapVolumeSource {
            name: name.clone(),
            items: Some(vec![KeyToPath {
                key: CA_KEY.to_string(),
                path: CA_KEY.to_string(),
                mode: None,
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// A container of the operator's image running `webtoon-operator backup <args>`
/// against `store`, with `mounts` besides the CA's and the pod's `tmp` volume.
pub fn tool_container(
    stack: &ValidatedStack,
    store: &ObjectStoreSpec,
    image: &str,
    name: &str,
    args: Vec<String>,
    extra_env: Vec<EnvVar>,
    mut mounts: Vec<VolumeMount>,
) -> Container {
    let mut env = env(stack, store);
    env.extend(extra_env);
    // Every pod these run in has its `tmp` scratch volume.
    mounts.push(mount("tmp", "/tmp", false));
    if store.ca_config_map.is_some() {
        mounts.push(mount(CA_VOLUME, CA_DIR, true));
    }
    Container {
        name: name.to_string(),
        image: Some(image.to_string()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        command: Some(vec!["/usr/local/bin/webtoon-operator".to_string()]),
        args: Some(
            ["backup".to_string()]
                .into_iter()
                .chain(args)
                .collect::<Vec<_>>(),
        ),
        env: Some(env),
        resources: Some(crate::api::resources("50m", "64Mi", "1", "256Mi")),
        security_context: Some(container_security_context(true)),
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        volume_mounts: Some(mounts),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(endpoint: &str) -> ObjectStoreSpec {
        serde_json::from_value(serde_json::json!({
            "endpoint": endpoint, "bucket": "b", "secretName": "s"
        }))
        .expect("store")
    }

    #[test]
    fn the_port_is_written_or_follows_the_scheme() {
        assert_eq!(endpoint_port(&store("https://s3.example")), 443);
        assert_eq!(endpoint_port(&store("http://minio.backup")), 80);
        assert_eq!(endpoint_port(&store("https://10.0.0.5:9000/")), 9000);
    }
}
