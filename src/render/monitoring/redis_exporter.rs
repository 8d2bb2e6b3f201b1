//! redis_exporter beside Redis, logged in as the monitoring user, whom the ACL lets
//! read the server's state and nothing of its data.

use k8s_openapi::api::core::v1::Container;

use super::{REDIS_METRICS, exporter_container};
use crate::api::ValidatedStack;
use crate::render::cache::redis_conf::MONITOR_USER;
use crate::render::credentials::{
    CACHE_MONITOR_PASSWORD_KEY, env_from_secret, env_value, secret_name,
};

/// The exporter's environment besides the password: the server and the user.
pub fn env_values(address: &str) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_ADDR", format!("redis://{address}")),
        ("REDIS_USER", MONITOR_USER.to_string()),
    ]
}

/// The exporter's arguments, serving on `listen_port`. It reads no configuration
/// (`CONFIG` is denied to it) and checks no key's size.
pub fn args(listen_port: i32) -> Vec<String> {
    vec![
        format!("--web.listen-address=:{listen_port}"),
        "--config-command=-".to_string(),
    ]
}

/// The exporter's sidecar in the cache pod.
pub fn container(stack: &ValidatedStack, image: &str) -> Container {
    let mut env: Vec<_> = env_values(&format!("127.0.0.1:{}", crate::render::cache::PORT))
        .into_iter()
        .map(|(name, value)| env_value(name, value))
        .collect();
    env.push(env_from_secret(
        "REDIS_PASSWORD",
        &secret_name(stack),
        CACHE_MONITOR_PASSWORD_KEY,
        false,
    ));
    exporter_container(
        "redis-exporter",
        image,
        args(REDIS_METRICS.number),
        env,
        REDIS_METRICS,
    )
}
