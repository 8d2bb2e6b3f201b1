//! The proxy tier for real: Debian's nginx runs exactly the rendered nginx.conf (in
//! its static-address form) on 127.0.0.1, in front of test WAS processes, and each
//! test shows one behaviour from a client's side.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::clients::{Response, curl, self_signed_cert, wrk_command};
use common::nginx::{Nginx, Ports, local_layout, wait_for_traffic, wait_report};
use common::process::{Guard, free_port, wait_for_port};
use common::test_was::{TestWas, encode_frame, take_frame, websocket_accept};
use common::{TempDir, stack_from_yaml};
use webtoon_operator::render::proxy::nginx_conf::nginx_conf;

const HOST: &str = "toon.example";

/// A stack with TLS for two hosts, everything else default.
const TLS_STACK: &str = "
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: toon, namespace: webtoon}
spec:
  hosts: [toon.example, www.toon.example]
  tls: {secretName: toon-tls}
  was: {image: registry.example/toon/was:1.0.0}
";

/// A stack without TLS; `extra` is appended to `spec.proxy`.
fn plain_stack(proxy: &str) -> String {
    format!(
        "
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {{name: toon, namespace: webtoon}}
spec:
  hosts: [toon.example]
  proxy: {{{proxy}}}
  was: {{image: registry.example/toon/was:1.0.0}}
"
    )
}

/// nginx with the rendered configuration in front of some test WAS. Fields drop in
/// order: nginx stops before the WAS, and the directory goes last.
struct Site {
    nginx: Nginx,
    was: Vec<TestWas>,
    dir: TempDir,
}

impl Site {
    /// Starts `was` instances and nginx for `yaml`, with `spare` more upstream slots
    /// where nothing listens yet.
    fn start(name: &str, yaml: &str, was: usize, spare: usize) -> Site {
        let dir = TempDir::new(name);
        let was: Vec<TestWas> = (1..=was)
            .map(|i| TestWas::start(&format!("was-{i}")))
            .collect();
        let mut upstreams: Vec<String> = was.iter().map(TestWas::address).collect();
        upstreams.extend((0..spare).map(|_| format!("127.0.0.1:{}", free_port())));
        let stack = stack_from_yaml(yaml);
        if stack.spec.tls.is_some() {
            let hosts: Vec<&str> = stack.spec.hosts.iter().map(String::as_str).collect();
            self_signed_cert(&dir.0, &hosts);
        }
        std::fs::create_dir_all(dir.0.join("images")).expect("images directory");
        let ports = Ports::free();
        let conf = nginx_conf(&stack, &local_layout(&dir.0, &ports, &upstreams));
        let nginx = Nginx::start(&dir.0, &conf, ports);
        Site { nginx, was, dir }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.nginx.http())
    }

    /// GET `path` over plain HTTP with `Host: toon.example` and extra curl `args`.
    fn get(&self, path: &str, args: &[&str]) -> Response {
        let url = self.url(path);
        let mut all = vec!["-H", "Host: toon.example"];
        all.extend_from_slice(args);
        all.push(&url);
        curl(&all)
    }

    /// GET `path` over HTTPS for `host`, trusting the test certificate.
    fn get_tls(&self, host: &str, path: &str, args: &[&str]) -> Response {
        let resolve = format!("{host}:{}:127.0.0.1", self.nginx.ports.https);
        let cacert = self.cert();
        let url = format!("https://{host}:{}{path}", self.nginx.ports.https);
        let mut all = vec!["--resolve", &resolve, "--cacert", &cacert];
        all.extend_from_slice(args);
        all.push(&url);
        curl(&all)
    }

    fn cert(&self) -> String {
        self.dir.0.join("tls.crt").display().to_string()
    }

    fn images(&self) -> PathBuf {
        self.dir.0.join("images")
    }

    fn was_requests(&self) -> usize {
        self.was.iter().map(TestWas::requests).sum()
    }
}

/// The `key=value` line of a test WAS body.
fn seen(response: &Response, key: &str) -> String {
    response
        .text()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
        .unwrap_or_default()
}

fn assert_no_default_page(response: &Response) {
    let text = response.text().to_lowercase();
    assert!(
        !text.contains("welcome to nginx") && !text.contains("<html"),
        "a default page was served: {response:?}"
    );
}

#[test]
fn each_spec_host_is_served_and_an_unknown_host_gets_no_site() {
    let site = Site::start("proxy-vhosts", TLS_STACK, 1, 0);
    for host in ["toon.example", "www.toon.example"] {
        let r = site.get_tls(host, "/episode/1", &[]);
        assert_eq!(r.status, 200, "{host}: {r:?}");
        assert_eq!(seen(&r, "host"), host, "the WAS sees the requested host");
        assert_eq!(r.header("x-instance"), Some("was-1"));
    }
    let served = site.was_requests();

    // Plain HTTP, unknown Host: nginx closes the connection without an answer (444).
    let r = curl(&["-H", "Host: evil.example", &site.url("/")]);
    assert_eq!((r.exit, r.status), (52, 0), "empty reply expected: {r:?}");
    assert_no_default_page(&r);
    // A request without any Host header (HTTP/1.0) is no better.
    let r = curl(&["--http1.0", "-H", "Host:", &site.url("/")]);
    assert_eq!((r.exit, r.status), (52, 0), "empty reply expected: {r:?}");
    // An IP address as the host is unknown too.
    let r = curl(&[&site.url("/")]);
    assert_eq!((r.exit, r.status), (52, 0), "empty reply expected: {r:?}");

    // HTTPS, unknown name in SNI: the handshake is refused, no certificate is shown.
    let r = site.get_tls("evil.example", "/", &["--insecure"]);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(r.exit, 35, "TLS handshake failure expected: {r:?}");
    // HTTPS with a served name in SNI but another Host: no site either.
    let r = site.get_tls(
        "toon.example",
        "/",
        &["--http1.1", "-H", "Host: evil.example"],
    );
    assert_eq!((r.exit, r.status), (52, 0), "empty reply expected: {r:?}");
    assert_no_default_page(&r);

    assert_eq!(
        site.was_requests(),
        served,
        "no request for an unknown host reached the WAS"
    );

    // The probes' health server answers on its own port, whatever the Host.
    let health = format!("http://127.0.0.1:{}", site.nginx.ports.health);
    let r = curl(&[&format!("{health}/healthz")]);
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    let r = curl(&[&format!("{health}/stub_status")]);
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("Active connections:"), "{r:?}");
    assert_eq!(curl(&[&format!("{health}/")]).status, 404);
}

/// Runs `openssl s_client` with a TLS version flag; returns the negotiated protocol,
/// or `None` when the handshake fails.
fn handshake(port: u16, version_flag: &str) -> Option<String> {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", HOST, version_flag])
        // Level 0 lets the client offer TLS 1.0 and 1.1 at all, so that a refusal
        // comes from the server.
        .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "s_client {version_flag} to {port}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The session's "Protocol  : TLSv1.2"; s_client prints no session for TLS 1.3,
    // whose suites ("New, TLSv1.3, Cipher is TLS_AES_...") exist in no other version.
    // A failed handshake shows "New, (NONE), Cipher is (NONE)".
    let suite = stdout
        .lines()
        .find_map(|l| l.strip_prefix("New, "))
        .and_then(|l| l.split(',').next())?;
    if suite == "(NONE)" {
        return None;
    }
    let protocol = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Protocol  : "));
    protocol
        .or((suite == "TLSv1.3").then_some(suite))
        .map(str::to_string)
}

#[test]
fn tls_1_2_and_1_3_are_accepted_and_1_0_and_1_1_refused() {
    let site = Site::start("proxy-tls-versions", TLS_STACK, 1, 0);
    let https = site.nginx.ports.https;
    assert!(wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], https)),
        Duration::from_secs(5)
    ));
    assert_eq!(handshake(https, "-tls1_2").as_deref(), Some("TLSv1.2"));
    assert_eq!(handshake(https, "-tls1_3").as_deref(), Some("TLSv1.3"));
    assert_eq!(handshake(https, "-tls1"), None, "TLS 1.0 must be refused");
    assert_eq!(handshake(https, "-tls1_1"), None, "TLS 1.1 must be refused");

    // Control: the same client commands do complete TLS 1.0 and 1.1 with a server
    // that allows them, so the refusals above are nginx's.
    let control_port = free_port();
    let key = site.dir.0.join("tls.key");
    let _control = Guard(
        Command::new("openssl")
            .args(["s_server", "-accept", &format!("127.0.0.1:{control_port}")])
            .arg("-cert")
            .arg(site.cert())
            .arg("-key")
            .arg(&key)
            .args(["-cipher", "DEFAULT:@SECLEVEL=0", "-quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server starts"),
    );
    assert!(wait_for_port(
        SocketAddr::from(([127, 0, 0, 1], control_port)),
        Duration::from_secs(5)
    ));
    assert_eq!(handshake(control_port, "-tls1").as_deref(), Some("TLSv1"));
    assert_eq!(
        handshake(control_port, "-tls1_1").as_deref(),
        Some("TLSv1.1")
    );
}

#[test]
fn http_redirects_to_https_which_sends_hsts_and_negotiates_http2() {
    let site = Site::start("proxy-https", TLS_STACK, 1, 0);
    let r = site.get("/episode/7?page=2", &[]);
    assert_eq!(r.status, 308, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some("https://toon.example/episode/7?page=2"),
        "the redirect keeps path and query; the Service maps 443 to nginx's port"
    );
    assert_eq!(site.was_requests(), 0, "the redirect never reaches the WAS");

    let r = site.get_tls(HOST, "/episode/7", &["--http2"]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.version, "HTTP/2", "HTTP/2 by ALPN: {r:?}");
    assert_eq!(
        r.all("strict-transport-security"),
        vec!["max-age=31536000; includeSubDomains"]
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r.header("server").is_none_or(|s| s == "nginx"), "{r:?}");

    // Clients without HTTP/2 still get HTTP/1.1, with HSTS.
    let r = site.get_tls(HOST, "/", &["--http1.1"]);
    assert_eq!((r.status, r.version.as_str()), (200, "HTTP/1.1"));
    assert!(r.header("strict-transport-security").is_some());
}

#[test]
fn websocket_upgrade_reaches_the_was_and_frames_come_back() {
    use std::io::{Read, Write};
    let site = Site::start("proxy-websocket", &plain_stack(""), 1, 0);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", site.nginx.ports.http))
        .expect("connect to nginx");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    write!(
        stream,
        "GET /live/chat HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .expect("send upgrade");

    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).expect("read handshake");
        assert!(n > 0, "nginx closed the connection: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(
        head.contains(&format!(
            "sec-websocket-accept: {}",
            websocket_accept(key).to_lowercase()
        )),
        "{head}"
    );
    assert!(head.contains("x-instance: was-1"), "{head}");
    buf.drain(..head_end);

    for message in ["hello", "second frame, a little longer than the first one"] {
        stream
            .write_all(&encode_frame(0x1, message.as_bytes(), Some([1, 2, 3, 4])))
            .expect("send frame");
        let frame = loop {
            if let Some(frame) = take_frame(&mut buf) {
                break frame;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).expect("read frame");
            assert!(n > 0, "connection closed before the echo");
            buf.extend_from_slice(&chunk[..n]);
        };
        assert_eq!(frame, (0x1, message.as_bytes().to_vec()));
    }
    assert_eq!(
        site.was[0].requests(),
        1,
        "one upgrade request reached the WAS"
    );
}

#[test]
fn images_come_from_the_shared_directory_with_long_cache_headers_and_never_from_the_was() {
    let site = Site::start("proxy-images", &plain_stack(""), 1, 0);
    let images = site.images();
    std::fs::create_dir_all(images.join("ep1")).expect("episode directory");
    let picture: Vec<u8> = (0..65_536u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(images.join("ep1/001.jpg"), &picture).expect("image");
    for hidden in [
        ".htpasswd",
        "ep1/.secret",
        "dump.sql",
        "ep1/001.jpg.bak",
        "ep1/001.jpg~",
        "ep1/notes.old",
    ] {
        std::fs::write(images.join(hidden), b"secret").expect("hidden file");
    }
    std::fs::create_dir_all(images.join(".git")).expect("dot directory");
    std::fs::write(images.join(".git/config"), b"secret").expect("git config");

    let r = site.get("/images/ep1/001.jpg", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, picture, "the file's bytes");
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(
        r.all("cache-control"),
        vec!["public, max-age=604800, immutable"],
        "exactly one Cache-Control, long-lived (staticMaxAge 7d)"
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));

    // A second request is served from nginx's open file cache just the same.
    let r = site.get("/images/ep1/001.jpg", &[]);
    assert_eq!((r.status, r.body.len()), (200, picture.len()));
    let r = site.get("/images/ep1/404.jpg", &[]);
    assert_eq!(r.status, 404);

    // No listing of the directories.
    for listing in ["/images/", "/images/ep1/"] {
        let r = site.get(listing, &[]);
        assert!(matches!(r.status, 403 | 404), "{listing}: {r:?}");
        assert!(!r.text().contains("001.jpg"), "{listing} is listed: {r:?}");
    }
    // Dotfiles and backups are denied, under the images and anywhere else.
    for denied in [
        "/images/.htpasswd",
        "/images/ep1/.secret",
        "/images/.git/config",
        "/images/dump.sql",
        "/images/ep1/001.jpg.bak",
        "/images/ep1/001.jpg~",
        "/images/ep1/notes.old",
        "/.env",
        "/.git/HEAD",
        "/backup/site.sql",
        "/index.php.bak",
        "/index.php~",
    ] {
        let r = site.get(denied, &[]);
        assert_eq!(r.status, 403, "{denied}: {r:?}");
        assert!(!r.text().contains("secret"), "{denied}: {r:?}");
    }
    assert_eq!(site.was_requests(), 0, "no image request reached the WAS");

    // No escape from the images directory: nginx resolves `..` in the URI first, so
    // these leave /images/ and go to the WAS as ordinary pages.
    for escape in [
        "/images/../nginx.conf",
        "/images/..%2fnginx.conf",
        "/images../nginx.conf",
    ] {
        let r = site.get(escape, &["--path-as-is"]);
        assert!(!r.text().contains("worker_processes"), "{escape}: {r:?}");
    }

    let before = site.was_requests();
    for _ in 0..5 {
        assert_eq!(site.get("/images/ep1/001.jpg", &[]).status, 200);
    }
    assert_eq!(
        site.was_requests(),
        before,
        "image requests never reach the WAS"
    );
}

#[test]
fn cacheable_pages_are_cached_and_served_stale_while_every_was_is_down() {
    let mut site = Site::start("proxy-cache", &plain_stack(""), 2, 0);
    let first = site.get("/cacheable/episode/1", &[]);
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.header("x-cache-status"), Some("MISS"));
    let again = site.get("/cacheable/episode/1", &[]);
    assert_eq!(again.header("x-cache-status"), Some("HIT"), "{again:?}");
    assert_eq!(again.body, first.body, "the same stored page");
    assert_eq!(site.was_requests(), 1, "the hit did not reach the WAS");

    // Pages marked private are never stored, nor are requests with a session.
    for _ in 0..2 {
        let r = site.get("/", &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-cache-status"), Some("MISS"), "{r:?}");
    }
    let r = site.get("/cacheable/episode/1", &["-H", "Cookie: session=abc"]);
    assert_eq!(r.header("x-cache-status"), Some("BYPASS"), "{r:?}");

    let short = site.get("/short-lived/episode/2", &[]);
    assert_eq!(short.header("x-cache-status"), Some("MISS"));

    for was in &mut site.was {
        was.kill();
    }
    let r = site.get("/", &[]);
    assert_eq!(
        r.status, 502,
        "with every WAS down, uncached pages fail: {r:?}"
    );

    let r = site.get("/cacheable/episode/1", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-cache-status"), Some("HIT"));
    assert_eq!(r.body, first.body);

    // The short-lived page expires after a second; from then on it is served stale.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stale = loop {
        let r = site.get("/short-lived/episode/2", &[]);
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body, short.body, "the stored page");
        let status = r.header("x-cache-status").unwrap_or_default().to_string();
        if status == "STALE" || status == "UPDATING" {
            break r;
        }
        assert_eq!(status, "HIT", "{r:?}");
        assert!(Instant::now() < deadline, "the page never went stale");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(stale.body, short.body);
}

#[test]
fn admin_paths_answer_403_outside_the_allowed_networks_and_the_was_sees_the_client() {
    let site = Site::start(
        "proxy-admin",
        &plain_stack("admin: {paths: [/admin, /manage/], allowCIDRs: [127.0.0.1/32]}"),
        1,
        0,
    );
    let outside = ["--interface", "127.0.0.2"];
    let inside = ["--interface", "127.0.0.1"];
    for path in [
        "/admin",
        "/admin/",
        "/admin/users?id=1",
        "/manage",
        "/manage/x",
    ] {
        let r = site.get(path, &outside);
        assert_eq!(r.status, 403, "{path} from outside: {r:?}");
        // A forged X-Forwarded-For from an untrusted client changes nothing.
        let r = site.get(
            path,
            &[outside[0], outside[1], "-H", "X-Forwarded-For: 127.0.0.1"],
        );
        assert_eq!(r.status, 403, "{path} with forged X-Forwarded-For: {r:?}");
    }
    assert_eq!(
        site.was_requests(),
        0,
        "refused requests never reach the WAS"
    );

    for path in ["/admin", "/admin/users?id=1", "/manage/x"] {
        let r = site.get(path, &inside);
        assert_eq!(r.status, 200, "{path} from inside: {r:?}");
        assert_eq!(seen(&r, "x-real-ip"), "127.0.0.1");
        assert_eq!(seen(&r, "x-forwarded-for"), "127.0.0.1");
    }
    // Dotfiles and backups are denied under the admin paths too.
    for path in ["/admin/.env", "/admin/dump.sql", "/manage/config.php~"] {
        let r = site.get(path, &inside);
        assert_eq!(r.status, 403, "{path}: {r:?}");
        assert!(!r.text().contains("instance="), "{path} reached the WAS");
    }
    // Only the admin paths are restricted: `/administrator` is another page.
    let r = site.get("/administrator", &outside);
    assert_eq!(r.status, 200, "{r:?}");
    let r = site.get(
        "/",
        &[outside[0], outside[1], "-H", "X-Forwarded-For: 10.9.9.9"],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        seen(&r, "x-real-ip"),
        "127.0.0.2",
        "the real client address"
    );
    assert_eq!(
        seen(&r, "x-forwarded-for"),
        "127.0.0.2",
        "not the forged one"
    );
}

#[test]
fn behind_trusted_proxies_the_client_address_comes_from_x_forwarded_for() {
    let site = Site::start(
        "proxy-trusted",
        &plain_stack("admin: {allowCIDRs: [10.1.2.0/24]}, trustedProxyCIDRs: [127.0.0.3/32]"),
        1,
        0,
    );
    let via = |from: &str, xff: &str, path: &str| {
        let header = format!("X-Forwarded-For: {xff}");
        site.get(path, &["--interface", from, "-H", &header])
    };
    let r = via("127.0.0.3", "10.1.2.3", "/admin");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(seen(&r, "x-real-ip"), "10.1.2.3");
    assert_eq!(seen(&r, "x-forwarded-for"), "10.1.2.3");
    // The right-most address not added by a trusted proxy counts, so a client cannot
    // put an allowed address in front.
    let r = via("127.0.0.3", "10.1.2.3, 192.0.2.9", "/admin");
    assert_eq!(r.status, 403, "{r:?}");
    let r = via("127.0.0.3", "192.0.2.9, 10.1.2.3", "/admin");
    assert_eq!(r.status, 200, "{r:?}");
    let r = via("127.0.0.3", "192.0.2.9", "/admin");
    assert_eq!(r.status, 403, "{r:?}");
    // An untrusted sender's header is ignored.
    let r = via("127.0.0.2", "10.1.2.3", "/admin");
    assert_eq!(r.status, 403, "{r:?}");
    let r = via("127.0.0.2", "10.1.2.3", "/");
    assert_eq!(seen(&r, "x-real-ip"), "127.0.0.2");
}

/// Sends `count` GETs for `path` over one connection from `from`; returns the statuses.
fn burst(site: &Site, from: &str, path: &str, count: usize) -> Vec<u16> {
    let url = site.url(path);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--interface", from])
        .args(["-H", "Host: toon.example", "-w", "%{http_code}\\n"])
        .args((0..count).flat_map(|_| ["-o", "/dev/null", url.as_str()]))
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            l.trim()
                .parse()
                .unwrap_or_else(|_| panic!("a status code, not {l:?}: {out:?}"))
        })
        .collect()
}

#[test]
fn one_address_beyond_rate_and_burst_gets_429_and_another_is_unaffected() {
    let site = Site::start(
        "proxy-rate-limit",
        &plain_stack("rateLimit: {requestsPerSecond: 1, burst: 3}"),
        1,
        0,
    );
    std::fs::create_dir_all(site.images().join("ep1")).expect("images");
    std::fs::write(site.images().join("ep1/001.jpg"), b"jpeg").expect("image");

    let started = Instant::now();
    let statuses = burst(&site, "127.0.0.1", "/episode/1", 12);
    let refills = started.elapsed().as_secs() as usize + 1;
    assert_eq!(statuses.len(), 12, "{statuses:?}");
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(ok + limited, 12, "only 200 and 429: {statuses:?}");
    // One request at the rate plus a burst of 3, and one more per second that went by.
    assert!((4..=3 + refills).contains(&ok), "{statuses:?}");
    assert_eq!(&statuses[..4], &[200, 200, 200, 200], "{statuses:?}");
    assert_eq!(*statuses.last().expect("statuses"), 429, "{statuses:?}");
    assert_eq!(site.was_requests(), ok, "429s never reach the WAS");

    let other = burst(&site, "127.0.0.2", "/episode/1", 3);
    assert_eq!(other, vec![200, 200, 200], "another address is unaffected");
    // Images are not limited: one page view loads many of them.
    let images = burst(&site, "127.0.0.1", "/images/ep1/001.jpg", 10);
    assert!(images.iter().all(|s| *s == 200), "{images:?}");
}

/// A stack for load: no rate limit, so that one load generator is one client.
fn load_stack() -> String {
    plain_stack("rateLimit: {enabled: false}")
}

#[test]
fn killing_one_was_under_load_fails_no_request() {
    let mut site = Site::start("proxy-failover-kill", &load_stack(), 2, 0);
    let load = wrk_command(&site.url("/episode/1"), HOST, 8, 10)
        .spawn()
        .expect("wrk runs (install wrk)");
    let mut load = Guard(load);
    let started = Instant::now();
    assert!(wait_for_traffic(&site.was[0], Duration::from_secs(5)));
    assert!(wait_for_traffic(&site.was[1], Duration::from_secs(5)));
    // Both serve for the first 3 s of the 10 s run; then one dies mid-stream.
    while started.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed_after = site.was[0].requests();
    site.was[0].kill();
    assert!(
        matches!(load.0.try_wait(), Ok(None)),
        "the load still runs when the WAS dies"
    );
    let survivor_before = site.was[1].requests();

    let report = wait_report(load);
    eprintln!(
        "kill one WAS: {} requests, {} non-2xx/3xx, {} socket errors; was-1 served {killed_after} before it was killed, was-2 {} in all",
        report.requests,
        report.non_2xx_3xx,
        report.socket_errors,
        site.was[1].requests()
    );
    report.assert_no_request_failed();
    assert!(
        site.was[1].requests() > survivor_before + 100,
        "the survivor carried the load after the kill"
    );
    assert!(
        site.nginx.log("error.log").contains("failed")
            || site.nginx.log("error.log").contains("prematurely closed"),
        "nginx saw the failure and hid it"
    );
}

#[test]
fn replacing_every_was_one_at_a_time_under_load_fails_no_request() {
    // Three upstream slots for two WAS, as a cluster has room for a surge pod: each
    // replacement starts on a free slot, takes traffic, and only then is the old
    // instance stopped.
    let mut site = Site::start("proxy-failover-replace", &load_stack(), 2, 1);
    let conf = site.nginx.log("nginx.conf");
    let spare: SocketAddr = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("server 127.0.0.1:"))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|port| format!("127.0.0.1:{port}").parse().ok())
        .find(|a| site.was.iter().all(|w| w.addr != *a))
        .expect("a spare slot");

    let load = Guard(
        wrk_command(&site.url("/episode/1"), HOST, 8, 16)
            .spawn()
            .expect("wrk runs (install wrk)"),
    );
    let started = Instant::now();
    assert!(wait_for_traffic(&site.was[0], Duration::from_secs(5)));
    assert!(wait_for_traffic(&site.was[1], Duration::from_secs(5)));

    let mut free_slot = spare;
    let mut replaced = Vec::new();
    for i in 0..2 {
        let new = TestWas::start_at(&format!("was-new-{}", i + 1), free_slot);
        // nginx retries a slot it marked failed after fail_timeout (5 s).
        assert!(
            wait_for_traffic(&new, Duration::from_secs(8)),
            "nginx never sent traffic to {}",
            new.name
        );
        free_slot = site.was[i].addr;
        site.was[i].kill();
        replaced.push(new);
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the replacements finished while the load still ran"
    );
    let report = wait_report(load);
    let new_served: Vec<usize> = replaced.iter().map(TestWas::requests).collect();
    eprintln!(
        "replace every WAS: {} requests, {} non-2xx/3xx, {} socket errors; new instances served {new_served:?}",
        report.requests, report.non_2xx_3xx, report.socket_errors
    );
    report.assert_no_request_failed();
    assert!(new_served.iter().all(|n| *n > 100), "{new_served:?}");
    site.was.extend(replaced);
}

#[test]
fn a_killed_test_was_closes_its_open_connections_too() {
    use std::io::{Read, Write};
    let mut was = TestWas::start("was-1");
    let mut stream = std::net::TcpStream::connect(was.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("request");
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).expect("response");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    was.kill();
    // The keep-alive connection is gone, as a dead process's would be.
    let closed = matches!(stream.read(&mut buf), Ok(0) | Err(_));
    assert!(closed, "the connection outlived the WAS");
}

#[test]
fn failed_attempts_are_retried_on_another_was_but_never_a_sent_post() {
    // One WAS and one slot where nothing listens: the refused connection of every
    // attempt on it is retried on the live WAS, whatever the method, because
    // nothing was sent.
    let site = Site::start("proxy-retries", &load_stack(), 1, 1);
    for i in 0..10 {
        let r = site.get(&format!("/form/{i}"), &["-X", "POST", "-d", "x=1"]);
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(seen(&r, "method"), "POST");
    }
    assert_eq!(site.was_requests(), 10, "each POST reached the WAS once");
    drop(site);

    // Two WAS that both die in the middle of the request: a GET is tried on each,
    // a POST that was sent is never replayed, since it may have taken effect.
    let site = Site::start("proxy-no-replay", &load_stack(), 2, 0);
    let r = site.get("/drop/order", &["-X", "POST", "-d", "item=1"]);
    assert_eq!(r.status, 502, "{r:?}");
    assert_eq!(
        site.was_requests(),
        1,
        "the POST was sent once, not replayed"
    );
    let site = Site::start("proxy-replay-get", &load_stack(), 2, 0);
    let r = site.get("/drop/page", &[]);
    assert_eq!(r.status, 502, "{r:?}");
    assert_eq!(site.was_requests(), 2, "the GET was tried on both WAS");
}
