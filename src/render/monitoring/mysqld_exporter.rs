//! mysqld_exporter beside MariaDB, logged in as the monitoring account: an account
//! with no privilege at all (`USAGE`), which is all that `SHOW GLOBAL STATUS` and
//! `SHOW GLOBAL VARIABLES` need, limited to a few connections. The collectors that
//! would need more (replication, InnoDB compression, response times) stay off.

use k8s_openapi::api::core::v1::Container;

use super::{MYSQLD_METRICS, exporter_container};
use crate::api::ValidatedStack;
use crate::render::credentials::{DATABASE_MONITOR_PASSWORD_KEY, env_from_secret, secret_name};
use crate::render::database::init_script::monitor_user;

/// The environment variable mysqld_exporter reads its password from.
pub const PASSWORD_ENV: &str = "MYSQLD_EXPORTER_PASSWORD";

/// The collectors on by default that would need privileges the account lacks.
pub const DISABLED_COLLECTORS: [&str; 4] = [
    "slave_status",
    "info_schema.innodb_cmp",
    "info_schema.innodb_cmpmem",
    "info_schema.query_response_time",
];

/// The exporter's arguments: log in as `user` at `address`, serve on `listen_port`.
pub fn args(address: &str, user: &str, listen_port: i32) -> Vec<String> {
    let mut args = vec![
        format!("--mysqld.address={address}"),
        format!("--mysqld.username={user}"),
        format!("--web.listen-address=:{listen_port}"),
        // No option file: the address, user and password above are all it needs.
        "--config.my-cnf=/dev/null".to_string(),
    ];
    args.extend(
        DISABLED_COLLECTORS
            .iter()
            .map(|c| format!("--no-collect.{c}")),
    );
    args
}

/// The exporter's sidecar in the database pod.
pub fn container(stack: &ValidatedStack, image: &str) -> Container {
    exporter_container(
        "mysqld-exporter",
        image,
        args(
            &format!("127.0.0.1:{}", crate::render::database::PORT),
            &monitor_user(&stack.spec.database),
            MYSQLD_METRICS.number,
        ),
        vec![env_from_secret(
            PASSWORD_ENV,
            &secret_name(stack),
            DATABASE_MONITOR_PASSWORD_KEY,
            false,
        )],
        MYSQLD_METRICS,
    )
}
