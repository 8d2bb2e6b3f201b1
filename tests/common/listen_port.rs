//! Ports for the servers that tests start on 127.0.0.1.

use std::net::TcpListener;

/// A TCP port on 127.0.0.1 that was free a moment ago, for a server a test starts.
///
/// It comes from below the kernel's ephemeral range: a port that `bind(0)` handed
/// out and we released is free game for the local end of any outgoing connection
/// (the tests open thousands under load) before the server meant for it binds it.
/// The range also stays clear of the NodePort range and of the kubelet's and
/// kube-router's ports, which a real node of the local cluster listens on.
pub fn free_port() -> u16 {
    const LOW: u16 = 21000;
    let high = ephemeral_port_low().map_or(30000, |low| low.min(30000));
    assert!(
        high > LOW,
        "the ephemeral port range starts at {high}: no ports left in {LOW}-29999 for test servers"
    );
    for _ in 0..1000 {
        let port = LOW + u16::try_from(random() % u64::from(high - LOW)).unwrap_or(0);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}-{high} on 127.0.0.1 after 1000 attempts");
}

/// The first port of the kernel's ephemeral range, if the kernel says.
fn ephemeral_port_low() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A random number from the standard library's per-process hash keys.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}
