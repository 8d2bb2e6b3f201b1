//! What a backup or verify Job tells the operator, as one JSON line in its pod's
//! termination message (at most 4096 bytes, so no per-table detail): the Jobs need
//! no access to the Kubernetes API, and the operator needs no access to the data.

use serde::{Deserialize, Serialize};

/// Where a Job writes its report when it runs in a pod.
pub const TERMINATION_LOG: &str = "/dev/termination-log";
/// Environment variable naming the file a backup or verify step writes its report to.
pub const REPORT_FILE_ENV: &str = "WEBTOON_REPORT_FILE";

/// One Job's outcome.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Report {
    /// A backup was taken, or failed.
    Backup(BackupReport),
    /// A backup was loaded into a throwaway database and compared, or could not be.
    Verify(VerifyReport),
}

/// Outcome of one backup.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackupReport {
    /// `ok` or `failed`.
    pub result: String,
    /// File name of the dump, when one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When the dump started, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Size of the compressed dump in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// SHA-256 of the compressed dump.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Number of tables described.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables: Option<u64>,
    /// Seconds the whole backup took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
    /// Where the backup is kept: `volume:<claim>/<name>` or `s3://<bucket>/<key>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Why it failed; empty when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Outcome of one verified restore.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// `passed` or `failed`.
    pub result: String,
    /// File name of the dump verified, when one was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Seconds the load into the throwaway database took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_seconds: Option<u64>,
    /// Number of tables compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables: Option<u64>,
    /// What differed or failed; empty when it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Report {
    /// The report in a termination message, if the message is one: a container that
    /// died before writing it leaves the end of its log there instead.
    pub fn parse(message: &str) -> Option<Report> {
        serde_json::from_str(message.trim()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_scripts_write() {
        let backup = r#"{"kind":"backup","result":"ok","name":"webtoon-20261201T030000Z.sql.gz","time":"2026-12-01T03:00:00Z","bytes":120,"sha256":"00","tables":2,"seconds":1,"location":"volume:datatoon-database-backup/webtoon-20261201T030000Z.sql.gz"}"#;
        let Some(Report::Backup(report)) = Report::parse(backup) else {
            panic!("not a backup report");
        };
        assert_eq!(report.bytes, Some(120));
        let verify = r#"{"kind":"verify","result":"failed","name":"x.sql.gz","message":"table episodes: 3 rows, the description says 4"}"#;
        assert!(matches!(Report::parse(verify), Some(Report::Verify(r)) if r.result == "failed"));
        assert_eq!(Report::parse("backup failed: mariadb-dump exited"), None);
    }
}
