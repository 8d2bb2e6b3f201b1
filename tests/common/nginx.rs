//! Real nginx processes around the rendered nginx.conf, and waiting on the load
//! that `clients` drives through them. Everything listens on 127.0.0.1, on free
//! ports, so tests can run in parallel; every process is stopped when its handle is
//! dropped, also when a test fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use webtoon_operator::render::proxy::nginx_conf::{NginxLayout, Upstream};

use super::clients::{WrkReport, parse_wrk};
use super::process::{Guard, free_port, terminate, wait_for_port};
use super::test_was::TestWas;

/// The nginx binary: `$WEBTOON_TEST_NGINX`, or Debian's.
pub fn nginx_binary() -> String {
    std::env::var("WEBTOON_TEST_NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".to_string())
}

/// An nginx of 1.27.3 or newer, whose upstreams can `resolve`: the one
/// `tests/build-nginx.sh` builds, named by `$WEBTOON_TEST_NGINX_RESOLVE`.
pub fn resolving_nginx_binary() -> String {
    std::env::var("WEBTOON_TEST_NGINX_RESOLVE").unwrap_or_else(|_| {
        panic!(
            "WEBTOON_TEST_NGINX_RESOLVE is not set: run the tests with tests/run.sh, or \
             set it to the path tests/build-nginx.sh prints"
        )
    })
}

/// The listen ports of one nginx instance.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    /// Plain HTTP.
    pub http: u16,
    /// HTTPS.
    pub https: u16,
    /// Health and status server.
    pub health: u16,
}

impl Ports {
    /// Three free ports.
    pub fn free() -> Self {
        Ports {
            http: free_port(),
            https: free_port(),
            health: free_port(),
        }
    }
}

/// The layout of a test nginx: everything under `dir`, listening on `ports` of
/// 127.0.0.1, with the WAS at fixed `upstreams` (`host:port`).
pub fn local_layout(dir: &Path, ports: &Ports, upstreams: &[String]) -> NginxLayout {
    let d = dir.display();
    NginxLayout {
        http_listen: format!("127.0.0.1:{}", ports.http),
        https_listen: format!("127.0.0.1:{}", ports.https),
        health_listen: format!("127.0.0.1:{}", ports.health),
        upstream: Upstream::Static(upstreams.to_vec()),
        tls_certificate: format!("{d}/tls.crt"),
        tls_certificate_key: format!("{d}/tls.key"),
        images_root: format!("{d}/images"),
        app_root: format!("{d}/app"),
        cache_dir: format!("{d}/cache"),
        temp_dir: format!("{d}"),
        pid_file: format!("{d}/nginx.pid"),
        mime_types: "/etc/nginx/mime.types".to_string(),
        error_log: format!("{d}/error.log warn"),
        access_log: format!("{d}/access.log"),
        metrics_log: None,
        // Debian's nginx 1.22 predates the `http2` directive (1.25.1).
        http2_directive: false,
    }
}

/// A running nginx (master and workers), stopped when dropped.
pub struct Nginx {
    child: Child,
    /// Its prefix directory, holding the configuration and logs.
    pub dir: PathBuf,
    /// Its listen ports.
    pub ports: Ports,
}

impl Nginx {
    /// Writes `conf` to `dir/nginx.conf`, starts nginx in the foreground and waits
    /// until its HTTP and health ports accept connections.
    pub fn start(dir: &Path, conf: &str, ports: Ports) -> Nginx {
        Nginx::start_binary(&nginx_binary(), dir, conf, ports)
    }

    /// [`Nginx::start`] with the nginx executable at `binary`.
    pub fn start_binary(binary: &str, dir: &Path, conf: &str, ports: Ports) -> Nginx {
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("startup.log"))
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts (install nginx-light)");
        let mut nginx = Nginx {
            child,
            dir: dir.to_path_buf(),
            ports,
        };
        for port in [ports.http, ports.health] {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if !wait_for_port(addr, Duration::from_secs(10)) {
                let exited = nginx.child.try_wait();
                panic!(
                    "nginx does not listen on {addr} ({exited:?}):\n{}\n{}",
                    nginx.log("startup.log"),
                    nginx.log("error.log")
                );
            }
        }
        nginx
    }

    /// The base URL of plain HTTP.
    pub fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.http)
    }

    /// A log file in the prefix directory, empty when missing.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its workers; SIGKILL would orphan them.
        terminate(&mut self.child);
    }
}

/// Polls until `was` has served a request, or the deadline passes.
pub fn wait_for_traffic(was: &TestWas, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if was.requests() > 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Waits for a guarded wrk run to exit by itself (it is bounded), asserts it
/// succeeded, and parses its report.
pub fn wait_report(mut guard: Guard) -> WrkReport {
    let mut stdout = String::new();
    if let Some(mut pipe) = guard.0.stdout.take() {
        use std::io::Read;
        pipe.read_to_string(&mut stdout).expect("read wrk output");
    }
    let status = guard.0.wait().expect("wrk exits");
    assert!(status.success(), "wrk failed: {stdout}");
    parse_wrk(&stdout)
}
