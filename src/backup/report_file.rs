//! Writing a Job's [`Report`] where `WEBTOON_REPORT_FILE` names (in a pod, its
//! termination message), cut to the 4096 bytes Kubernetes keeps of it.

use std::path::Path;

use crate::backup::report::{REPORT_FILE_ENV, Report};

/// Kubernetes keeps at most this many bytes of a termination message.
pub const MAX_REPORT_BYTES: usize = 4096;

/// `report` as one JSON line of at most [`MAX_REPORT_BYTES`], its message shortened
/// when the whole would not fit.
pub fn report_line(report: &Report) -> String {
    let mut report = report.clone();
    loop {
        let line = serde_json::to_string(&report).unwrap_or_default() + "\n";
        let over = line.len().saturating_sub(MAX_REPORT_BYTES);
        if over == 0 {
            return line;
        }
        let message = match &mut report {
            Report::Backup(backup) => &mut backup.message,
            Report::Verify(verify) => &mut verify.message,
        };
        match message {
            Some(text) if !text.is_empty() => {
                // Escaping can make the JSON longer than the text: cut at least as
                // much as is over, on a character boundary, and try again.
                let mut keep = text.len().saturating_sub(over + 3);
                while !text.is_char_boundary(keep) {
                    keep -= 1;
                }
                text.truncate(keep);
                text.push('…');
            }
            _ => return line,
        }
    }
}

/// Writes `report` to the file in `WEBTOON_REPORT_FILE`; does nothing when it is unset.
pub fn write_report(report: &Report) -> std::io::Result<()> {
    match std::env::var_os(REPORT_FILE_ENV) {
        Some(file) if !file.is_empty() => {
            std::fs::write(Path::new(&file), report_line(report).as_bytes())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::report::BackupReport;

    #[test]
    fn a_long_message_is_cut_to_fit_the_termination_message() {
        let report = Report::Backup(BackupReport {
            result: "failed".to_string(),
            message: Some("\"quoted\" é ".repeat(1000)),
            ..BackupReport::default()
        });
        let line = report_line(&report);
        assert!(line.len() <= MAX_REPORT_BYTES, "{}", line.len());
        let Some(Report::Backup(parsed)) = Report::parse(&line) else {
            panic!("not a backup report: {line}");
        };
        assert!(parsed.message.is_some_and(|m| m.ends_with('…')));
    }

    #[test]
    fn a_short_report_is_written_whole() {
        let report = Report::Backup(BackupReport {
            result: "ok".to_string(),
            name: Some("webtoon-20261201T030000Z.sql.gz".to_string()),
            ..BackupReport::default()
        });
        assert_eq!(
            report_line(&report),
            "{\"kind\":\"backup\",\"result\":\"ok\",\"name\":\"webtoon-20261201T030000Z.sql.gz\"}\n"
        );
    }
}
