//! How long the controller waits after a watch error before it reads its watches
//! again.
//!
//! kube-runtime merges every watch of a controller into one stream and backs off on
//! that stream as a whole: while it waits, no watch is read. When the API server
//! restarts, each of the eleven watches fails once on its dead connection, one after
//! the other, and with the default backoff (0.8 s doubling to 30 s, reset only after
//! two quiet minutes) those eleven failures kept the controller blind for about three
//! and a half minutes on a real kube-apiserver. A short, capped backoff that resets on
//! the first good event gets every watch going again within seconds.

use std::time::Duration;

use kube::runtime::utils::Backoff;

/// Doubles from [`FIRST`](WatchBackoff::FIRST) up to [`MAX`](WatchBackoff::MAX).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchBackoff {
    next: Duration,
}

impl WatchBackoff {
    /// The wait after the first error.
    pub const FIRST: Duration = Duration::from_millis(200);
    /// The longest wait: while the API server is down, the watches retry this often.
    pub const MAX: Duration = Duration::from_secs(2);
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let current = self.next;
        self.next = (current * 2).min(Self::MAX);
        Some(current)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_starts_over_after_a_good_event() {
        let mut backoff = WatchBackoff::default();
        let waits: Vec<u128> = backoff.by_ref().take(6).map(|d| d.as_millis()).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 2000, 2000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(WatchBackoff::FIRST));
    }
}
