//! Which objects under a prefix are one database's backups. Only names the backup
//! tools write count (`<database>-<UTC time>.sql.gz` and its `.json`); every other
//! name is someone else's and is never read or deleted. A dump is a backup only once
//! its description exists beside it.

use std::collections::BTreeSet;

use crate::backup::description::{DESCRIPTION_SUFFIX, is_dump_name};

/// One database's dumps and descriptions among the names directly under a prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Dumps with their description: backups, oldest first.
    pub described: Vec<String>,
    /// Dumps without a description (an upload under way or cut off), oldest first.
    pub undescribed: Vec<String>,
    /// Descriptions whose dump is gone, by the dump's name, oldest first.
    pub orphaned: Vec<String>,
}

impl Catalog {
    /// Sorts `names` (object names relative to the prefix) for `database`; names of
    /// other databases, other shapes or in deeper "directories" are left out.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>, database: &str) -> Catalog {
        let mut dumps = BTreeSet::new();
        let mut descriptions = BTreeSet::new();
        for name in names {
            if is_dump_name(name, database) {
                dumps.insert(name);
            } else if let Some(dump) = name.strip_suffix(DESCRIPTION_SUFFIX)
                && is_dump_name(dump, database)
            {
                descriptions.insert(dump);
            }
        }
        // Dump names sort in time order, so the sets' order is oldest first.
        Catalog {
            described: dumps
                .intersection(&descriptions)
                .map(|n| n.to_string())
                .collect(),
            undescribed: dumps
                .difference(&descriptions)
                .map(|n| n.to_string())
                .collect(),
            orphaned: descriptions
                .difference(&dumps)
                .map(|n| n.to_string())
                .collect(),
        }
    }

    /// The newest backup.
    pub fn latest(&self) -> Option<&str> {
        self.described.last().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_databases_dumps_with_descriptions_are_backups() {
        let catalog = Catalog::new(
            [
                "webtoon-20261203T030000Z.sql.gz",
                "webtoon-20261201T030000Z.sql.gz.json",
                "webtoon-20261201T030000Z.sql.gz",
                "webtoon-20261202T030000Z.sql.gz",
                "webtoon-20261130T030000Z.sql.gz.json",
                "other-20261204T030000Z.sql.gz",
                "other-20261204T030000Z.sql.gz.json",
                "webtoon-20261205T030000Z.sql.gz.partial",
                "notes.txt",
                "webtoon-latest.sql.gz",
            ],
            "webtoon",
        );
        assert_eq!(catalog.described, ["webtoon-20261201T030000Z.sql.gz"]);
        assert_eq!(
            catalog.undescribed,
            [
                "webtoon-20261202T030000Z.sql.gz",
                "webtoon-20261203T030000Z.sql.gz"
            ]
        );
        assert_eq!(catalog.orphaned, ["webtoon-20261130T030000Z.sql.gz"]);
        assert_eq!(catalog.latest(), Some("webtoon-20261201T030000Z.sql.gz"));
    }

    #[test]
    fn the_newest_backup_is_the_latest_name_not_the_latest_listed() {
        let names = [
            "webtoon-20261202T030000Z.sql.gz",
            "webtoon-20261202T030000Z.sql.gz.json",
            "webtoon-20261201T030000Z.sql.gz",
            "webtoon-20261201T030000Z.sql.gz.json",
        ];
        assert_eq!(
            Catalog::new(names, "webtoon").latest(),
            Some("webtoon-20261202T030000Z.sql.gz")
        );
        assert_eq!(Catalog::new([], "webtoon").latest(), None);
    }
}
