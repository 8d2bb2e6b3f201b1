//! The MariaDB side of a credentials rotation: `rotate.sh`, run by a Job in the
//! database image as the administrative account `<user>_admin`.
//!
//! `add` creates (or unlocks) the account the WAS moves to with the new password and
//! the application's privileges, lets the account the WAS leaves and the backup user
//! log in with their old or their new password, and gives root (at every host) and the
//! administrative account their new ones. `finish`, once no WAS pod of the old
//! credentials is left, locks the old account with a password nobody knows and leaves
//! the backup user its new password alone. The old account is locked, not dropped:
//! views, triggers, routines and events the application created through it keep
//! running as their definer, and a dropped definer would break them. Every statement
//! can run again, so a retried Job repeats its step.

use k8s_openapi::api::core::v1::{Container, EnvVar};

use super::init_script::{APP_PRIVILEGES, SQL_STRING, admin_user, backup_user};
use super::{PORT, service_name};
use crate::api::ValidatedStack;
use crate::render::credentials::{
    DATABASE_ADMIN_PASSWORD_KEY, DATABASE_BACKUP_PASSWORD_KEY, DATABASE_PASSWORD_KEY,
    DATABASE_ROOT_PASSWORD_KEY, RotationJobs, RotationStep, env_from_secret, env_value, next_key,
    secret_name,
};
use crate::render::rotation::{SCRIPT, SCRIPT_DIR, TERMINATION_LOG_ENV, container};

/// Component label of the database rotation Job's pods; the network policies let
/// them reach MariaDB and nothing else.
pub const DATABASE_ROTATION_COMPONENT: &str = "database-rotation";

/// Environment variable naming the account the WAS leaves.
pub const FROM_ACCOUNT_ENV: &str = "WEBTOON_DB_FROM_ACCOUNT";
/// Environment variable naming the account the WAS moves to.
pub const TO_ACCOUNT_ENV: &str = "WEBTOON_DB_TO_ACCOUNT";

/// `rotate.sh` of the database: the step is its only argument.
pub fn rotation_script(stack: &ValidatedStack) -> String {
    let spec = &stack.spec.database;
    let db = &spec.name;
    let backup = backup_user(spec);
    let admin = admin_user(spec);
    let pod = format!("{}-database-0", stack.name);
    let namespace = &stack.namespace;
    format!(
        r#"#!/bin/bash
# Rendered by webtoon-operator: one step of a credentials rotation, as {admin}.
set -euo pipefail
step=${{1:-}}
log=${{{TERMINATION_LOG_ENV}:-/dev/termination-log}}
# The last line is the pod's termination message, which the operator reports.
finish_with() {{
  printf '%s\n' "$1"
  printf '%s' "$1" > "$log" 2>/dev/null || true
}}
fail() {{
  finish_with "database rotation $step failed: $1" >&2
  exit 1
}}
case $step in add | finish) ;; *) fail "the step must be add or finish, not '$step'" ;; esac
need() {{
  for var in "$@"; do
    [ -n "${{!var:-}}" ] || fail "$var is empty: the credentials Secret lacks the key it is read from"
  done
}}
need WEBTOON_DB_HOST WEBTOON_DB_PORT WEBTOON_DB_ADMIN_PASSWORD {FROM_ACCOUNT_ENV} WEBTOON_DB_BACKUP_PASSWORD
for account in "${FROM_ACCOUNT_ENV}" ${{{TO_ACCOUNT_ENV}:+"${TO_ACCOUNT_ENV}"}}; do
  [[ $account =~ ^[A-Za-z][A-Za-z0-9_]*$ ]] || fail "'$account' is not an account name"
done
{SQL_STRING}client() {{
  MYSQL_PWD="$1" mariadb --protocol=tcp --host="$WEBTOON_DB_HOST" --port="$WEBTOON_DB_PORT" \
    --user='{admin}' --connect-timeout=5 --batch --skip-column-names
}}
# The current password, or the new one when an earlier try of this step already
# changed it; the database may be restarting, so unreachable is retried for a minute.
password=
deadline=$((SECONDS + 60))
while :; do
  tried=0
  refused=0
  for candidate in "$WEBTOON_DB_ADMIN_PASSWORD" "${{WEBTOON_DB_ADMIN_PASSWORD_NEXT:-}}"; do
    [ -n "$candidate" ] || continue
    tried=$((tried + 1))
    if reply=$(echo 'SELECT 1' | client "$candidate" 2>&1); then
      password=$candidate
      break 2
    fi
    case $reply in *"ERROR 1045"* | *"ERROR 4151"*) refused=$((refused + 1)) ;; esac
  done
  if [ "$refused" -eq "$tried" ]; then
    fail "the database refused the account {admin}. A database created before the operator could rotate credentials lacks it: create it once with \`kubectl exec -n {namespace} {pod} -c mariadb -- bash /docker-entrypoint-initdb.d/10-webtoon-init.sh\`, then set a new spec.credentials.rotation.requestId"
  fi
  [ "$SECONDS" -lt "$deadline" ] || fail "cannot reach the database at $WEBTOON_DB_HOST:$WEBTOON_DB_PORT: $(echo "$reply" | tail -n 1)"
  sleep 2
done
from=${FROM_ACCOUNT_ENV}
if [ "$step" = add ]; then
  need {TO_ACCOUNT_ENV} WEBTOON_DB_PASSWORD WEBTOON_DB_PASSWORD_NEXT WEBTOON_DB_BACKUP_PASSWORD_NEXT WEBTOON_DB_ROOT_PASSWORD_NEXT WEBTOON_DB_ADMIN_PASSWORD_NEXT
  to=${TO_ACCOUNT_ENV}
  hosts=$(echo "SELECT Host FROM mysql.global_priv WHERE User = 'root'" | client "$password" 2>&1) ||
    fail "cannot list root's hosts: $hosts"
  sql="CREATE USER IF NOT EXISTS '$to'@'%' IDENTIFIED BY $(sql_string "$WEBTOON_DB_PASSWORD_NEXT");
ALTER USER '$to'@'%' IDENTIFIED BY $(sql_string "$WEBTOON_DB_PASSWORD_NEXT") ACCOUNT UNLOCK;
GRANT {APP_PRIVILEGES} ON \`{db}\`.* TO '$to'@'%';
ALTER USER '$from'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD($(sql_string "$WEBTOON_DB_PASSWORD")) OR mysql_native_password USING PASSWORD($(sql_string "$WEBTOON_DB_PASSWORD_NEXT"));
ALTER USER '{backup}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD($(sql_string "$WEBTOON_DB_BACKUP_PASSWORD")) OR mysql_native_password USING PASSWORD($(sql_string "$WEBTOON_DB_BACKUP_PASSWORD_NEXT"));"
  root_hosts=
  # IF EXISTS: an account with a host name is ignored under skip-name-resolve, and
  # cannot log in.
  while IFS= read -r host; do
    [ -n "$host" ] || continue
    sql="$sql
ALTER USER IF EXISTS 'root'@$(sql_string "$host") IDENTIFIED BY $(sql_string "$WEBTOON_DB_ROOT_PASSWORD_NEXT");"
    root_hosts="$root_hosts${{root_hosts:+, }}$host"
  done <<< "$hosts"
  sql="$sql
ALTER USER '{admin}'@'%' IDENTIFIED BY $(sql_string "$WEBTOON_DB_ADMIN_PASSWORD_NEXT");"
  reply=$(printf '%s\n' "$sql" | client "$password" 2>&1) || fail "$(echo "$reply" | tail -n 1)"
  finish_with "database rotation add: $to has its new password and the application's privileges; $from and {backup} accept their old and new passwords; root (${{root_hosts:-no host}}) and {admin} have new ones"
else
  # Nobody learns this password: the account only stays as the definer of what the
  # application created through it.
  unusable=$(head -c 33 /dev/urandom | base64)
  sql="ALTER USER '$from'@'%' IDENTIFIED BY $(sql_string "$unusable") ACCOUNT LOCK;
ALTER USER '{backup}'@'%' IDENTIFIED BY $(sql_string "$WEBTOON_DB_BACKUP_PASSWORD");"
  reply=$(printf '%s\n' "$sql" | client "$password" 2>&1) || fail "$(echo "$reply" | tail -n 1)"
  finish_with "database rotation finish: $from is locked; {backup} accepts only its new password"
fi
"#
    )
}

/// The rotation container of the database: the database image, which has the client.
pub fn rotation_container(stack: &ValidatedStack, jobs: &RotationJobs) -> Container {
    let secret = secret_name(stack);
    let from_secret = |name: &str, key: &str, optional: bool| -> EnvVar {
        env_from_secret(name, &secret, key, optional)
    };
    let mut env = vec![
        env_value(
            "WEBTOON_DB_HOST",
            format!("{}.{}.svc", service_name(stack), stack.namespace),
        ),
        env_value("WEBTOON_DB_PORT", PORT.to_string()),
        env_value(FROM_ACCOUNT_ENV, jobs.from_account.clone()),
        from_secret(
            "WEBTOON_DB_ADMIN_PASSWORD",
            DATABASE_ADMIN_PASSWORD_KEY,
            false,
        ),
        from_secret(
            "WEBTOON_DB_ADMIN_PASSWORD_NEXT",
            &next_key(DATABASE_ADMIN_PASSWORD_KEY),
            true,
        ),
        from_secret(
            "WEBTOON_DB_BACKUP_PASSWORD",
            DATABASE_BACKUP_PASSWORD_KEY,
            false,
        ),
    ];
    if jobs.step == RotationStep::Add {
        env.extend([
            env_value(TO_ACCOUNT_ENV, jobs.to_account.clone()),
            from_secret("WEBTOON_DB_PASSWORD", DATABASE_PASSWORD_KEY, false),
            from_secret(
                "WEBTOON_DB_PASSWORD_NEXT",
                &next_key(DATABASE_PASSWORD_KEY),
                false,
            ),
            from_secret(
                "WEBTOON_DB_BACKUP_PASSWORD_NEXT",
                &next_key(DATABASE_BACKUP_PASSWORD_KEY),
                false,
            ),
            from_secret(
                "WEBTOON_DB_ROOT_PASSWORD_NEXT",
                &next_key(DATABASE_ROOT_PASSWORD_KEY),
                false,
            ),
        ]);
    }
    container(
        &stack.spec.database.image,
        vec![
            "bash".to_string(),
            format!("{SCRIPT_DIR}/{SCRIPT}"),
            jobs.step.as_str().to_string(),
        ],
        env,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{WebtoonStack, validate};

    fn stack() -> ValidatedStack {
        let stack: WebtoonStack = serde_saphyr::from_str(
            "apiVersion: webtoon.io/v1alpha1\nkind: WebtoonStack\nmetadata: {name: minitoon, namespace: webtoon}\nspec: {hosts: [minitoon.example], was: {image: registry.example/was:1.0.0}}\n",
        )
        .expect("a stack");
        validate(&stack).expect("a valid stack")
    }

    #[test]
    fn the_script_names_the_accounts_and_grants_the_application_database_only() {
        let script = rotation_script(&stack());
        assert!(script.contains("--user='webtoon_admin'"));
        assert!(script.contains("ON \\`webtoon\\`.* TO '$to'@'%';"));
        assert!(script.contains("ALTER USER 'webtoon_backup'@'%' IDENTIFIED VIA"));
        assert!(script.contains("ACCOUNT LOCK"));
        assert!(
            !script.contains("DROP USER"),
            "a definer must outlive the switch"
        );
        assert!(script.contains("kubectl exec -n webtoon minitoon-database-0"));
        assert!(!script.contains("*.*"), "no global privilege is granted");
    }

    #[test]
    fn only_the_add_step_gets_the_new_passwords() {
        let jobs = |step| RotationJobs {
            step,
            suffix: "0123abcd".to_string(),
            from_account: "webtoon".to_string(),
            to_account: "webtoon_2".to_string(),
        };
        let names = |c: &Container| -> Vec<String> {
            c.env.iter().flatten().map(|e| e.name.clone()).collect()
        };
        let add = rotation_container(&stack(), &jobs(RotationStep::Add));
        let finish = rotation_container(&stack(), &jobs(RotationStep::Finish));
        assert!(names(&add).contains(&"WEBTOON_DB_ROOT_PASSWORD_NEXT".to_string()));
        assert!(
            !names(&finish)
                .iter()
                .any(|n| n.ends_with("_NEXT") && n != "WEBTOON_DB_ADMIN_PASSWORD_NEXT")
        );
        assert_eq!(
            add.command
                .as_ref()
                .and_then(|c| c.last())
                .map(String::as_str),
            Some("add")
        );
        assert!(
            !serde_json::to_string(&add)
                .unwrap_or_default()
                .contains("exit "),
            "the command never reads like a failing one to the local cluster's stages"
        );
    }
}
