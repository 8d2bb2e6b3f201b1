//! The Redis side of a credentials rotation: `rotate.sh`, run by a Job in the cache
//! image as the Redis user that may manage users ([`ADMIN_USER`]).
//!
//! Redis users hold several passwords at once. `add` gives the application user and
//! the administrative user their new password beside the old one; `finish`, once no
//! WAS pod of the old credentials is left, leaves each its new password alone. Only
//! SHA-256 hashes reach Redis, through `redis-cli`'s standard input, never a command
//! line. Connections already authenticated stay so: Redis checks a password when a
//! client authenticates, not afterwards.

use k8s_openapi::api::core::v1::Container;

use super::{ADMIN_USER, APP_USER, PORT, service_name};
use crate::api::ValidatedStack;
use crate::render::credentials::{
    CACHE_ADMIN_PASSWORD_KEY, CACHE_PASSWORD_KEY, RotationJobs, RotationStep, env_from_secret,
    env_value, next_key, secret_name,
};
use crate::render::rotation::{SCRIPT, SCRIPT_DIR, TERMINATION_LOG_ENV, container};

/// Component label of the cache rotation Job's pods; the network policies let them
/// reach Redis and nothing else.
pub const CACHE_ROTATION_COMPONENT: &str = "cache-rotation";

/// `rotate.sh` of the cache: the step is its only argument.
pub fn rotation_script() -> String {
    format!(
        r#"#!/bin/sh
# Rendered by webtoon-operator: one step of a credentials rotation, as {ADMIN_USER}.
set -eu
step=${{1:-}}
log=${{{TERMINATION_LOG_ENV}:-/dev/termination-log}}
# The last line is the pod's termination message, which the operator reports.
finish_with() {{
  printf '%s\n' "$1"
  printf '%s' "$1" > "$log" 2>/dev/null || true
}}
fail() {{
  finish_with "cache rotation $step failed: $1" >&2
  exit 1
}}
case $step in add | finish) ;; *) fail "the step must be add or finish, not '$step'" ;; esac
need() {{
  for var in "$@"; do
    eval "value=\${{$var:-}}"
    [ -n "$value" ] || fail "$var is empty: the credentials Secret lacks the key it is read from"
  done
}}
need WEBTOON_REDIS_HOST WEBTOON_REDIS_PORT WEBTOON_REDIS_ADMIN_PASSWORD
hash() {{ printf '%s' "$1" | sha256sum | cut -d' ' -f1; }}
# Commands come on standard input, the password through the environment.
cli() {{
  REDISCLI_AUTH="$1" redis-cli -h "$WEBTOON_REDIS_HOST" -p "$WEBTOON_REDIS_PORT" \
    --user {ADMIN_USER} --no-auth-warning 2>&1
}}
# The current password, or the new one when an earlier try of this step already
# changed it; Redis may be restarting, so unreachable is retried for a minute.
password=
deadline=$(( $(date +%s) + 60 ))
while [ -z "$password" ]; do
  refused=0
  tried=0
  for candidate in "$WEBTOON_REDIS_ADMIN_PASSWORD" "${{WEBTOON_REDIS_ADMIN_PASSWORD_NEXT:-}}"; do
    [ -n "$candidate" ] || continue
    tried=$((tried + 1))
    reply=$(echo PING | cli "$candidate" || true)
    case $reply in
      PONG) password=$candidate; break ;;
      *WRONGPASS* | *NOAUTH* | *NOPERM*) refused=$((refused + 1)) ;;
    esac
  done
  [ -n "$password" ] && break
  [ "$refused" -lt "$tried" ] || fail "Redis refused the user {ADMIN_USER} with both its current and its new password"
  [ "$(date +%s)" -lt "$deadline" ] || fail "cannot reach Redis at $WEBTOON_REDIS_HOST:$WEBTOON_REDIS_PORT: $reply"
  sleep 2
done
if [ "$step" = add ]; then
  need WEBTOON_REDIS_PASSWORD_NEXT WEBTOON_REDIS_ADMIN_PASSWORD_NEXT
  commands="ACL SETUSER {APP_USER} #$(hash "$WEBTOON_REDIS_PASSWORD_NEXT")
ACL SETUSER {ADMIN_USER} #$(hash "$WEBTOON_REDIS_ADMIN_PASSWORD_NEXT")"
  done_message="cache rotation add: {APP_USER} and {ADMIN_USER} accept their old and new passwords"
else
  need WEBTOON_REDIS_PASSWORD
  commands="ACL SETUSER {APP_USER} resetpass #$(hash "$WEBTOON_REDIS_PASSWORD")
ACL SETUSER {ADMIN_USER} resetpass #$(hash "$password")"
  done_message="cache rotation finish: {APP_USER} and {ADMIN_USER} accept only their new passwords"
fi
replies=$(printf '%s\n' "$commands" | cli "$password" || true)
[ "$replies" = "$(printf 'OK\nOK')" ] || fail "ACL SETUSER answered: $(echo "$replies" | tr '\n' ' ')"
finish_with "$done_message"
"#
    )
}

/// The rotation container of the cache: the cache image, which has `redis-cli`.
pub fn rotation_container(stack: &ValidatedStack, jobs: &RotationJobs) -> Container {
    let secret = secret_name(stack);
    let (host, port) = (
        format!("{}.{}.svc", service_name(stack), stack.namespace),
        PORT,
    );
    let mut env = vec![
        env_value("WEBTOON_REDIS_HOST", host),
        env_value("WEBTOON_REDIS_PORT", port.to_string()),
        env_from_secret(
            "WEBTOON_REDIS_ADMIN_PASSWORD",
            &secret,
            CACHE_ADMIN_PASSWORD_KEY,
            false,
        ),
        env_from_secret(
            "WEBTOON_REDIS_ADMIN_PASSWORD_NEXT",
            &secret,
            &next_key(CACHE_ADMIN_PASSWORD_KEY),
            true,
        ),
    ];
    match jobs.step {
        RotationStep::Add => env.push(env_from_secret(
            "WEBTOON_REDIS_PASSWORD_NEXT",
            &secret,
            &next_key(CACHE_PASSWORD_KEY),
            false,
        )),
        RotationStep::Finish => env.push(env_from_secret(
            "WEBTOON_REDIS_PASSWORD",
            &secret,
            CACHE_PASSWORD_KEY,
            false,
        )),
    }
    container(
        &stack.spec.cache.image,
        vec![
            "sh".to_string(),
            format!("{SCRIPT_DIR}/{SCRIPT}"),
            jobs.step.as_str().to_string(),
        ],
        env,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hashes_reach_redis() {
        let script = rotation_script();
        assert!(script.contains("ACL SETUSER webtoon #$(hash \"$WEBTOON_REDIS_PASSWORD_NEXT\")"));
        assert!(script.contains("ACL SETUSER webtoon resetpass #"));
        assert!(!script.contains(">$"), "no password in clear text");
        assert!(!script.contains("--pass"), "no password on a command line");
    }
}
