//! The environment the operator injects into WAS containers: where the database,
//! cache and images are, with passwords by Secret reference only.

use k8s_openapi::api::core::v1::EnvVar;

use crate::api::{ServiceMode, ValidatedStack};
use crate::render::credentials::{
    CACHE_PASSWORD_KEY, DATABASE_PASSWORD_KEY, database_user, env_from_secret, env_value,
    secret_name,
};
use crate::render::{cache, database};

/// Key of the user name in a user-supplied Secret for an external service.
pub const EXTERNAL_USERNAME_KEY: &str = "username";
/// Key of the password in a user-supplied Secret for an external service.
pub const EXTERNAL_PASSWORD_KEY: &str = "password";

/// The injected variables followed by the user's own `spec.was.env`.
pub fn was_env(stack: &ValidatedStack) -> Vec<EnvVar> {
    let spec = &stack.spec;
    let credentials = secret_name(stack);
    let mut env = Vec::new();

    let (db_host, db_port) = database::address(stack);
    env.push(env_value("WEBTOON_DB_HOST", db_host));
    env.push(env_value("WEBTOON_DB_PORT", db_port.to_string()));
    env.push(env_value("WEBTOON_DB_NAME", spec.database.name.clone()));
    match (&spec.database.mode, &spec.database.external) {
        (ServiceMode::External, Some(external)) => {
            env.push(env_from_secret(
                "WEBTOON_DB_USER",
                &external.secret_name,
                EXTERNAL_USERNAME_KEY,
                false,
            ));
            env.push(env_from_secret(
                "WEBTOON_DB_PASSWORD",
                &external.secret_name,
                EXTERNAL_PASSWORD_KEY,
                false,
            ));
        }
        _ => {
            // The account alternates with each rotation, and its name is part of the
            // pod template: a pod of an older release, restarted during a rotation,
            // keeps the account of its release.
            env.push(env_value(
                "WEBTOON_DB_USER",
                database_user(&spec.database, stack.credentials_generation),
            ));
            env.push(env_from_secret(
                "WEBTOON_DB_PASSWORD",
                &credentials,
                DATABASE_PASSWORD_KEY,
                false,
            ));
        }
    }

    let (redis_host, redis_port) = cache::address(stack);
    env.push(env_value("WEBTOON_REDIS_HOST", redis_host));
    env.push(env_value("WEBTOON_REDIS_PORT", redis_port.to_string()));
    match (&spec.cache.mode, &spec.cache.external) {
        (ServiceMode::External, Some(external)) => {
            // An external Redis may use the default user, so the user name is optional.
            env.push(env_from_secret(
                "WEBTOON_REDIS_USER",
                &external.secret_name,
                EXTERNAL_USERNAME_KEY,
                true,
            ));
            env.push(env_from_secret(
                "WEBTOON_REDIS_PASSWORD",
                &external.secret_name,
                EXTERNAL_PASSWORD_KEY,
                false,
            ));
        }
        _ => {
            env.push(env_value("WEBTOON_REDIS_USER", cache::APP_USER));
            env.push(env_from_secret(
                "WEBTOON_REDIS_PASSWORD",
                &credentials,
                CACHE_PASSWORD_KEY,
                false,
            ));
        }
    }

    env.push(env_value(
        "WEBTOON_IMAGES_DIR",
        spec.storage.mount_path.clone(),
    ));
    env.push(env_value(
        "WEBTOON_IMAGES_URL_PATH",
        spec.storage.url_path.clone(),
    ));
    env.push(env_value("WEBTOON_PUBLIC_URL", public_url(stack)));
    env.push(env_value("WEBTOON_PORT", spec.was.port.to_string()));
    env.extend(spec.was.env.iter().cloned());
    env
}

/// The address users reach the site at: the first host, over HTTPS when TLS is on.
pub fn public_url(stack: &ValidatedStack) -> String {
    let scheme = if stack.spec.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let host = stack.spec.hosts.first().map_or("", String::as_str);
    format!("{scheme}://{}", host.trim_start_matches("*."))
}
