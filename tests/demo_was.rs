//! The demo WAS (`examples/demo-was`) end to end, against a real MariaDB and a real
//! Redis started with the rendered configuration and scripts, given exactly the
//! environment the operator renders into WAS pods (nothing else), with only the
//! addresses, ports and image directory pointed at the test's own. Its migration,
//! `demo-was migrate`, runs the same way, with the environment and command of the
//! rendered migration Job.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::http_get::{Reply, get};
use common::process::free_port;
use common::servers::{MariaDb, ROOT_PASSWORD, Redis, redis_local_layout};
use common::{TempDir, config_file, resolved_env, stack_from_yaml};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webtoon_operator::render::release::MigrationJobs;
use webtoon_operator::render::was::migration_job_name;
use webtoon_operator::render::{Children, Observed, render};

const STACK: &str = r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: demotoon, namespace: webtoon}
spec:
  hosts: [demotoon.example]
  was:
    image: registry.example/demotoon/was:1.0.0
    port: 8080
    migration:
      command: [demo-was, migrate]
      # Short, so that the runs against no database fail quickly.
      env: [{name: DEMO_WAS_MIGRATE_TIMEOUT_SECONDS, value: "4"}]
"#;
/// The image the rendered migration Job runs in.
const NEXT_IMAGE: &str = "registry.example/demotoon/was:1.1.0";
const APP_PASSWORD: &str = "app-pass-0123456789";
const CACHE_PASSWORD: &str = "cache-pass-0123456789";
const DEADLINE: Duration = Duration::from_secs(60);

/// The example binary, built by `cargo build --example demo-was` (tests/run.sh does).
fn demo_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let debug = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target profile directory");
    let binary = debug.join("examples/demo-was");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --example demo-was` first (tests/run.sh does)",
        binary.display()
    );
    binary
}

/// The WAS container's environment as rendered, with Secret references resolved
/// and the addresses pointed at the local servers.
fn was_env(children: &Children, overrides: &[(&str, String)]) -> Vec<(String, String)> {
    let pod = children
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some("demotoon-was"))
        .and_then(|d| d.spec.as_ref()?.template.spec.clone())
        .expect("WAS pod");
    let secrets = [
        ("database-password", APP_PASSWORD),
        ("cache-password", CACHE_PASSWORD),
    ];
    resolved_env(
        pod.containers[0].env.as_deref().unwrap_or_default(),
        &secrets,
        overrides,
    )
}

struct Stack {
    db: MariaDb,
    _redis: Redis,
    images: TempDir,
    was: Child,
    address: SocketAddr,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.was.kill();
        let _ = self.was.wait();
    }
}

async fn until_healthy(address: SocketAddr) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if get(address, "/healthz")
            .await
            .is_ok_and(|r| r.status == 200)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the demo WAS never turned healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// MariaDB with the rendered configuration, initialised by the rendered init script:
/// the application's database and user exist, its table does not yet.
fn database(children: &Children, name: &str) -> MariaDb {
    let cnf = config_file(children, "demotoon-database-config", "webtoon.cnf");
    let db = MariaDb::start(name, &cnf);
    let init = db.dir.0.join("init.sh");
    std::fs::write(
        &init,
        config_file(children, "demotoon-database-init", "10-webtoon-init.sh"),
    )
    .expect("write init");
    let out = db.run_script(
        &init,
        &[
            ("MARIADB_ROOT_PASSWORD", ROOT_PASSWORD.to_string()),
            ("WEBTOON_DB_PASSWORD", APP_PASSWORD.to_string()),
            ("WEBTOON_DB_BACKUP_PASSWORD", "backup-pass".to_string()),
        ],
    );
    assert!(out.status.success(), "init: {out:?}");
    db
}

async fn start() -> Stack {
    let children = render(&stack_from_yaml(STACK), &Observed::default());
    let db = database(&children, "demo-was-mariadb");

    let redis_name = "demo-was-redis";
    let redis_dir = common::root()
        .join("target/test-tmp")
        .join(format!("{redis_name}-{}", std::process::id()));
    let (conf, script) = redis_local_layout(
        &config_file(&children, "demotoon-cache-config", "redis.conf"),
        &config_file(&children, "demotoon-cache-config", "start.sh"),
        &redis_dir,
        free_port(),
    );
    let redis = Redis::start(redis_name, &conf, &script, CACHE_PASSWORD);

    let images = TempDir::new("demo-was-images");
    std::fs::create_dir_all(images.0.join("ep1")).expect("image dir");
    std::fs::write(images.0.join("ep1/01.png"), "panel one of episode one").expect("image");
    let port = free_port();
    let env = was_env(
        &children,
        &[
            ("WEBTOON_DB_HOST", "127.0.0.1".to_string()),
            ("WEBTOON_DB_PORT", db.port.to_string()),
            ("WEBTOON_REDIS_HOST", "127.0.0.1".to_string()),
            ("WEBTOON_REDIS_PORT", redis.port.to_string()),
            ("WEBTOON_IMAGES_DIR", images.0.display().to_string()),
            ("WEBTOON_PORT", port.to_string()),
        ],
    );
    let was = Command::new(demo_binary())
        .env_clear()
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("demo WAS starts");
    let address: SocketAddr = ([127, 0, 0, 1], port).into();
    until_healthy(address).await;
    Stack {
        db,
        _redis: redis,
        images,
        was,
        address,
    }
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// One WebSocket text message sent and read back, over a hand-made handshake.
async fn websocket_echo(address: SocketAddr, text: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream
        .write_all(
            format!(
                "GET /ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("handshake");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.expect("handshake reply"));
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    // A client frame: FIN + text, masked, with a short payload.
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | u8::try_from(text.len()).expect("short")];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).await.expect("send frame");
    let first = stream.read_u8().await.expect("frame");
    assert_eq!(first, 0x81, "an unfragmented text frame");
    let len = usize::from(stream.read_u8().await.expect("length"));
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).await.expect("payload");
    String::from_utf8(payload).expect("text")
}

#[tokio::test(flavor = "multi_thread")]
async fn episodes_are_cached_images_served_websocket_echoes() {
    let stack = start().await;
    let insert = stack.db.as_user(
        "webtoon",
        APP_PASSWORD,
        "INSERT INTO webtoon.episodes (title, image) VALUES ('첫 화', 'ep1/01.png'), ('Episode 2', 'ep2/01.png')",
    );
    assert!(insert.status.success(), "{insert:?}");

    let first = get(stack.address, "/episodes").await.expect("episodes");
    assert_eq!(first.status, 200);
    assert_eq!(header(&first, "x-cache"), Some("miss"));
    assert!(
        first.body.contains("첫 화") && first.body.contains("Episode 2"),
        "{}",
        first.body
    );
    let second = get(stack.address, "/episodes").await.expect("episodes");
    assert_eq!(header(&second, "x-cache"), Some("hit"));
    assert_eq!(second.body, first.body);

    let image = get(stack.address, "/images/ep1/01.png")
        .await
        .expect("image");
    assert_eq!(image.status, 200);
    assert_eq!(header(&image, "content-type"), Some("image/png"));
    assert_eq!(
        image.body,
        std::fs::read_to_string(stack.images.0.join("ep1/01.png")).expect("image")
    );
    for escape in [
        "/images/../Cargo.toml",
        "/images/ep1/../../x",
        "/images/.hidden",
    ] {
        let reply = get(stack.address, escape).await.expect("reply");
        assert_eq!(reply.status, 404, "{escape}");
    }

    assert_eq!(
        websocket_echo(stack.address, "hello panel").await,
        "hello panel"
    );
    let admin = get(stack.address, "/admin").await.expect("admin");
    assert_eq!(admin.status, 200);
    assert!(admin.body.contains("\"episodes\":2"), "{}", admin.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_every_request_in_flight_then_exits() {
    let mut stack = start().await;
    let address = stack.address;
    let requests: Vec<_> = (0..10)
        .map(|_| tokio::spawn(async move { get(address, "/work?ms=1500").await }))
        .collect();
    // Wait until every request has reached the server (the admin request is one more).
    let deadline = Instant::now() + DEADLINE;
    loop {
        let admin = get(address, "/admin").await.expect("admin");
        if admin.body.contains("\"inFlight\":11") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "requests never arrived: {}",
            admin.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let term = Command::new("kill")
        .arg("-TERM")
        .arg(stack.was.id().to_string())
        .status()
        .expect("kill");
    assert!(term.success());
    for request in requests {
        let reply = request.await.expect("task").expect("reply");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "done");
    }
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = stack.was.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the WAS did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "a clean exit: {status}");
    assert!(
        get(address, "/healthz").await.is_err(),
        "no new connection after the exit"
    );
}

/// The migration Job the operator renders for `NEXT_IMAGE`: its command and its
/// environment, with Secret references resolved and `overrides` applied.
fn migration_job(overrides: &[(&str, String)]) -> (Vec<String>, Vec<(String, String)>) {
    let stack = stack_from_yaml(STACK);
    let observed = Observed {
        migration: Some(MigrationJobs {
            image: NEXT_IMAGE.to_string(),
            backup: None,
            migrate: true,
        }),
        ..Observed::default()
    };
    let children = render(&stack, &observed);
    let name = migration_job_name(&stack, NEXT_IMAGE);
    let container = children
        .jobs
        .iter()
        .find(|j| j.metadata.name.as_deref() == Some(name.as_str()))
        .and_then(|j| j.spec.as_ref()?.template.spec.as_ref())
        .map(|pod| pod.containers[0].clone())
        .expect("the migration Job");
    let secrets = [
        ("database-password", APP_PASSWORD),
        ("cache-password", CACHE_PASSWORD),
    ];
    let env = resolved_env(
        container.env.as_deref().unwrap_or_default(),
        &secrets,
        overrides,
    );
    (container.command.expect("a command"), env)
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs the demo binary with `args` and exactly `env`; it must exit within the
/// deadline (a server would not).
fn run_demo(args: &[String], env: &[(String, String)]) -> Run {
    let started = Instant::now();
    let mut child = Command::new(demo_binary())
        .args(args)
        .env_clear()
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("demo WAS starts");
    // Its output is a few lines: the pipes do not fill up while it runs.
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("demo-was {args:?} did not exit: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    let out = child.wait_with_output().expect("output");
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took,
    }
}

#[test]
fn migrate_creates_the_schema_once_and_exits_and_fails_clearly_without_a_database() {
    let children = render(&stack_from_yaml(STACK), &Observed::default());
    let db = database(&children, "demo-was-migrate-mariadb");
    let tables = || {
        let out = db.root(
            "SELECT COUNT(*) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = 'webtoon' AND TABLE_NAME = 'episodes'",
        );
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(tables(), "0", "no table before the migration");

    // Only the database is pointed at the test's: the cache and image settings stay
    // as rendered, since a migration needs neither (the Job mounts no image volume).
    let (command, env) = migration_job(&[
        ("WEBTOON_DB_HOST", "127.0.0.1".to_string()),
        ("WEBTOON_DB_PORT", db.port.to_string()),
    ]);
    assert_eq!(command[0], "demo-was", "{command:?}");
    let args = &command[1..];
    let first = run_demo(args, &env);
    assert!(first.status.success(), "first migration: {}", first.stderr);
    assert_eq!(tables(), "1", "the migration created the table");
    let insert = db.as_user(
        "webtoon",
        APP_PASSWORD,
        "INSERT INTO webtoon.episodes (title, image) VALUES ('첫 화', 'ep1/01.png')",
    );
    assert!(insert.status.success(), "{insert:?}");

    // The operator runs one Job per image: every new image migrates again.
    let again = run_demo(args, &env);
    assert!(again.status.success(), "second migration: {}", again.stderr);
    let count = db.root("SELECT COUNT(*) FROM webtoon.episodes");
    assert_eq!(
        String::from_utf8_lossy(&count.stdout).trim(),
        "1",
        "the second migration kept the data: {count:?}"
    );

    let closed = free_port();
    for (case, overrides, address, reason) in [
        (
            "wrong password",
            [
                ("WEBTOON_DB_PORT", db.port.to_string()),
                ("WEBTOON_DB_PASSWORD", "wrong-password".to_string()),
            ],
            format!("127.0.0.1:{}", db.port),
            "Access denied",
        ),
        (
            "closed port",
            [
                ("WEBTOON_DB_PORT", closed.to_string()),
                ("WEBTOON_DB_PASSWORD", APP_PASSWORD.to_string()),
            ],
            format!("127.0.0.1:{closed}"),
            "Connection refused",
        ),
    ] {
        let mut overrides = overrides.to_vec();
        overrides.push(("WEBTOON_DB_HOST", "127.0.0.1".to_string()));
        let (_, env) = migration_job(&overrides);
        let failed = run_demo(args, &env);
        assert!(
            !failed.status.success(),
            "{case}: a failed migration exits non-zero: {}",
            failed.stdout
        );
        let stderr = failed.stderr.trim();
        assert_eq!(stderr.lines().count(), 1, "{case}: one line: {stderr}");
        assert!(
            stderr.contains(&address) && stderr.contains(reason),
            "{case}: the error names {address} and {reason:?}: {stderr}"
        );
        // DEMO_WAS_MIGRATE_TIMEOUT_SECONDS=4: retried once, then given up.
        assert!(
            failed.stdout.contains("retrying"),
            "{case}: retried: {}",
            failed.stdout
        );
        assert!(
            failed.took < Duration::from_secs(15),
            "{case}: gave up within its timeout, not after {:?}",
            failed.took
        );
    }

    let bogus = run_demo(&["bogus".to_string()], &env);
    assert!(!bogus.status.success(), "an unknown argument is refused");
    assert!(
        bogus.stderr.contains("bogus") && bogus.stderr.contains("usage: demo-was"),
        "{}",
        bogus.stderr
    );
}
