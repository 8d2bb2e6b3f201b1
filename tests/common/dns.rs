//! A minimal authoritative DNS server on 127.0.0.1 standing in for the cluster DNS:
//! it answers A queries for one name (a headless Service) with the addresses the
//! test sets, as the cluster DNS answers with the ready pods' addresses.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
const RCODE_NXDOMAIN: u8 = 3;
const RCODE_FORMERR: u8 = 1;

/// A running DNS server, stopped when dropped.
pub struct Dns {
    /// Where it listens (UDP).
    pub addr: SocketAddr,
    addresses: Arc<Mutex<Vec<Ipv4Addr>>>,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Dns {
    /// Starts a server that answers for `name` (no trailing dot) with `addresses`.
    pub fn start(name: &str, addresses: &[Ipv4Addr]) -> Dns {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("DNS socket binds");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let addr = socket.local_addr().expect("local address");
        let addresses = Arc::new(Mutex::new(addresses.to_vec()));
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (name, addresses, queries, stop) = (
                name.to_ascii_lowercase(),
                addresses.clone(),
                queries.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let mut buf = [0u8; 512];
                while !stop.load(Ordering::SeqCst) {
                    let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    queries.fetch_add(1, Ordering::SeqCst);
                    let current = addresses.lock().expect("addresses").clone();
                    let reply = answer(&buf[..n], &name, &current);
                    let _ = socket.send_to(&reply, peer);
                }
            })
        };
        Dns {
            addr,
            addresses,
            queries,
            stop,
            thread: Some(thread),
        }
    }

    /// Replaces the addresses the name resolves to.
    pub fn set(&self, addresses: &[Ipv4Addr]) {
        *self.addresses.lock().expect("addresses") = addresses.to_vec();
    }

    /// Queries answered so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The response to `query`: the A records of `addresses` when it asks for `name`,
/// an empty answer for another type of `name`, NXDOMAIN for any other name.
pub fn answer(query: &[u8], name: &str, addresses: &[Ipv4Addr]) -> Vec<u8> {
    let Some((qname, question_end)) = question(query) else {
        return header_only(query, RCODE_FORMERR);
    };
    let qtype = u16::from_be_bytes([query[question_end - 4], query[question_end - 3]]);
    if qname != name {
        let mut reply = header(query, RCODE_NXDOMAIN, 0);
        reply.extend_from_slice(&query[12..question_end]);
        return reply;
    }
    let records: &[Ipv4Addr] = if qtype == TYPE_A { addresses } else { &[] };
    let count = u16::try_from(records.len()).expect("a handful of records");
    let mut reply = header(query, 0, count);
    reply.extend_from_slice(&query[12..question_end]);
    for address in records {
        // A pointer to the question's name at offset 12.
        reply.extend_from_slice(&[0xc0, 0x0c]);
        reply.extend_from_slice(&TYPE_A.to_be_bytes());
        reply.extend_from_slice(&CLASS_IN.to_be_bytes());
        reply.extend_from_slice(&1u32.to_be_bytes());
        reply.extend_from_slice(&4u16.to_be_bytes());
        reply.extend_from_slice(&address.octets());
    }
    reply
}

/// The first question's name (lower case, dotted) and where the question ends.
fn question(query: &[u8]) -> Option<(String, usize)> {
    if query.len() < 12 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        // Compression pointers never occur in a question that starts at offset 12.
        if len > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let end = at + 4;
    (query.len() >= end).then(|| (labels.join("."), end))
}

/// A response header for `query` with `rcode`, one question and `answers` answers.
fn header(query: &[u8], rcode: u8, answers: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(512);
    h.extend_from_slice(&query[0..2]);
    // QR and AA set, the query's RD copied; no recursion offered.
    h.push(0x84 | (query[2] & 0x01));
    h.push(rcode);
    h.extend_from_slice(&1u16.to_be_bytes());
    h.extend_from_slice(&answers.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h
}

/// A bare error response echoing the query's id, for queries it cannot read.
fn header_only(query: &[u8], rcode: u8) -> Vec<u8> {
    let id = [
        query.first().copied().unwrap_or(0),
        query.get(1).copied().unwrap_or(0),
    ];
    vec![id[0], id[1], 0x84, rcode, 0, 0, 0, 0, 0, 0, 0, 0]
}
