//! A small application server (WAS) that stands in for the site's own image behind
//! the rendered nginx: HTTP/1.1 with keep-alive, a cacheable page, a WebSocket echo,
//! and a count of the requests it saw. Each instance runs on its own tokio runtime,
//! so that killing it closes its listener and every open connection at once, as the
//! death of a process would.
//!
//! Pages:
//! - any path: 200, `Cache-Control: private, no-store`, a body naming the instance
//!   and the `Host`, `X-Real-IP` and `X-Forwarded-For` it received;
//! - `/cacheable...`: the same, with `Cache-Control: public, max-age=60`;
//! - `/short-lived...`: the same, with `Cache-Control: public, max-age=1`;
//! - `/drop...`: counted, then the connection is closed without an answer, as by a
//!   process that dies while handling the request;
//! - `Upgrade: websocket` on any path: the RFC 6455 handshake, then every data frame
//!   is sent back unchanged.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// The GUID of RFC 6455 that turns `Sec-WebSocket-Key` into `Sec-WebSocket-Accept`.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn websocket_accept(key: &str) -> String {
    let digest = Sha1::digest(format!("{key}{WEBSOCKET_GUID}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// One running test WAS.
pub struct TestWas {
    /// Name reported in `X-Instance` and in each body.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    runtime: Option<Runtime>,
}

impl TestWas {
    /// Starts an instance on a free port of 127.0.0.1.
    pub fn start(name: &str) -> TestWas {
        TestWas::start_at(name, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts an instance listening at `addr`; it accepts connections on return.
    pub fn start_at(name: &str, addr: SocketAddr) -> TestWas {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("was-{name}"))
            .enable_all()
            .build()
            .expect("tokio runtime");
        let std_listener = StdListener::bind(addr).expect("test WAS binds its address");
        std_listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = std_listener.local_addr().expect("local address");
        let requests = Arc::new(AtomicUsize::new(0));
        let instance = Arc::new(name.to_string());
        {
            let _entered = runtime.enter();
            let listener = TcpListener::from_std(std_listener).expect("tokio listener");
            let requests = requests.clone();
            runtime.spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve(stream, instance.clone(), requests.clone()));
                }
            });
        }
        TestWas {
            name: name.to_string(),
            addr,
            requests,
            runtime: Some(runtime),
        }
    }

    /// `host:port` for an nginx `server` line.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Requests received so far (a WebSocket upgrade counts as one).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Kills the instance: its listener and every connection close, and the port
    /// refuses connections on return.
    pub fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Dropping the tasks drops their sockets; the timeout bounds the wait
            // for worker threads, which hold no blocking work here.
            runtime.shutdown_timeout(Duration::from_secs(2));
            assert!(
                std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(500))
                    .is_err(),
                "killed WAS {} still accepts connections",
                self.name
            );
        }
    }
}

impl Drop for TestWas {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A parsed request head.
struct Request {
    method: String,
    path: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse_head(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let version = first.next()?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Request {
        method,
        path,
        version,
        headers,
    })
}

async fn serve(mut stream: TcpStream, instance: Arc<String>, requests: Arc<AtomicUsize>) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if buf.len() > 64 * 1024 {
                return;
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let Some(request) = parse_head(&buf[..head_end - 4]) else {
            return;
        };
        let body_len: usize = request
            .header("Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + body_len {
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        buf.drain(..head_end + body_len);
        requests.fetch_add(1, Ordering::SeqCst);

        if request
            .header("Upgrade")
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
        {
            let key = request.header("Sec-WebSocket-Key").unwrap_or_default();
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nX-Instance: {instance}\r\n\r\n",
                websocket_accept(key)
            );
            if stream.write_all(response.as_bytes()).await.is_ok() {
                websocket_echo(stream, buf).await;
            }
            return;
        }

        if request.path.starts_with("/drop") {
            return;
        }
        let cache_control = if request.path.starts_with("/cacheable") {
            "public, max-age=60"
        } else if request.path.starts_with("/short-lived") {
            "public, max-age=1"
        } else {
            "private, no-store"
        };
        let seen = |name: &str| request.header(name).unwrap_or("-").to_string();
        let body = format!(
            "instance={instance}\nmethod={}\npath={}\nhost={}\nx-real-ip={}\nx-forwarded-for={}\n",
            request.method,
            request.path,
            seen("Host"),
            seen("X-Real-IP"),
            seen("X-Forwarded-For"),
        );
        let close = request.version == "HTTP/1.0"
            || request
                .header("Connection")
                .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nCache-Control: {cache_control}\r\nX-Instance: {instance}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" },
        );
        if stream.write_all(response.as_bytes()).await.is_err() || close {
            return;
        }
    }
}

/// Sends every data frame back unmasked, answers ping with pong, and close with close.
async fn websocket_echo(mut stream: TcpStream, mut buf: Vec<u8>) {
    loop {
        let frame = loop {
            if let Some(frame) = take_frame(&mut buf) {
                break frame;
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let (opcode, payload) = frame;
        let reply_opcode = match opcode {
            0x9 => 0xA,
            other => other,
        };
        if stream
            .write_all(&encode_frame(reply_opcode, &payload, None))
            .await
            .is_err()
            || opcode == 0x8
        {
            return;
        }
    }
}

/// Removes one complete frame from the front of `buf`: its opcode and unmasked payload.
pub fn take_frame(buf: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0F;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => {
            let mut be = [0u8; 8];
            be.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(be) as usize, 10)
        }
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    let mask = if masked {
        if buf.len() < at + 4 {
            return None;
        }
        let m = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        Some(m)
    } else {
        None
    };
    if buf.len() < at + len {
        return None;
    }
    let mut payload = buf[at..at + len].to_vec();
    if let Some(mask) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    buf.drain(..at + len);
    Some((opcode, payload))
}

/// One final frame; clients must mask (`mask`), servers must not.
pub fn encode_frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => frame.push(mask_bit | n as u8),
        n if n <= usize::from(u16::MAX) => {
            frame.push(mask_bit | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(mask_bit | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(mask) => {
            frame.extend_from_slice(&mask);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        }
        None => frame.extend_from_slice(payload),
    }
    frame
}
