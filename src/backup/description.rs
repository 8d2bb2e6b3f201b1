//! The description written beside every dump (`<dump>.json`): when it was taken,
//! how large it is, its SHA-256, and per table the row count and `CHECKSUM TABLE`
//! as the live database held them at the dump's instant. A dump is a backup only
//! once its description exists, so the description is always written last and
//! deleted first.

use serde::{Deserialize, Serialize};

/// Value of [`Description::format`].
pub const DESCRIPTION_FORMAT: &str = "webtoon.io/backup-v1";
/// Suffix of a description's file or object name, after the dump's own name.
pub const DESCRIPTION_SUFFIX: &str = ".json";
/// Suffix of a dump's file or object name.
pub const DUMP_SUFFIX: &str = ".sql.gz";

/// What a backup holds and how to check it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Description {
    /// Always [`DESCRIPTION_FORMAT`].
    pub format: String,
    /// File name of the dump: `<database>-<YYYYMMDDTHHMMSSZ>.sql.gz`.
    pub name: String,
    /// The database dumped.
    pub database: String,
    /// When the dump started, RFC 3339 UTC.
    pub time: String,
    /// Size of the compressed dump in bytes.
    pub bytes: u64,
    /// SHA-256 of the compressed dump, lower-case hex.
    pub sha256: String,
    /// Seconds the dump took.
    pub seconds: u64,
    /// Version of the server dumped, as `SELECT VERSION()` gives it.
    pub server: String,
    /// Every base table of the database, by name.
    pub tables: Vec<TableFacts>,
}

/// One table as the dump's snapshot saw it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TableFacts {
    /// Table name.
    pub name: String,
    /// `SELECT COUNT(*)`.
    pub rows: u64,
    /// `CHECKSUM TABLE`; `None` where the engine gives none.
    pub checksum: Option<u64>,
}

/// The description's file or object name for the dump `dump_name`.
pub fn description_name(dump_name: &str) -> String {
    format!("{dump_name}{DESCRIPTION_SUFFIX}")
}

/// Whether `name` is a dump name the backup script writes for `database`:
/// `<database>-YYYYMMDDTHHMMSSZ.sql.gz`, which sorts in time order.
pub fn is_dump_name(name: &str, database: &str) -> bool {
    let Some(stamp) = name
        .strip_prefix(database)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.strip_suffix(DUMP_SUFFIX))
    else {
        return false;
    };
    let bytes = stamp.as_bytes();
    bytes.len() == 16
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes[9..15].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_names_have_the_database_and_a_utc_stamp() {
        assert!(is_dump_name("webtoon-20261201T030000Z.sql.gz", "webtoon"));
        assert!(!is_dump_name(
            "webtoon-20261201T030000Z.sql.gz.json",
            "webtoon"
        ));
        assert!(!is_dump_name("other-20261201T030000Z.sql.gz", "webtoon"));
        assert!(!is_dump_name("webtoon-2026-12-01.sql.gz", "webtoon"));
        assert!(!is_dump_name(
            "webtoon-x-20261201T030000Z.sql.gz",
            "webtoon"
        ));
    }

    #[test]
    fn round_trips_as_json() {
        let description = Description {
            format: DESCRIPTION_FORMAT.to_string(),
            name: "webtoon-20261201T030000Z.sql.gz".to_string(),
            database: "webtoon".to_string(),
            time: "2026-12-01T03:00:00Z".to_string(),
            bytes: 1234,
            sha256: "ab".repeat(32),
            seconds: 2,
            server: "11.4.4-MariaDB".to_string(),
            tables: vec![TableFacts {
                name: "episodes".to_string(),
                rows: 3,
                checksum: Some(42),
            }],
        };
        let json = serde_json::to_string(&description).expect("serialize");
        assert!(json.contains(r#""tables":[{"name":"episodes","rows":3,"checksum":42}]"#));
        assert_eq!(
            serde_json::from_str::<Description>(&json).expect("parse"),
            description
        );
    }
}
