//! Whether a dump's bytes are the ones its description names: its size and its
//! SHA-256, counted as the bytes stream past, so no dump is held whole in memory.

use std::fmt;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::backup::description::{DESCRIPTION_FORMAT, Description};
use crate::backup::store_error::StoreError;

/// Size and SHA-256 of a byte stream, fed in pieces.
#[derive(Default, Clone)]
pub struct Tally {
    bytes: u64,
    sha256: Sha256,
}

/// The size and SHA-256 (lower-case hex) a tally came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// Number of bytes.
    pub bytes: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

impl Tally {
    /// Counts `piece` in.
    pub fn update(&mut self, piece: &[u8]) {
        self.bytes += piece.len() as u64;
        self.sha256.update(piece);
    }

    /// Bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The size and digest of everything counted.
    pub fn finish(self) -> Facts {
        let digest = self.sha256.finalize();
        Facts {
            bytes: self.bytes,
            sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// How a dump differs from its description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// Fewer bytes than described.
    Truncated {
        /// Bytes found.
        bytes: u64,
        /// Bytes described.
        described: u64,
    },
    /// More bytes than described.
    Longer {
        /// Bytes found.
        bytes: u64,
        /// Bytes described.
        described: u64,
    },
    /// The described size, other bytes.
    Altered {
        /// SHA-256 found.
        sha256: String,
        /// SHA-256 described.
        described: String,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Truncated { bytes, described } => write!(
                f,
                "is truncated: {bytes} bytes, its description says {described}"
            ),
            Mismatch::Longer { bytes, described } => write!(
                f,
                "is longer than described: {bytes} bytes, its description says {described}"
            ),
            Mismatch::Altered { sha256, described } => write!(
                f,
                "was altered: its SHA-256 is {sha256}, its description says {described}"
            ),
        }
    }
}

impl Facts {
    /// How these facts differ from `description`'s, if they do.
    pub fn compare(&self, description: &Description) -> Option<Mismatch> {
        if self.bytes < description.bytes {
            Some(Mismatch::Truncated {
                bytes: self.bytes,
                described: description.bytes,
            })
        } else if self.bytes > description.bytes {
            Some(Mismatch::Longer {
                bytes: self.bytes,
                described: description.bytes,
            })
        } else if !self.sha256.eq_ignore_ascii_case(&description.sha256) {
            Some(Mismatch::Altered {
                sha256: self.sha256.clone(),
                described: description.sha256.clone(),
            })
        } else {
            None
        }
    }
}

/// The size and SHA-256 of the file at `path`, read in pieces.
pub fn measure(path: &Path) -> std::io::Result<Facts> {
    let mut file = std::fs::File::open(path)?;
    let mut tally = Tally::default();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(tally.finish());
        }
        tally.update(&buffer[..read]);
    }
}

/// `bytes` as the description of the dump `name` of `database`, found at `location`.
pub fn parse_description(
    bytes: &[u8],
    name: &str,
    database: &str,
    location: &str,
) -> Result<Description, StoreError> {
    let bad = |why: String| StoreError::BadDescription {
        location: location.to_string(),
        why,
    };
    let description: Description = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("cannot be parsed as a backup description: {e}")))?;
    if description.format != DESCRIPTION_FORMAT {
        return Err(bad(format!(
            "has format {:?}; this operator reads {DESCRIPTION_FORMAT:?}",
            description.format
        )));
    }
    if description.name != name || description.database != database {
        return Err(bad(format!(
            "describes {} of database {}, not {name} of database {database}",
            description.name, description.database
        )));
    }
    Ok(description)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::description::DESCRIPTION_FORMAT;

    fn described(bytes: u64, sha256: &str) -> Description {
        Description {
            format: DESCRIPTION_FORMAT.to_string(),
            name: "webtoon-20261201T030000Z.sql.gz".to_string(),
            database: "webtoon".to_string(),
            time: "2026-12-01T03:00:00Z".to_string(),
            bytes,
            sha256: sha256.to_string(),
            seconds: 1,
            server: "11.4.4-MariaDB".to_string(),
            tables: Vec::new(),
        }
    }

    #[test]
    fn a_tally_in_pieces_equals_one_of_the_whole() {
        let mut pieces = Tally::default();
        pieces.update(b"ab");
        pieces.update(b"c");
        let facts = pieces.finish();
        assert_eq!(facts.bytes, 3);
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            facts.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn size_is_compared_before_content() {
        let mut tally = Tally::default();
        tally.update(b"abc");
        let facts = tally.finish();
        assert_eq!(
            facts.compare(&described(3, &facts.sha256.to_uppercase())),
            None
        );
        assert_eq!(
            facts.compare(&described(4, &facts.sha256)),
            Some(Mismatch::Truncated {
                bytes: 3,
                described: 4
            })
        );
        assert!(matches!(
            facts.compare(&described(2, &facts.sha256)),
            Some(Mismatch::Longer { .. })
        ));
        let altered = facts.compare(&described(3, &"0".repeat(64)));
        assert!(matches!(altered, Some(Mismatch::Altered { .. })));
        assert!(
            altered
                .map(|m| m.to_string())
                .is_some_and(|m| m.starts_with("was altered: its SHA-256 is ba7816bf"))
        );
    }

    #[test]
    fn a_description_must_be_of_the_dump_beside_it() {
        let json = |name: &str| {
            format!(
                r#"{{"format":"webtoon.io/backup-v1","name":"{name}","database":"webtoon","time":"2026-12-01T03:00:00Z","bytes":1,"sha256":"00","seconds":1,"server":"11.4","tables":[]}}"#
            )
        };
        let name = "webtoon-20261201T030000Z.sql.gz";
        assert!(parse_description(json(name).as_bytes(), name, "webtoon", "x").is_ok());
        let other = parse_description(
            json("webtoon-20261202T030000Z.sql.gz").as_bytes(),
            name,
            "webtoon",
            "s3://b/p/x.json",
        )
        .expect_err("other dump");
        assert!(
            other.to_string().starts_with("s3://b/p/x.json describes"),
            "{other}"
        );
        let garbage = parse_description(b"{", name, "webtoon", "x").expect_err("garbage");
        assert!(
            garbage.to_string().contains("cannot be parsed"),
            "{garbage}"
        );
    }
}
