//! PHP sites for real: Debian's php-fpm (its php.ini and pool defaults) runs a small
//! PHP application with a front controller behind the rendered nginx.conf of a
//! `protocol: fastcgi` stack, on 127.0.0.1. nginx's copy of the document root is
//! made by the rendered init container's own script, and the shared image directory
//! sits inside php-fpm's document root, the worst place a customer could mount it.
//! The static upstream form runs in Debian's nginx, the in-cluster `resolve` form in
//! nginx 1.28 (`tests/build-nginx.sh`) against the stand-in cluster DNS.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::clients::{Response, curl, self_signed_cert, wrk_command};
use common::dns::Dns;
use common::nginx::{Nginx, Ports, local_layout, resolving_nginx_binary, wait_report};
use common::php_fpm::PhpFpm;
use common::process::{Guard, free_port};
use common::{TempDir, stack_from_yaml};
use webtoon_operator::api::ValidatedStack;
use webtoon_operator::render::proxy::nginx_conf::{APP_DIR, NginxLayout, Upstream, nginx_conf};
use webtoon_operator::render::{Observed, render};

const HOST: &str = "php.example";

/// What a script prints when it runs: the source holds it only in pieces.
const EXECUTED: &str = "EXECUTED-42";
/// What an uploaded file prints if it ever runs.
const PWNED: &str = "PWNED-42";
/// Written in every PHP source, to tell when a source is served as text.
const SOURCE: &str = "SOURCE-MARKER-7";
/// Written in every file holding configuration or secrets.
const SECRET: &str = "SECRET-MARKER-9";

/// php-fpm's limit on request bodies in Debian's php.ini (`post_max_size = 8M`),
/// and the stack's `clientMaxBodySize: 8m`: the same number of bytes.
const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// The shared part of each script: a plain-text report of what PHP received.
const REPORT_INC: &str = r#"<?php
// SOURCE-MARKER-7
function report(string $app): void
{
    header('Content-Type: text/plain; charset=utf-8');
    header('Cache-Control: private, no-store');
    echo "app=$app\n";
    foreach (['SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO', 'REQUEST_URI', 'QUERY_STRING',
        'DOCUMENT_ROOT', 'REMOTE_ADDR', 'HTTPS', 'SERVER_PORT', 'REQUEST_METHOD', 'HTTP_HOST']
        as $key) {
        echo "$key=" . ($_SERVER[$key] ?? '') . "\n";
    }
    if ($_SERVER['REQUEST_METHOD'] === 'POST') {
        $body = file_get_contents('php://input');
        echo 'body_bytes=' . strlen($body) . "\n";
        echo 'body_sha256=' . hash('sha256', $body) . "\n";
        foreach ($_FILES as $name => $file) {
            echo "file_$name=" . $file['size'] . ' error=' . $file['error'] . ' sha256='
                . ($file['error'] === 0 ? hash_file('sha256', $file['tmp_name']) : '') . "\n";
        }
    }
    echo 'marker=' . 'EXEC' . 'UTED-' . (6 * 7) . "\n";
}
"#;

/// A front controller with a router, as frameworks have: known routes answer 200,
/// anything else the application's 404.
const INDEX_PHP: &str = r#"<?php
// SOURCE-MARKER-7
require __DIR__ . '/lib/report.inc';
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if (str_starts_with($path, '/index.php')) {
    $path = $_SERVER['PATH_INFO'] !== '' ? $_SERVER['PATH_INFO'] : '/';
}
$known = $path === '/' || $path === '/upload'
    || preg_match('#^/episodes/\d+$#', $path) || preg_match('#^/admin(/|$)#', $path);
if (!$known) {
    http_response_code(404);
}
report($known ? 'front-controller' : 'no-route');
"#;

/// PHP that proves it ran, in every uploaded file.
const UPLOADED_PHP: &[u8] = b"GIF89a<?php echo 'PWN' . 'ED-' . (6 * 7); ?>\n";

/// Writes the application into `root`, php-fpm's document root.
fn write_app(root: &Path) {
    let script = |name: &str| {
        format!("<?php\n// {SOURCE}\nrequire __DIR__ . '/lib/report.inc';\nreport('{name}');\n")
    };
    let admin = "<?php\n// SOURCE-MARKER-7\nrequire __DIR__ . '/../lib/report.inc';\nreport('admin-script');\n";
    let executes = format!("<?php // {SOURCE}\necho 'EXEC' . 'UTED-' . (6 * 7);\n");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("index.php", INDEX_PHP.into()),
        ("hello.php", script("hello").into()),
        ("admin/index.php", admin.into()),
        ("lib/report.inc", REPORT_INC.into()),
        ("css/app.css", b"body { color: #123456; }\n".to_vec()),
        ("js/app.js", b"console.log('toon');\n".to_vec()),
        (
            "fonts/webtoon.woff2",
            (0..3000u32).map(|i| (i % 251) as u8).collect(),
        ),
        ("robots.txt", b"User-agent: *\n".to_vec()),
        // Never served, never run.
        (".env", format!("DB_PASSWORD={SECRET}\n").into()),
        (".user.ini", format!("; {SECRET}\n").into()),
        (".git/config", format!("[remote] {SECRET}\n").into()),
        (
            "composer.json",
            format!("{{\"description\": \"{SECRET}\"}}\n").into(),
        ),
        (
            "composer.lock",
            format!("{{\"hash\": \"{SECRET}\"}}\n").into(),
        ),
        ("config.ini", format!("password={SECRET}\n").into()),
        ("vendor/autoload.php", executes.clone().into()),
        (
            "vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
            format!("<?php // {SOURCE}\neval('?>' . file_get_contents('php://input'));\n").into(),
        ),
        ("node_modules/x/index.php", executes.clone().into()),
        ("index.php~", INDEX_PHP.into()),
        ("index.php.bak", INDEX_PHP.into()),
        (
            "config.php.bak",
            format!("<?php $password = '{SECRET}';\n").into(),
        ),
        ("info.phtml", executes.clone().into()),
        ("old.php5", executes.clone().into()),
        ("INFO.PHP", executes.clone().into()),
        ("tool.phar", executes.into()),
    ];
    for (name, content) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("directory");
        std::fs::write(path, content).expect("application file");
    }
}

/// The init container's command from the rendered proxy Deployment, without its
/// last two arguments (the document root and the copy's directory).
fn rendered_copy_command(stack: &ValidatedStack) -> Vec<String> {
    let children = render(stack, &Observed::default());
    let pod = children
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some("toon-proxy"))
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.template.spec.clone())
        .expect("proxy pod template");
    let init = pod
        .init_containers
        .as_ref()
        .and_then(|c| c.first())
        .expect("the proxy pod copies the application's files first");
    assert_eq!(
        init.image.as_deref(),
        Some("registry.example/toon/php:1.0.0")
    );
    let mut command = init.command.clone().expect("command");
    let tail = command.split_off(command.len() - 2);
    assert_eq!(
        tail,
        [stack.spec.was.fastcgi_root.clone(), APP_DIR.to_string()]
    );
    command
}

/// Runs the copy `command` from `root` into `copy`, with `path` as `$PATH` if given.
fn run_copy(command: &[String], root: &Path, copy: &Path, path: Option<&Path>) {
    std::fs::create_dir_all(copy).expect("copy directory");
    let (program, args) = command.split_first().expect("a program");
    let mut run = Command::new(program);
    run.args(args).arg(root).arg(copy);
    if let Some(path) = path {
        run.env("PATH", path);
    }
    let out = run.output().expect("the copy script runs");
    assert!(
        out.status.success(),
        "copy failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
}

/// Where nginx finds php-fpm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// Fixed addresses, in Debian's nginx.
    Static,
    /// The headless Service's name resolved through the stand-in cluster DNS, in
    /// nginx 1.28: the in-cluster form.
    Resolve,
}

/// Addresses the stand-in cluster DNS hands out for the two php-fpm pods.
const POD_A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const POD_B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// nginx with the rendered configuration in front of two php-fpm pools. Fields drop
/// in order: nginx stops first, the directory goes last.
struct PhpSite {
    nginx: Nginx,
    pools: Vec<PhpFpm>,
    /// Held, not read: the resolve form's DNS, stopped after nginx.
    _dns: Option<Dns>,
    root: PathBuf,
    dir: TempDir,
}

impl PhpSite {
    /// Starts the site for a stack with `spec` lines (indented two spaces) added.
    fn start(name: &str, form: Form, spec: &str) -> PhpSite {
        let dir = TempDir::new(name);
        let root = dir.0.join("www");
        write_app(&root);
        let port = free_port();
        let stack = stack_from_yaml(&format!(
            "
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {{name: toon, namespace: webtoon}}
spec:
  hosts: [{HOST}]
  was: {{image: registry.example/toon/php:1.0.0, protocol: fastcgi, port: {port}, fastcgiRoot: {}}}
{spec}
",
            root.display()
        ));
        let copy = dir.0.join("app");
        run_copy(&rendered_copy_command(&stack), &root, &copy, None);
        let images = root.join("images");
        std::fs::create_dir_all(&images).expect("images directory");
        if stack.spec.tls.is_some() {
            self_signed_cert(&dir.0, &[HOST]);
        }
        let ports = Ports::free();
        let (ips, upstreams) = match form {
            Form::Static => (vec![Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST], None),
            Form::Resolve => (vec![POD_A, POD_B], Some(())),
        };
        let pools: Vec<PhpFpm> = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                let addr = match form {
                    Form::Static => SocketAddr::from((*ip, free_port())),
                    Form::Resolve => SocketAddr::from((*ip, port)),
                };
                PhpFpm::start(&dir.0, &format!("pool-{}", i + 1), addr)
            })
            .collect();
        let base = NginxLayout {
            images_root: images.display().to_string(),
            app_root: copy.display().to_string(),
            ..local_layout(&dir.0, &ports, &[])
        };
        let (layout, dns, binary) = match upstreams {
            None => {
                let addresses = pools.iter().map(|p| p.addr.to_string()).collect();
                let layout = NginxLayout {
                    upstream: Upstream::Static(addresses),
                    ..base
                };
                (layout, None, common::nginx::nginx_binary())
            }
            Some(()) => {
                let Upstream::Resolve { host, port, .. } = NginxLayout::in_cluster(&stack).upstream
                else {
                    panic!("the in-cluster layout resolves the headless Service");
                };
                let dns = Dns::start(&host, &ips);
                let layout = NginxLayout {
                    upstream: Upstream::Resolve {
                        host,
                        port,
                        resolver: dns.addr.to_string(),
                    },
                    http2_directive: true,
                    ..base
                };
                (layout, Some(dns), resolving_nginx_binary())
            }
        };
        let conf = nginx_conf(&stack, &layout);
        let nginx = Nginx::start_binary(&binary, &dir.0, &conf, ports);
        PhpSite {
            nginx,
            pools,
            _dns: dns,
            root,
            dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.nginx.http())
    }

    /// A request over plain HTTP with extra curl `args`.
    fn get(&self, path: &str, args: &[&str]) -> Response {
        let url = self.url(path);
        let mut all = vec!["-H", "Host: php.example", "--path-as-is"];
        all.extend_from_slice(args);
        all.push(&url);
        curl(&all)
    }

    /// A request over HTTPS, trusting the test certificate.
    fn get_tls(&self, path: &str, args: &[&str]) -> Response {
        let resolve = format!("{HOST}:{}:127.0.0.1", self.nginx.ports.https);
        let cacert = self.dir.0.join("tls.crt").display().to_string();
        let url = format!("https://{HOST}:{}{path}", self.nginx.ports.https);
        let mut all = vec![
            "--resolve",
            &resolve,
            "--cacert",
            &cacert,
            "--path-as-is",
            "-H",
            "Host: php.example",
        ];
        all.extend_from_slice(args);
        all.push(&url);
        curl(&all)
    }

    fn images(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Requests every pool has answered.
    fn php_requests(&self) -> usize {
        self.pools.iter().map(PhpFpm::requests).sum()
    }

    /// Every pool's access log lines.
    fn php_log(&self) -> Vec<String> {
        self.pools.iter().flat_map(PhpFpm::access_lines).collect()
    }
}

/// The `key=value` line of a report.
fn seen(response: &Response, key: &str) -> String {
    response
        .text()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
        .unwrap_or_default()
}

fn pages_answer_as_users_expect(form: Form) {
    let site = PhpSite::start(
        &format!("php-pages-{form:?}"),
        form,
        "  tls: {secretName: php-tls}\n  proxy: {trustedProxyCIDRs: [127.0.0.3/32]}",
    );
    let root = site.root.display().to_string();
    let client = ["--interface", "127.0.0.2"];
    let mut table = Vec::new();

    // (request, app, SCRIPT_NAME, PATH_INFO, QUERY_STRING, status)
    for (path, app, script, path_info, query, status) in [
        ("/", "front-controller", "/index.php", "", "", 200),
        ("/episodes/3", "front-controller", "/index.php", "", "", 200),
        (
            "/episodes/3?page=2",
            "front-controller",
            "/index.php",
            "",
            "page=2",
            200,
        ),
        ("/index.php", "front-controller", "/index.php", "", "", 200),
        (
            "/index.php/episodes/3",
            "front-controller",
            "/index.php",
            "/episodes/3",
            "",
            200,
        ),
        ("/hello.php", "hello", "/hello.php", "", "", 200),
        (
            "/hello.php/x/y?z=1",
            "hello",
            "/hello.php",
            "/x/y",
            "z=1",
            200,
        ),
        ("/episodes/latest", "no-route", "/index.php", "", "", 404),
        ("/composer.json", "no-route", "/index.php", "", "", 404),
    ] {
        let r = site.get_tls(path, &client);
        table.push(format!("{path} -> {} {}", r.status, seen(&r, "app")));
        assert_eq!(r.status, status, "{path}: {r:?}");
        assert_eq!(seen(&r, "app"), app, "{path}: {r:?}");
        assert_eq!(seen(&r, "SCRIPT_NAME"), script, "{path}");
        assert_eq!(
            seen(&r, "SCRIPT_FILENAME"),
            format!("{root}{script}"),
            "{path}"
        );
        assert_eq!(seen(&r, "PATH_INFO"), path_info, "{path}");
        assert_eq!(
            seen(&r, "REQUEST_URI"),
            path,
            "{path}: the original request"
        );
        assert_eq!(seen(&r, "QUERY_STRING"), query, "{path}");
        assert_eq!(
            seen(&r, "DOCUMENT_ROOT"),
            root,
            "{path}: php-fpm's, not nginx's copy"
        );
        assert_eq!(seen(&r, "REMOTE_ADDR"), "127.0.0.2", "{path}: the client");
        assert_eq!(seen(&r, "HTTPS"), "on", "{path}");
        assert_eq!(
            seen(&r, "SERVER_PORT"),
            "443",
            "{path}: the port clients use"
        );
        assert_eq!(seen(&r, "HTTP_HOST"), HOST, "{path}");
        assert_eq!(seen(&r, "marker"), EXECUTED, "{path}: PHP ran");
        assert!(r.header("x-powered-by").is_none(), "{path}: {r:?}");
        assert!(r.header("strict-transport-security").is_some(), "{path}");
        assert!(!r.text().contains(SOURCE), "{path}");
    }

    // The application's own static files come from nginx's copy, never from PHP.
    let before = site.php_requests();
    for (path, file, content_type) in [
        ("/css/app.css", "css/app.css", "text/css"),
        ("/js/app.js", "js/app.js", "application/javascript"),
        ("/fonts/webtoon.woff2", "fonts/webtoon.woff2", "font/woff2"),
        ("/robots.txt", "robots.txt", "text/plain"),
    ] {
        let r = site.get_tls(path, &client);
        table.push(format!("{path} -> {} {} bytes", r.status, r.body.len()));
        assert_eq!(r.status, 200, "{path}: {r:?}");
        let bytes = std::fs::read(site.root.join(file)).expect("static file");
        assert_eq!(r.body, bytes, "{path}: the file's bytes");
        let served_type = r.header("content-type").unwrap_or_default();
        assert!(
            served_type.starts_with(content_type) || file.ends_with("woff2"),
            "{path}: {served_type}"
        );
        assert!(r.header("last-modified").is_some(), "{path}");
    }
    std::fs::create_dir_all(site.images().join("ep1")).expect("episode");
    let picture: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(site.images().join("ep1/001.jpg"), &picture).expect("image");
    let r = site.get_tls("/images/ep1/001.jpg", &client);
    table.push(format!(
        "/images/ep1/001.jpg -> {} {} bytes",
        r.status,
        r.body.len()
    ));
    assert_eq!((r.status, &r.body), (200, &picture));
    assert_eq!(
        site.php_requests(),
        before,
        "static files never reach php-fpm"
    );

    // Behind a trusted proxy, the client it names; a forged header from anyone
    // else changes nothing.
    let r = site.get_tls(
        "/episodes/1",
        &[
            "--interface",
            "127.0.0.3",
            "-H",
            "X-Forwarded-For: 203.0.113.7",
        ],
    );
    assert_eq!(seen(&r, "REMOTE_ADDR"), "203.0.113.7", "{r:?}");
    let r = site.get_tls(
        "/episodes/1",
        &[
            "--interface",
            "127.0.0.2",
            "-H",
            "X-Forwarded-For: 203.0.113.7",
        ],
    );
    assert_eq!(seen(&r, "REMOTE_ADDR"), "127.0.0.2", "{r:?}");
    // Plain HTTP only redirects.
    let r = site.get("/episodes/3", &[]);
    assert_eq!(r.status, 308, "{r:?}");

    assert!(
        site.pools.iter().all(|p| p.requests() > 0),
        "both pools served: {:?}",
        site.pools.iter().map(PhpFpm::requests).collect::<Vec<_>>()
    );
    eprintln!(
        "{form:?} form, as a user sees it:\n  {}",
        table.join("\n  ")
    );
}

#[test]
fn php_pages_static_files_and_server_variables_answer_as_users_expect() {
    pages_answer_as_users_expect(Form::Static);
}

#[test]
fn php_pages_answer_as_users_expect_with_the_in_cluster_resolve_upstream() {
    pages_answer_as_users_expect(Form::Resolve);
}

fn nothing_uploaded_ever_runs(form: Form) {
    let site = PhpSite::start(&format!("php-uploads-{form:?}"), form, "");
    let images = site.images();
    for name in [
        "evil.jpg",
        "evil.php",
        "evil.phtml",
        "evil.php5",
        "EVIL.PHP",
        "evil.PhP",
        "evil.jpg.php",
        "evil.php.jpg",
        "x.jpg",
    ] {
        std::fs::write(images.join(name), UPLOADED_PHP).expect("uploaded file");
    }
    std::fs::create_dir_all(images.join("dir.php")).expect("directory named .php");
    std::fs::write(images.join("dir.php/index.php"), UPLOADED_PHP).expect("uploaded file");
    // Scripts written into the document root after the image was built: the
    // application's own upload directory, and the root itself.
    std::fs::create_dir_all(site.root.join("uploads")).expect("uploads");
    std::fs::write(site.root.join("uploads/shell.php"), UPLOADED_PHP).expect("upload");
    std::fs::write(site.root.join("shell.php"), UPLOADED_PHP).expect("upload");

    // Checked first: the site runs PHP at all.
    let r = site.get("/episodes/1", &[]);
    assert_eq!(
        (r.status, seen(&r, "marker")),
        (200, EXECUTED.to_string()),
        "{r:?}"
    );
    let before = site.php_log();

    let mut outcomes = Vec::new();
    for (path, method) in [
        ("/images/evil.jpg", "GET"),
        ("/images/evil.php", "GET"),
        ("/images/evil.phtml", "GET"),
        ("/images/evil.php5", "GET"),
        ("/images/EVIL.PHP", "GET"),
        ("/images/evil.PhP", "GET"),
        ("/images/evil.jpg.php", "GET"),
        ("/images/evil.php.jpg", "GET"),
        ("/images/x.jpg/y.php", "GET"),
        ("/images/x.jpg/.php", "GET"),
        ("/images/x.jpg%00.php", "GET"),
        ("/images/x.jpg%2500.php", "GET"),
        ("/images/evil.php/x", "GET"),
        ("/images/evil.php?x=1", "GET"),
        ("/images/dir.php/", "GET"),
        ("/images/dir.php/index.php", "GET"),
        ("/images/evil.php", "POST"),
        ("/images", "GET"),
        ("/IMAGES/evil.php", "GET"),
        ("/Images/evil.jpg", "GET"),
        ("/images/../images/evil.php", "GET"),
        ("/css/../images/evil.php", "GET"),
        ("//images/evil.php", "GET"),
        ("/images%2fevil.php", "GET"),
        ("/%69mages/evil.php", "GET"),
        ("/images/./evil.php", "GET"),
        ("/uploads/shell.php", "GET"),
        ("/uploads/shell.php/x.jpg", "GET"),
        ("/shell.php", "GET"),
        ("/shell.php", "POST"),
    ] {
        let mut args = vec!["-X", method];
        if method == "POST" {
            args.extend(["--data-binary", "x=1"]);
        }
        let r = site.get(path, &args);
        outcomes.push(format!("{method} {path} -> {}", r.status));
        assert!(
            !r.text().contains(PWNED),
            "{method} {path} ran the upload: {r:?}"
        );
        let bytes = r.body.as_slice() == UPLOADED_PHP;
        assert!(
            (r.status == 200 && bytes) || matches!(r.status, 400 | 403 | 404 | 405),
            "{method} {path}: the bytes or a refusal, not {r:?}"
        );
    }
    let reached: Vec<String> = site
        .php_log()
        .into_iter()
        .filter(|l| !before.contains(l))
        .collect();
    assert!(
        reached.is_empty(),
        "requests that reached php-fpm: {reached:?}"
    );
    let images_dir = images.display().to_string();
    assert!(
        site.php_log()
            .iter()
            .all(|l| !l.contains(&images_dir) && !l.contains("shell.php")),
        "php-fpm never opened an upload: {:?}",
        site.php_log()
    );
    eprintln!("{form:?} form, uploads:\n  {}", outcomes.join("\n  "));
}

#[test]
fn no_uploaded_file_ever_runs_whatever_its_name() {
    nothing_uploaded_ever_runs(Form::Static);
}

#[test]
fn no_uploaded_file_ever_runs_with_the_in_cluster_resolve_upstream() {
    nothing_uploaded_ever_runs(Form::Resolve);
}

#[test]
fn php_sources_secrets_dependencies_and_backups_are_never_served() {
    let site = PhpSite::start("php-sources", Form::Static, "");
    let before = site.php_requests();
    let mut outcomes = Vec::new();
    for (path, method) in [
        ("/.env", "GET"),
        ("/.user.ini", "GET"),
        ("/.git/config", "GET"),
        ("/css/../.env", "GET"),
        ("/composer.json", "GET"),
        ("/composer.lock", "GET"),
        ("/config.ini", "GET"),
        ("/lib/report.inc", "GET"),
        ("/index.php~", "GET"),
        ("/index.php.bak", "GET"),
        ("/config.php.bak", "GET"),
        ("/info.phtml", "GET"),
        ("/old.php5", "GET"),
        ("/INFO.PHP", "GET"),
        ("/index.PHP", "GET"),
        ("/tool.phar", "GET"),
        ("/vendor/autoload.php", "GET"),
        ("/node_modules/x/index.php", "GET"),
        (
            "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
            "POST",
        ),
    ] {
        let mut args = vec!["-X", method];
        if method == "POST" {
            args.extend(["--data-binary", "<?php echo 'EXEC' . 'UTED-' . (6 * 7);"]);
        }
        let r = site.get(path, &args);
        outcomes.push(format!(
            "{method} {path} -> {} {}",
            r.status,
            seen(&r, "app")
        ));
        let text = r.text();
        assert!(
            !text.contains(SOURCE) && !text.contains(SECRET),
            "{path} was served: {r:?}"
        );
        assert!(matches!(r.status, 403 | 404), "{path}: {r:?}");
        // Only the front controller may answer, with the application's 404.
        assert!(
            seen(&r, "app").is_empty() || seen(&r, "app") == "no-route",
            "{path}: {r:?}"
        );
        assert!(
            !text.contains(EXECUTED) || seen(&r, "app") == "no-route",
            "{path} ran: {r:?}"
        );
    }
    let answered_by_php = site.php_requests() - before;
    eprintln!(
        "sources and secrets ({answered_by_php} answered by the front controller's 404):\n  {}",
        outcomes.join("\n  ")
    );
    // nginx's copy holds no PHP source, secret or dependency at all.
    let copy = site.dir.0.join("app");
    assert_eq!(
        std::fs::read(copy.join("index.php")).expect("placeholder"),
        b""
    );
    for absent in [
        ".env",
        ".user.ini",
        ".git",
        "composer.json",
        "vendor",
        "node_modules",
        "lib/report.inc",
        "index.php~",
        "info.phtml",
        "INFO.PHP",
        "config.ini",
        "tool.phar",
    ] {
        assert!(!copy.join(absent).exists(), "{absent} was copied");
    }
    assert_eq!(
        std::fs::read(copy.join("css/app.css")).expect("css"),
        std::fs::read(site.root.join("css/app.css")).expect("css")
    );
}

#[test]
fn the_admin_allow_list_and_the_rate_limit_hold_for_php_paths() {
    let site = PhpSite::start(
        "php-admin",
        Form::Static,
        "  proxy: {admin: {paths: [/admin], allowCIDRs: [127.0.0.1/32]}, rateLimit: {enabled: false}}",
    );
    let outside = ["--interface", "127.0.0.2"];
    let inside = ["--interface", "127.0.0.1"];
    let admin_paths = [
        "/admin",
        "/admin/",
        "/admin/index.php",
        "/admin/users",
        "/admin/users?id=1",
        "/index.php/admin",
        "/index.php/admin/users",
        "/hello.php/admin/x",
    ];
    let before = site.php_requests();
    for path in admin_paths {
        let r = site.get(path, &outside);
        assert_eq!(r.status, 403, "{path} from outside: {r:?}");
        let r = site.get(
            path,
            &[outside[0], outside[1], "-H", "X-Forwarded-For: 127.0.0.1"],
        );
        assert_eq!(r.status, 403, "{path} with a forged X-Forwarded-For: {r:?}");
    }
    assert_eq!(
        site.php_requests(),
        before,
        "refused requests never reach php-fpm"
    );
    // A directory without its slash is redirected to it, with a relative location
    // that keeps the client's own host and port.
    let r = site.get("/admin", &inside);
    assert_eq!(
        (r.status, r.header("location")),
        (301, Some("/admin/")),
        "{r:?}"
    );
    for (path, app) in [
        ("/admin/", "admin-script"),
        ("/admin/index.php", "admin-script"),
        ("/admin/users", "front-controller"),
        ("/index.php/admin/users", "front-controller"),
    ] {
        let r = site.get(path, &inside);
        assert_eq!(
            (r.status, seen(&r, "app").as_str()),
            (200, app),
            "{path}: {r:?}"
        );
        assert_eq!(seen(&r, "REMOTE_ADDR"), "127.0.0.1");
    }
    let r = site.get("/administrator", &outside);
    assert_eq!(
        (r.status, seen(&r, "app").as_str()),
        (404, "no-route"),
        "another page: {r:?}"
    );
    drop(site);

    let site = PhpSite::start(
        "php-rate-limit",
        Form::Static,
        "  proxy: {rateLimit: {requestsPerSecond: 1, burst: 3}}",
    );
    let started = Instant::now();
    let statuses = burst(&site, "127.0.0.1", "/episodes/1", 12);
    let refills = started.elapsed().as_secs() as usize + 1;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(
        ok + statuses.iter().filter(|s| **s == 429).count(),
        12,
        "{statuses:?}"
    );
    assert!((4..=3 + refills).contains(&ok), "{statuses:?}");
    assert_eq!(*statuses.last().expect("statuses"), 429, "{statuses:?}");
    assert_eq!(site.php_requests(), ok, "429s never reach php-fpm");
    // The same address is limited on a script named directly, and a fresh one is not.
    let direct = burst(&site, "127.0.0.1", "/index.php/episodes/1", 3);
    assert!(direct.contains(&429), "{direct:?}");
    assert_eq!(burst(&site, "127.0.0.2", "/hello.php", 3), [200, 200, 200]);
    // The application's static files are not limited, like images.
    let assets = burst(&site, "127.0.0.1", "/css/app.css", 10);
    assert!(assets.iter().all(|s| *s == 200), "{assets:?}");
}

/// Sends `count` GETs for `path` over one connection from `from`; returns the statuses.
fn burst(site: &PhpSite, from: &str, path: &str, count: usize) -> Vec<u16> {
    let url = site.url(path);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--interface", from])
        .args(["-H", "Host: php.example", "-w", "%{http_code}\\n"])
        .args((0..count).flat_map(|_| ["-o", "/dev/null", url.as_str()]))
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap_or(0))
        .collect()
}

#[test]
fn uploads_up_to_client_max_body_size_reach_php_and_one_byte_more_gets_413() {
    let site = PhpSite::start(
        "php-body",
        Form::Static,
        "  proxy: {clientMaxBodySize: 8m, rateLimit: {enabled: false}}",
    );
    let body: Vec<u8> = (0..=BODY_LIMIT).map(|i| (i * 31 % 253) as u8).collect();
    let exact = site.dir.0.join("exact.bin");
    let over = site.dir.0.join("over.bin");
    std::fs::write(&exact, &body[..BODY_LIMIT]).expect("body");
    std::fs::write(&over, &body).expect("body");
    let post = |file: &Path| {
        let data = format!("@{}", file.display());
        site.get(
            "/upload",
            &[
                "-H",
                "Expect:",
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &data,
            ],
        )
    };
    let r = post(&exact);
    assert_eq!(r.status, 200, "{}", r.stderr);
    assert_eq!(seen(&r, "body_bytes"), BODY_LIMIT.to_string(), "{r:?}");
    assert_eq!(seen(&r, "body_sha256"), sha256(&body[..BODY_LIMIT]));

    let before = site.php_requests();
    let r = post(&over);
    assert_eq!(r.status, 413, "one byte over clientMaxBodySize: {r:?}");
    assert_eq!(
        site.php_requests(),
        before,
        "the refused body never reached php-fpm"
    );

    // A form upload of a file within PHP's own upload_max_filesize (2M).
    let picture = site.dir.0.join("picture.jpg");
    std::fs::write(&picture, &body[..1 << 20]).expect("picture");
    let form = format!("picture=@{}", picture.display());
    let r = site.get("/upload", &["-H", "Expect:", "-F", &form]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        seen(&r, "file_picture"),
        format!("{} error=0 sha256={}", 1 << 20, sha256(&body[..1 << 20]))
    );
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn killing_one_pool_under_load_fails_no_request(form: Form) {
    let mut site = PhpSite::start(
        &format!("php-failover-{form:?}"),
        form,
        "  proxy: {rateLimit: {enabled: false}}",
    );
    // The resolve form learns its upstream's addresses from DNS after it starts: load
    // begins once both pools have answered through it, as a pod starts serving only
    // once it is ready.
    let warm_until = Instant::now() + Duration::from_secs(15);
    while site.pools.iter().any(|p| p.requests() == 0) && Instant::now() < warm_until {
        site.get("/episodes/1", &[]);
        std::thread::sleep(Duration::from_millis(20));
    }
    let load = wrk_command(&site.url("/episodes/1"), HOST, 8, 10)
        .spawn()
        .expect("wrk runs (install wrk)");
    let load = Guard(load);
    let started = Instant::now();
    for pool in &site.pools {
        assert!(
            wait_for_requests(pool, Duration::from_secs(5)),
            "{} got no traffic",
            pool.name
        );
    }
    while started.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed_after = site.pools[0].requests();
    site.pools[0].kill();
    let survivor_before = site.pools[1].requests();
    let report = wait_report(load);
    eprintln!(
        "{form:?} form, kill one php-fpm pool under load: {} requests in 10 s ({:.0}/s, p99 {:.1} ms), {} non-2xx/3xx, {} socket errors; pool-1 served {killed_after} before it was killed, pool-2 {} in all",
        report.requests,
        report.requests_per_sec,
        report.p99_ms,
        report.non_2xx_3xx,
        report.socket_errors,
        site.pools[1].requests()
    );
    if report.non_2xx_3xx + report.socket_errors > 0 {
        let failed: Vec<String> = site
            .nginx
            .log("access.log")
            .lines()
            .filter(|l| !l.contains("\" 200 "))
            .take(10)
            .map(str::to_string)
            .collect();
        eprintln!(
            "failed requests:\n{}\nnginx errors:\n{}",
            failed.join("\n"),
            site.nginx
                .log("error.log")
                .lines()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    report.assert_no_request_failed();
    assert!(
        site.pools[1].requests() > survivor_before + 100,
        "the survivor carried the load after the kill"
    );
    let errors = site.nginx.log("error.log");
    assert!(
        errors.contains(&format!("fastcgi://{}", site.pools[0].addr)),
        "nginx met the dead pool and hid it: {errors}"
    );
}

/// Polls until `pool` has answered a request, or the deadline passes.
fn wait_for_requests(pool: &PhpFpm, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if pool.requests() > 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn killing_one_php_fpm_pool_under_load_fails_no_request() {
    killing_one_pool_under_load_fails_no_request(Form::Static);
}

#[test]
fn killing_one_php_fpm_pod_under_load_fails_no_request_with_the_resolve_upstream() {
    killing_one_pool_under_load_fails_no_request(Form::Resolve);
}

/// Every file and directory under `dir`: relative path, size and, for a static
/// file, modification time.
fn tree(dir: &Path) -> Vec<(String, u64, Option<std::time::SystemTime>)> {
    let mut entries = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).expect("readable directory") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            let name = path
                .strip_prefix(dir)
                .expect("inside")
                .display()
                .to_string();
            if meta.is_dir() {
                pending.push(path);
                entries.push((format!("{name}/"), 0, None));
            } else {
                // A script's placeholder is made at copy time; static files keep theirs.
                let time = (!name.ends_with(".php"))
                    .then(|| meta.modified().ok())
                    .flatten();
                entries.push((name, meta.len(), time));
            }
        }
    }
    entries.sort();
    entries
}

/// Alpine-based php-fpm images have busybox's shell and tools rather than Debian's:
/// the rendered copy makes the same copy with either.
#[test]
fn the_copy_is_the_same_with_busybox_tools_as_in_alpine_images() {
    let dir = TempDir::new("php-copy-busybox");
    let root = dir.0.join("www");
    write_app(&root);
    // Links could lead out of the document root: never followed, never copied.
    std::os::unix::fs::symlink("/etc/passwd", root.join("passwd")).expect("file link");
    std::os::unix::fs::symlink("/etc", root.join("etc")).expect("directory link");
    std::fs::write(root.join("css/with space -and-dash.css"), b"a {}").expect("odd name");
    let stack = stack_from_yaml(&format!(
        "
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {{name: toon, namespace: webtoon}}
spec:
  hosts: [{HOST}]
  was: {{image: registry.example/toon/php:1.0.0, protocol: fastcgi, port: 9000, fastcgiRoot: {}}}
",
        root.display()
    ));
    let command = rendered_copy_command(&stack);

    let debian = dir.0.join("debian");
    run_copy(&command, &root, &debian, None);

    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox is missing: tests/run.sh installs Debian's busybox");
    let bin = dir.0.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for tool in ["sh", "find", "cp", "mkdir", "touch", "wc"] {
        std::os::unix::fs::symlink(busybox, bin.join(tool)).expect("tool link");
    }
    let mut in_busybox = command.clone();
    in_busybox[0] = bin.join("sh").display().to_string();
    let alpine = dir.0.join("alpine");
    run_copy(&in_busybox, &root, &alpine, Some(&bin));

    let copied = tree(&debian);
    assert_eq!(tree(&alpine), copied);
    let names: Vec<&str> = copied.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "admin/",
            "admin/index.php",
            "css/",
            "css/app.css",
            "css/with space -and-dash.css",
            "fonts/",
            "fonts/webtoon.woff2",
            "hello.php",
            "index.php",
            "js/",
            "js/app.js",
            "lib/",
            "robots.txt",
        ]
    );
    let source_time = std::fs::metadata(root.join("css/app.css"))
        .and_then(|m| m.modified())
        .ok();
    let css = copied
        .iter()
        .find(|(n, _, _)| n == "css/app.css")
        .expect("css");
    assert_eq!(css.2, source_time, "static files keep their time");
    let scripts: Vec<u64> = copied
        .iter()
        .filter(|(n, _, _)| n.ends_with(".php"))
        .map(|(_, len, _)| *len)
        .collect();
    assert_eq!(scripts, [0, 0, 0], "scripts are empty placeholders");
}
