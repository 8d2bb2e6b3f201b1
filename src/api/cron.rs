//! The five-field cron schedules of CronJobs, evaluated the way the Kubernetes
//! CronJob controller evaluates them (robfig/cron's standard parser): when both day
//! of month and day of week are restricted, a day matching either runs.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::validation::cron_schedule_problem;

/// A parsed schedule: the allowed values of each field as bit sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    /// Day of month or day of week is `*` or `?`: then only the other one restricts.
    any_day: bool,
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// The furthest back a fire time is looked for: a yearly schedule fires twice in it.
const LOOKBACK_DAYS: i32 = 2 * 366 + 1;

fn field(part: &str, min: u32, max: u32, names: &[&str], first: u32) -> Option<u64> {
    let value = |text: &str| -> Option<u32> {
        let lower = text.to_ascii_lowercase();
        match names.iter().position(|n| *n == lower) {
            Some(index) => Some(first + index as u32),
            None => text.parse().ok(),
        }
    };
    let mut bits = 0u64;
    for item in part.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, step.parse::<u32>().ok()?),
            None => (item, 1),
        };
        let (start, end) = if range == "*" || range == "?" {
            (min, max)
        } else {
            match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if item.contains('/') => (value(range)?, max),
                None => (value(range)?, value(range)?),
            }
        };
        let mut v = start;
        while v <= end {
            bits |= 1 << v;
            v += step.max(1);
        }
    }
    Some(bits)
}

impl Schedule {
    /// Parses a schedule that validation accepts; `None` for any other.
    pub fn parse(schedule: &str) -> Option<Schedule> {
        if cron_schedule_problem(schedule).is_some() {
            return None;
        }
        let parts: Vec<&str> = schedule.split(' ').collect();
        let star = |p: &str| p.starts_with('*') || p.starts_with('?');
        Some(Schedule {
            minutes: field(parts[0], 0, 59, &[], 0)?,
            hours: u32::try_from(field(parts[1], 0, 23, &[], 0)?).ok()?,
            days_of_month: u32::try_from(field(parts[2], 1, 31, &[], 1)?).ok()?,
            months: u16::try_from(field(parts[3], 1, 12, MONTHS, 1)?).ok()?,
            days_of_week: u8::try_from(field(parts[4], 0, 6, DAYS, 0)?).ok()?,
            any_day: star(parts[2]) || star(parts[4]),
        })
    }

    fn runs_on(&self, date: Date) -> bool {
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        let day = if self.any_day { dom && dow } else { dom || dow };
        day && self.months & (1 << date.month()) != 0
    }

    /// The fire time of `date` at `hour:minute` in `zone`: none when a DST change skips
    /// that local time; the first occurrence when it happens twice.
    fn fire_at(date: Date, hour: i8, minute: i8, zone: &TimeZone) -> Option<Timestamp> {
        let time = Time::new(hour, minute, 0, 0).ok()?;
        zone.to_ambiguous_zoned(DateTime::from_parts(date, time))
            .unambiguous()
            .ok()
            .map(|z| z.timestamp())
    }

    /// The first time after `now` the schedule fires in `zone`, within two years.
    pub fn next_fire(&self, now: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        let today = zone.to_datetime(now).date();
        for ahead in 0..LOOKBACK_DAYS {
            let Ok(date) = today.checked_add(ahead.days()) else {
                break;
            };
            if !self.runs_on(date) {
                continue;
            }
            for hour in (0..24i8).filter(|h| self.hours & (1 << h) != 0) {
                for minute in (0..60i8).filter(|m| self.minutes & (1 << m) != 0) {
                    match Self::fire_at(date, hour, minute, zone) {
                        Some(fire) if fire > now => return Some(fire),
                        _ => {}
                    }
                }
            }
        }
        None
    }

    /// The `count` most recent times at or before `now` the schedule fired in `zone`,
    /// newest first; fewer when it fired less often in the last two years.
    pub fn recent_fires(&self, now: Timestamp, zone: &TimeZone, count: usize) -> Vec<Timestamp> {
        let mut fires = Vec::with_capacity(count);
        let today = zone.to_datetime(now).date();
        for back in 0..LOOKBACK_DAYS {
            let Ok(date) = today.checked_sub(back.days()) else {
                break;
            };
            if !self.runs_on(date) {
                continue;
            }
            for hour in (0..24i8).rev().filter(|h| self.hours & (1 << h) != 0) {
                for minute in (0..60i8).rev().filter(|m| self.minutes & (1 << m) != 0) {
                    match Self::fire_at(date, hour, minute, zone) {
                        Some(fire) if fire <= now => {
                            fires.push(fire);
                            if fires.len() == count {
                                return fires;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        fires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fires(schedule: &str, now: &str, zone: &str, count: usize) -> Vec<String> {
        let zone = TimeZone::get(zone).expect("zone");
        Schedule::parse(schedule)
            .expect("schedule")
            .recent_fires(now.parse().expect("now"), &zone, count)
            .into_iter()
            .map(|t| t.to_string())
            .collect()
    }

    #[test]
    fn daily_in_a_time_zone() {
        assert_eq!(
            fires("0 3 * * *", "2026-12-03T01:00:00Z", "Asia/Seoul", 2),
            ["2026-12-02T18:00:00Z", "2026-12-01T18:00:00Z"]
        );
    }

    #[test]
    fn weekdays_steps_and_names() {
        // 2026-12-07 is a Monday: the weekday schedule last ran on Monday and Friday.
        assert_eq!(
            fires("30 4 * * MON-FRI", "2026-12-07T10:00:00Z", "Etc/UTC", 2),
            ["2026-12-07T04:30:00Z", "2026-12-04T04:30:00Z"]
        );
        assert_eq!(
            fires("*/20 * * * *", "2026-12-07T10:05:00Z", "Etc/UTC", 3),
            [
                "2026-12-07T10:00:00Z",
                "2026-12-07T09:40:00Z",
                "2026-12-07T09:20:00Z"
            ]
        );
    }

    #[test]
    fn restricted_day_of_month_and_week_match_either() {
        // The 1st, or any Sunday: 2026-12-06 is a Sunday, after the 1st.
        assert_eq!(
            fires("0 0 1 * 0", "2026-12-07T00:00:00Z", "Etc/UTC", 2),
            ["2026-12-06T00:00:00Z", "2026-12-01T00:00:00Z"]
        );
    }

    #[test]
    fn the_next_fire_is_strictly_after_now() {
        let zone = TimeZone::get("Asia/Seoul").expect("zone");
        let schedule = Schedule::parse("0 3 * * *").expect("schedule");
        let next = |now: &str| {
            schedule
                .next_fire(now.parse().expect("now"), &zone)
                .map(|t| t.to_string())
        };
        assert_eq!(
            next("2026-12-01T17:00:00Z").as_deref(),
            Some("2026-12-01T18:00:00Z")
        );
        assert_eq!(
            next("2026-12-01T18:00:00Z").as_deref(),
            Some("2026-12-02T18:00:00Z")
        );
    }

    #[test]
    fn yearly_schedules_are_found_and_invalid_ones_refused() {
        assert_eq!(
            fires("0 0 1 1 *", "2026-06-01T00:00:00Z", "Etc/UTC", 2),
            ["2026-01-01T00:00:00Z", "2025-01-01T00:00:00Z"]
        );
        assert_eq!(Schedule::parse("0 0 * * 7"), None);
    }
}
