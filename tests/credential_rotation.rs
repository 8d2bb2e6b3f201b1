//! Credential rotation for real: a MariaDB and a Redis started with the rendered
//! configuration and scripts, the demo WAS behind nginx running the rendered
//! nginx.conf, and `wrk` sending requests that read Redis and MariaDB all along.
//! The controller's own decisions ([`rotation::decide`]) drive the rotation; every
//! step runs exactly what render gives the cluster: the rotation Jobs' scripts with
//! their containers' environment, the WAS with its pod environment at each
//! credentials generation, Redis restarted mid-rotation with its pod environment.
//! Secret references are resolved from the Secret the decisions write, as the
//! kubelet resolves them (an optional key may be missing, any other must be there).

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::clients::{curl, parse_wrk};
use common::nginx::{Nginx, Ports, local_layout};
use common::process::{Guard, free_port, terminate, wait_for_port};
use common::servers::{MariaDb, ROOT_PASSWORD, redis_local_layout};
use common::{TempDir, config_file, stack_from_yaml};
use k8s_openapi::api::core::v1::{Container, EnvVar};
use webtoon_operator::api::{RotationPhase, ValidatedStack};
use webtoon_operator::controller::migration::JobOutcome;
use webtoon_operator::controller::rotation::{
    self, Decision, Observation, SecretSnapshot, StepOutcome,
};
use webtoon_operator::render::credentials::{RotationJobs, secret_data};
use webtoon_operator::render::proxy::nginx_conf::nginx_conf;
use webtoon_operator::render::{Children, Observed, render};

const HOST: &str = "rottoon.example";

/// The demo stack; `request` is `spec.credentials.rotation.requestId`, absent as in
/// a stack an operator version before rotations made. No proxy cache and no rate
/// limit, so that every request of the load reaches a WAS, and `/admin` (which counts
/// rows in MariaDB) open to the load generator.
fn stack_yaml(request: Option<&str>) -> String {
    let credentials = request
        .map(|r| format!("  credentials: {{rotation: {{requestId: {r}}}}}\n"))
        .unwrap_or_default();
    format!(
        r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {{name: rottoon, namespace: webtoon}}
spec:
  hosts: [{HOST}]
  proxy:
    cache: {{enabled: false}}
    rateLimit: {{enabled: false}}
    admin: {{allowCIDRs: [127.0.0.1/32]}}
  was: {{image: registry.example/rottoon/was:1.0.0}}
{credentials}"#
    )
}

/// Passwords an operator version before rotations generated: no administrative
/// passwords, no annotations. Root's is the one the test server was given.
fn old_secret() -> SecretSnapshot {
    SecretSnapshot {
        data: BTreeMap::from([
            (
                "database-root-password".to_string(),
                ROOT_PASSWORD.to_string(),
            ),
            (
                "database-password".to_string(),
                "app-Pass'word-0123456789".to_string(),
            ),
            (
                "database-backup-password".to_string(),
                "backup-pass-0123456789".to_string(),
            ),
            (
                "cache-password".to_string(),
                "cache-pass-0123456789".to_string(),
            ),
        ]),
        annotations: BTreeMap::new(),
        uid: "secret-uid-1".to_string(),
        created: Some("2026-11-01T00:00:00Z".parse().expect("a time")),
    }
}

/// The Secret after the apply step wrote what `decision` renders.
fn written(before: &SecretSnapshot, decision: &Decision) -> SecretSnapshot {
    let credentials = decision
        .credentials
        .clone()
        .expect("the operator writes the Secret");
    SecretSnapshot {
        data: secret_data(&credentials, &decision.secret),
        annotations: decision.secret.annotations.clone(),
        ..before.clone()
    }
}

/// A container's environment as the kubelet builds it from `secret`, then `overrides`.
fn resolve(
    env: &[EnvVar],
    secret: &BTreeMap<String, String>,
    overrides: &[(&str, String)],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = env
        .iter()
        .filter_map(|e| {
            let value = match (&e.value, &e.value_from) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(from)) => {
                    let key = from.secret_key_ref.as_ref().expect("a Secret reference");
                    match (secret.get(&key.key), key.optional) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(true)) => None,
                        (None, _) => panic!("the Secret lacks {}, which {} needs", key.key, e.name),
                    }
                }
                _ => None,
            }?;
            Some((e.name.clone(), value))
        })
        .collect();
    for (name, value) in overrides {
        out.retain(|(n, _)| n != name);
        out.push((name.to_string(), value.clone()));
    }
    out.push((
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_default(),
    ));
    out
}

/// Every child as the controller renders it for the credentials `generation` and
/// the rotation Jobs `jobs`.
fn children(stack: &ValidatedStack, generation: u64, jobs: Option<RotationJobs>) -> Children {
    let mut stack = stack.clone();
    stack.credentials_generation = generation;
    render(
        &stack,
        &Observed {
            rotation: jobs,
            ..Observed::default()
        },
    )
}

fn container_of(children: &Children, kind_and_name: &str) -> Container {
    let pods = children
        .deployments
        .iter()
        .filter_map(|d| {
            Some((
                format!("Deployment/{}", d.metadata.name.clone()?),
                d.spec.as_ref()?.template.spec.clone()?,
            ))
        })
        .chain(children.stateful_sets.iter().filter_map(|s| {
            Some((
                format!("StatefulSet/{}", s.metadata.name.clone()?),
                s.spec.as_ref()?.template.spec.clone()?,
            ))
        }))
        .chain(children.jobs.iter().filter_map(|j| {
            Some((
                format!("Job/{}", j.metadata.name.clone()?),
                j.spec.as_ref()?.template.spec.clone()?,
            ))
        }));
    pods.into_iter()
        .find(|(name, _)| name.starts_with(kind_and_name))
        .map(|(_, pod)| pod.containers[0].clone())
        .unwrap_or_else(|| panic!("{kind_and_name} is rendered"))
}

/// The example binary, built by `cargo build --example demo-was` (tests/run.sh does).
fn demo_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let binary = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target profile directory")
        .join("examples/demo-was");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --example demo-was` first (tests/run.sh does)",
        binary.display()
    );
    binary
}

/// The data servers and the images directory the WAS processes share.
struct Servers {
    db: MariaDb,
    redis: Child,
    redis_port: u16,
    redis_dir: TempDir,
    images: TempDir,
}

impl Drop for Servers {
    fn drop(&mut self) {
        terminate(&mut self.redis);
    }
}

/// Starts Redis with the rendered start script and `env`, and waits until it answers.
fn start_redis(dir: &Path, env: &[(String, String)], port: u16) -> Child {
    let child = Command::new("sh")
        .arg(dir.join("start.sh"))
        .env_clear()
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the start script runs (install redis-server)");
    assert!(
        wait_for_port(([127, 0, 0, 1], port).into(), Duration::from_secs(20)),
        "redis-server listens on {port}"
    );
    child
}

fn redis_cli(port: u16, user: &str, password: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--no-auth-warning",
        ])
        .args(["--user", user])
        .env("REDISCLI_AUTH", password)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Servers {
    /// MariaDB initialised by the rendered init script, from the database pod's
    /// environment, and Redis from its pod's; both with what `secret` holds.
    fn start(name: &str, stack: &ValidatedStack, secret: &SecretSnapshot) -> Servers {
        let rendered = children(stack, 0, None);
        let db = MariaDb::start(
            &format!("{name}-mariadb"),
            &config_file(&rendered, "rottoon-database-config", "webtoon.cnf"),
        );
        run_init(&db, &rendered, secret);
        let redis_dir = TempDir::new(&format!("{name}-redis"));
        let redis_port = free_port();
        let (conf, script) = redis_local_layout(
            &config_file(&rendered, "rottoon-cache-config", "redis.conf"),
            &config_file(&rendered, "rottoon-cache-config", "start.sh"),
            &redis_dir.0,
            redis_port,
        );
        std::fs::write(redis_dir.0.join("redis.conf"), conf).expect("write redis.conf");
        std::fs::write(redis_dir.0.join("start.sh"), script).expect("write start.sh");
        let env = resolve(
            container_of(&rendered, "StatefulSet/rottoon-cache")
                .env
                .as_deref()
                .unwrap_or_default(),
            &secret.data,
            &[],
        );
        let redis = start_redis(&redis_dir.0, &env, redis_port);
        let images = TempDir::new(&format!("{name}-images"));
        Servers {
            db,
            redis,
            redis_port,
            redis_dir,
            images,
        }
    }

    /// Restarts Redis the way its pod restarts: the rendered container's environment,
    /// taken from the Secret as it is now.
    fn restart_redis(&mut self, stack: &ValidatedStack, secret: &SecretSnapshot) {
        terminate(&mut self.redis);
        let rendered = children(stack, 0, None);
        let env = resolve(
            container_of(&rendered, "StatefulSet/rottoon-cache")
                .env
                .as_deref()
                .unwrap_or_default(),
            &secret.data,
            &[],
        );
        self.redis = start_redis(&self.redis_dir.0, &env, self.redis_port);
    }

    /// Runs the rendered rotation Jobs of `jobs` as their containers run: each tier's
    /// `rotate.sh` with its command and environment. Returns how each ended, with the
    /// termination message, and how long the slower one took.
    fn run_jobs(
        &self,
        stack: &ValidatedStack,
        generation: u64,
        jobs: &RotationJobs,
        secret: &SecretSnapshot,
    ) -> (StepOutcome, Vec<String>, Duration) {
        let rendered = children(stack, generation, Some(jobs.clone()));
        let mut outcome = StepOutcome {
            jobs: Some(jobs.clone()),
            exists: true,
            ..StepOutcome::default()
        };
        let mut said = Vec::new();
        let mut slowest = Duration::ZERO;
        for (component, host_port) in [
            (
                "database-rotation",
                ("WEBTOON_DB_HOST", "WEBTOON_DB_PORT", self.db.port),
            ),
            (
                "cache-rotation",
                ("WEBTOON_REDIS_HOST", "WEBTOON_REDIS_PORT", self.redis_port),
            ),
        ] {
            let container = container_of(&rendered, &format!("Job/rottoon-{component}-"));
            let script = self.db.dir.0.join(format!("{component}.sh"));
            std::fs::write(
                &script,
                config_file(&rendered, &format!("rottoon-{component}"), "rotate.sh"),
            )
            .expect("write the script");
            let log = self.db.dir.0.join(format!("{component}.termination-log"));
            let _ = std::fs::remove_file(&log);
            let env = resolve(
                container.env.as_deref().unwrap_or_default(),
                &secret.data,
                &[
                    (host_port.0, "127.0.0.1".to_string()),
                    (host_port.1, host_port.2.to_string()),
                    ("WEBTOON_TERMINATION_LOG", log.display().to_string()),
                ],
            );
            let command = container.command.clone().expect("a command");
            let started = Instant::now();
            let out = Command::new(&command[0])
                .arg(&script)
                .args(&command[2..])
                .env_clear()
                .envs(env)
                .stdin(Stdio::null())
                .output()
                .expect("the script runs");
            slowest = slowest.max(started.elapsed());
            let message = std::fs::read_to_string(&log).unwrap_or_default();
            let result = if out.status.success() {
                JobOutcome::Succeeded
            } else {
                JobOutcome::Failed(format!(
                    "{message} ({})",
                    String::from_utf8_lossy(&out.stderr)
                ))
            };
            said.push(message);
            if component == "database-rotation" {
                outcome.database = Some(result);
            } else {
                outcome.cache = Some(result);
            }
        }
        (outcome, said, slowest)
    }
}

fn run_init(db: &MariaDb, rendered: &Children, secret: &SecretSnapshot) -> Output {
    let init = db.dir.0.join("init.sh");
    std::fs::write(
        &init,
        config_file(rendered, "rottoon-database-init", "10-webtoon-init.sh"),
    )
    .expect("write init");
    let env = resolve(
        container_of(rendered, "StatefulSet/rottoon-database")
            .env
            .as_deref()
            .unwrap_or_default(),
        &secret.data,
        &[],
    );
    let refs: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let out = db.run_script(&init, &refs);
    assert!(out.status.success(), "init: {out:?}");
    out
}

/// A demo WAS process with the rendered WAS environment at one credentials generation.
struct Was {
    child: Child,
    address: SocketAddr,
}

impl Was {
    fn start(
        servers: &Servers,
        stack: &ValidatedStack,
        generation: u64,
        secret: &SecretSnapshot,
        port: u16,
    ) -> Was {
        let rendered = children(stack, generation, None);
        let env = resolve(
            container_of(&rendered, "Deployment/rottoon-was")
                .env
                .as_deref()
                .unwrap_or_default(),
            &secret.data,
            &[
                ("WEBTOON_DB_HOST", "127.0.0.1".to_string()),
                ("WEBTOON_DB_PORT", servers.db.port.to_string()),
                ("WEBTOON_REDIS_HOST", "127.0.0.1".to_string()),
                ("WEBTOON_REDIS_PORT", servers.redis_port.to_string()),
                ("WEBTOON_IMAGES_DIR", servers.images.0.display().to_string()),
                ("WEBTOON_PORT", port.to_string()),
            ],
        );
        let child = Command::new(demo_binary())
            .env_clear()
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the demo WAS starts");
        let was = Was {
            child,
            address: ([127, 0, 0, 1], port).into(),
        };
        was.until_healthy();
        was
    }

    /// Waits until `/healthz` answers 200: the schema exists and both logins worked.
    fn until_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("http://{}/healthz", self.address);
        while curl(&[&url]).status != 200 {
            assert!(
                Instant::now() < deadline,
                "the WAS at {} never turned healthy",
                self.address
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, as the kubelet stops a pod: requests in flight finish first.
    fn stop(mut self) {
        terminate(&mut self.child);
    }
}

impl Drop for Was {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One decision of the controller, with the servers ready and `was` as observed.
fn decide(
    stack: &ValidatedStack,
    secret: &SecretSnapshot,
    previous: Option<&Decision>,
    jobs: StepOutcome,
    was_switched: bool,
) -> Decision {
    rotation::decide(
        &Observation {
            stack,
            secret,
            servers_ready: Ok(()),
            was_settled: Ok(()),
            was_switched: if was_switched {
                Ok(())
            } else {
                Err("the WAS to roll out".to_string())
            },
            jobs,
            previous: previous.map(|d| &d.status),
            now: jiff::Timestamp::now(),
        },
        &mut || webtoon_operator::controller::credentials::generate_password(),
    )
    .expect("a decision")
}

/// Waits until nginx's access log shows a request `address` answered with 200. The
/// test upstreams are fixed addresses, and nginx tries one that refused connections
/// again only after `fail_timeout`.
fn wait_for_upstream(nginx: &Nginx, address: SocketAddr) {
    use std::io::{Read, Seek, SeekFrom};
    let needle = format!("ua=\"{address}\" us=\"200\"");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut tail = String::new();
        if let Ok(mut file) = std::fs::File::open(nginx.dir.join("access.log")) {
            let length = file.seek(SeekFrom::End(0)).unwrap_or(0);
            let _ = file.seek(SeekFrom::Start(length.saturating_sub(256 * 1024)));
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            tail = String::from_utf8_lossy(&bytes).into_owned();
        }
        if tail.contains(&needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nginx never sent {address} a request"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mariadb_tcp(db: &MariaDb, user: &str, password: &str) -> Output {
    db.as_user(user, password, "SELECT CURRENT_USER()")
}

fn mariadb_socket_root(db: &MariaDb, password: &str) -> Output {
    Command::new("mariadb")
        .arg("--no-defaults")
        .arg("--protocol=socket")
        .arg(format!("--socket={}", db.socket().display()))
        .arg("--user=root")
        .env("MYSQL_PWD", password)
        .args(["-e", "SELECT 1"])
        .output()
        .expect("mariadb client runs")
}

fn refused(out: &Output) -> bool {
    let text = String::from_utf8_lossy(&out.stderr);
    !out.status.success() && (text.contains("Access denied") || text.contains("account is locked"))
}

/// The wrk script: every other request reads the episode list (Redis, then MariaDB
/// on a miss), the others the admin page (a count in MariaDB each time).
const WRK_SCRIPT: &str = r#"
local paths = {"/episodes", "/admin"}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[n % 2 + 1])
end
"#;

#[test]
fn every_credential_rotates_under_load_without_a_failed_request() {
    let stack = stack_yaml(None);
    let stack = stack_from_yaml(&stack);
    let asked = stack_from_yaml(&stack_yaml(Some("leak-2026-05")));

    // An operator version before rotations created the Secret and the database; this
    // one adopts them with their values.
    let old = old_secret();
    let adopted = decide(&stack, &old, None, StepOutcome::default(), false);
    assert!(adopted.happened.is_empty(), "{:?}", adopted.happened);
    let secret = written(&old, &adopted);
    let mut servers = Servers::start("rotation-load", &stack, &secret);
    let episodes = servers.db.root(
        "CREATE TABLE webtoon.episodes (id BIGINT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(200) NOT NULL, image VARCHAR(200) NOT NULL) CHARACTER SET utf8mb4; INSERT INTO webtoon.episodes (title, image) VALUES ('Episode 1', 'ep1/01.png'), ('Episode 2', 'ep2/01.png')",
    );
    assert!(episodes.status.success(), "{episodes:?}");

    // Two WAS of generation 0 behind nginx, with two upstream slots for their
    // replacements: the surge of a rolling update.
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let old_was: Vec<Was> = ports[..2]
        .iter()
        .map(|p| Was::start(&servers, &stack, 0, &secret, *p))
        .collect();
    let proxy_dir = TempDir::new("rotation-load-nginx");
    std::fs::create_dir_all(proxy_dir.0.join("images")).expect("images");
    let proxy_ports = Ports::free();
    let upstreams: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let nginx = Nginx::start(
        &proxy_dir.0,
        &nginx_conf(
            &stack,
            &local_layout(&proxy_dir.0, &proxy_ports, &upstreams),
        ),
        proxy_ports,
    );
    let script = proxy_dir.0.join("load.lua");
    std::fs::write(&script, WRK_SCRIPT).expect("write the wrk script");
    let mut load = Guard(
        Command::new("wrk")
            .args(["-t2", "-c8", "-d20s", "--timeout", "5s", "--latency"])
            .args(["-H", &format!("Host: {HOST}")])
            .arg("-s")
            .arg(&script)
            .arg(nginx.http())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wrk runs (install wrk)"),
    );
    for was in &old_was {
        wait_for_upstream(&nginx, was.address);
    }
    let began = Instant::now();

    // 1. A new request: the new passwords are stored, then the add Jobs run.
    let started = decide(
        &asked,
        &secret,
        Some(&adopted),
        StepOutcome::default(),
        false,
    );
    let adding = written(&secret, &started);
    let add = started.jobs.clone().expect("the add Jobs");
    let (outcome, said, add_took) = servers.run_jobs(&asked, 0, &add, &adding);
    assert_eq!(outcome.database, Some(JobOutcome::Succeeded), "{said:?}");
    assert_eq!(outcome.cache, Some(JobOutcome::Succeeded), "{said:?}");
    eprintln!("add step: {add_took:?}: {said:?}");

    // 2. The switch: the Secret holds the new values and the WAS template names the
    // other account.
    let switched = decide(&asked, &adding, Some(&started), outcome, false);
    assert_eq!(switched.generation, 1);
    let rolling = written(&adding, &switched);
    let switch_at = began.elapsed();
    // Until the finish, a backup or a pod started before the switch logs in as before.
    for (user, key) in [
        ("webtoon_backup", "database-backup-password"),
        ("webtoon", "database-password"),
    ] {
        for (when, password) in [("old", &secret.data[key]), ("new", &rolling.data[key])] {
            let out = mariadb_tcp(&servers.db, user, password);
            assert!(
                out.status.success(),
                "{user} with its {when} password: {out:?}"
            );
        }
    }

    // 3. The rollout: new pods start with generation 1, an old pod restarted meanwhile
    // keeps its release's account with the Secret's new password, Redis restarts with
    // what the Secret holds now, then the old pods stop.
    let rollout_started = Instant::now();
    let new_was: Vec<Was> = ports[2..]
        .iter()
        .map(|p| Was::start(&servers, &asked, 1, &rolling, *p))
        .collect();
    // As in the cluster, where nginx adds a pod once it is ready, the old pods go
    // only after nginx sends the new ones requests.
    for was in &new_was {
        wait_for_upstream(&nginx, was.address);
    }
    let mut old_was = old_was;
    let restarted = old_was.pop().expect("two old WAS");
    let port = restarted.address.port();
    restarted.stop();
    let restarted = Was::start(&servers, &stack, 0, &rolling, port);
    servers.restart_redis(&asked, &rolling);
    let old_cache = &secret.data["cache-password"];
    assert!(
        redis_cli(servers.redis_port, "webtoon", old_cache, &["ping"]).contains("PONG"),
        "a restarted Redis still accepts the password the old pods use"
    );
    restarted.stop();
    for was in old_was {
        was.stop();
    }
    let rollout_took = rollout_started.elapsed();

    // 4. Every WAS pod runs generation 1: the old passwords go.
    let finishing = decide(
        &asked,
        &rolling,
        Some(&switched),
        StepOutcome::default(),
        true,
    );
    let finish_secret = written(&rolling, &finishing);
    assert!(!finish_secret.data.contains_key("cache-password-previous"));
    let finish = finishing.jobs.clone().expect("the finish Jobs");
    let (outcome, said, finish_took) = servers.run_jobs(&asked, 1, &finish, &finish_secret);
    eprintln!("finish step: {finish_took:?}: {said:?}");
    let rotated = decide(&asked, &finish_secret, Some(&finishing), outcome, true);
    assert_eq!(
        rotated.status.rotation.as_ref().map(|r| r.phase),
        Some(RotationPhase::Succeeded),
        "{:?}",
        rotated.status
    );
    let total = began.elapsed();
    assert!(
        matches!(load.0.try_wait(), Ok(None)),
        "the load ran through the whole rotation"
    );

    let mut stdout = String::new();
    if let Some(mut pipe) = load.0.stdout.take() {
        use std::io::Read;
        pipe.read_to_string(&mut stdout).expect("read wrk output");
    }
    assert!(load.0.wait().expect("wrk exits").success(), "{stdout}");
    let report = parse_wrk(&stdout);
    eprintln!(
        "rotation under load: {} requests in 20 s ({:.0}/s, p99 {:.1} ms), {} non-2xx/3xx, {} socket errors; add {add_took:?}, switch at {switch_at:?}, rollout {rollout_took:?}, finish {finish_took:?}, all {total:?}",
        report.requests,
        report.requests_per_sec,
        report.p99_ms,
        report.non_2xx_3xx,
        report.socket_errors
    );
    report.assert_no_request_failed();
    drop(new_was);
    drop(nginx);

    // The old passwords are refused by both servers; the new ones work.
    let final_secret = written(&finish_secret, &rotated);
    let old = &secret.data;
    let new = &final_secret.data;
    let db = &servers.db;
    for (user, key) in [
        ("webtoon", "database-password"),
        ("webtoon_2", "database-password"),
        ("webtoon_backup", "database-backup-password"),
        ("webtoon_admin", "database-admin-password"),
        ("root", "database-root-password"),
    ] {
        let out = mariadb_tcp(db, user, &old[key]);
        assert!(
            refused(&out),
            "MariaDB accepts the old {key} for {user}: {out:?}"
        );
    }
    assert!(
        refused(&mariadb_socket_root(db, ROOT_PASSWORD)),
        "root's old password over the socket"
    );
    for (user, key) in [
        ("webtoon_2", "database-password"),
        ("webtoon_backup", "database-backup-password"),
        ("webtoon_admin", "database-admin-password"),
    ] {
        let out = mariadb_tcp(db, user, &new[key]);
        assert!(
            out.status.success(),
            "{user} with its new password: {out:?}"
        );
    }
    let out = mariadb_socket_root(db, &new["database-root-password"]);
    assert!(out.status.success(), "root with its new password: {out:?}");
    let locked = mariadb_tcp(db, "webtoon", &new["database-password"]);
    assert!(refused(&locked), "the old account is locked: {locked:?}");
    for (user, key) in [
        ("webtoon", "cache-password"),
        ("webtoon-admin", "cache-admin-password"),
    ] {
        let reply = redis_cli(servers.redis_port, user, &old[key], &["ping"]);
        assert!(
            reply.contains("WRONGPASS"),
            "Redis accepts the old {key}: {reply}"
        );
        let reply = redis_cli(servers.redis_port, user, &new[key], &["ping"]);
        assert!(
            reply.contains("PONG"),
            "Redis refuses the new {key}: {reply}"
        );
    }
}

#[test]
fn a_database_created_before_rotations_gets_its_administrative_account_from_the_init_script() {
    let stack = stack_from_yaml(&stack_yaml(None));
    let asked = stack_from_yaml(&stack_yaml(Some("second")));
    let old = old_secret();
    let adopted = decide(&stack, &old, None, StepOutcome::default(), false);
    let secret = written(&old, &adopted);
    let servers = Servers::start("rotation-upgrade", &stack, &secret);
    // The init script of an operator version before rotations made no such account.
    let dropped = servers.db.root("DROP USER 'webtoon_admin'@'%'");
    assert!(dropped.status.success(), "{dropped:?}");

    let started = decide(
        &asked,
        &secret,
        Some(&adopted),
        StepOutcome::default(),
        false,
    );
    let adding = written(&secret, &started);
    let add = started.jobs.clone().expect("the add Jobs");
    let (outcome, said, _) = servers.run_jobs(&asked, 0, &add, &adding);
    assert!(
        matches!(&outcome.database, Some(JobOutcome::Failed(why)) if why.contains("kubectl exec -n webtoon rottoon-database-0 -c mariadb -- bash /docker-entrypoint-initdb.d/10-webtoon-init.sh")),
        "the failure names the fix: {said:?}"
    );
    let failed = decide(&asked, &adding, Some(&started), outcome.clone(), false);
    assert_eq!(failed.condition.reason, "RotationFailed");
    assert!(
        failed.condition.message.contains("10-webtoon-init.sh"),
        "{}",
        failed.condition.message
    );
    let untouched = mariadb_tcp(&servers.db, "webtoon", &secret.data["database-password"]);
    assert!(
        untouched.status.success(),
        "nothing changed for the application: {untouched:?}"
    );

    // The documented fix: the init script, run again in the live database.
    run_init(&servers.db, &children(&stack, 0, None), &secret);
    let retry = stack_from_yaml(&stack_yaml(Some("third")));
    // The failed Jobs are still there, and a new request retries their step.
    let mut retried = decide(&retry, &adding, Some(&failed), outcome, false);
    let jobs = retried.jobs.clone().expect("new add Jobs");
    assert_ne!(jobs.suffix, add.suffix);
    let (outcome, said, _) = servers.run_jobs(&retry, 0, &jobs, &written(&adding, &retried));
    assert_eq!(outcome.database, Some(JobOutcome::Succeeded), "{said:?}");
    assert_eq!(outcome.cache, Some(JobOutcome::Succeeded), "{said:?}");
    retried = decide(
        &retry,
        &written(&adding, &retried),
        Some(&retried),
        outcome,
        false,
    );
    assert_eq!(
        retried.generation, 1,
        "the rotation goes on after the retry"
    );
}

#[test]
fn the_objects_of_a_rotation_are_valid_kubernetes_for_oldest_and_newest_versions() {
    let stack = stack_from_yaml(&stack_yaml(None));
    let asked = stack_from_yaml(&stack_yaml(Some("second")));
    let adopted = decide(&stack, &old_secret(), None, StepOutcome::default(), false);
    let secret = written(&old_secret(), &adopted);
    let started = decide(
        &asked,
        &secret,
        Some(&adopted),
        StepOutcome::default(),
        false,
    );
    let jobs = started.jobs.clone().expect("the add Jobs");
    let observed = Observed {
        credentials: started.credentials.clone(),
        secret_state: started.secret.clone(),
        rotation: Some(jobs.clone()),
        ..Observed::default()
    };
    let yaml = webtoon_operator::manifest::render_yaml(&asked, &observed).expect("render");
    let mut resources = Vec::new();
    for component in ["database-rotation", "cache-rotation"] {
        let job = format!("rottoon-{component}-{}", jobs.suffix);
        assert!(job.len() <= 63, "{job} is a valid Job name");
        assert!(yaml.contains(&format!("name: {job}\n")), "{job} rendered");
        resources.push(format!("job/{job}"));
        resources.push(format!("networkpolicy/rottoon-{component}"));
        resources.push(format!("configmap/rottoon-{component}"));
    }
    resources.push("secret/rottoon-credentials".to_string());
    let dir = TempDir::new("rotation-schema");
    let path = dir.0.join("rotating.yaml");
    std::fs::write(&path, yaml).expect("write");
    for version in ["1.32.0", "1.37.0"] {
        let out = Command::new(common::venv_tool(
            "WEBTOON_KUBERNETES_VALIDATE",
            "kubernetes-validate",
        ))
        .args(["--strict", "-k", version])
        .arg(&path)
        .output()
        .expect("kubernetes-validate runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "kubernetes-validate {version}:\n{text}"
        );
        for resource in &resources {
            assert!(
                text.contains(&format!("passed for resource {resource}")),
                "{resource} was not validated against {version}:\n{text}"
            );
        }
    }
}

#[test]
fn each_rotation_job_reaches_its_own_server_and_nothing_reaches_it() {
    use common::reachability::{Endpoint, Port, allowed};
    let stack = stack_from_yaml(&stack_yaml(Some("second")));
    let jobs = RotationJobs {
        step: webtoon_operator::render::credentials::RotationStep::Add,
        suffix: "0123abcd".to_string(),
        from_account: "webtoon".to_string(),
        to_account: "webtoon_2".to_string(),
    };
    let rendered = children(&stack, 0, Some(jobs));
    let labels_of = |kind_and_name: &str| -> Vec<(String, String)> {
        let template = rendered
            .deployments
            .iter()
            .filter(|d| {
                format!("Deployment/{}", d.metadata.name.clone().unwrap_or_default())
                    == kind_and_name
            })
            .filter_map(|d| d.spec.as_ref().map(|s| s.template.clone()))
            .chain(
                rendered
                    .stateful_sets
                    .iter()
                    .filter(|s| {
                        format!(
                            "StatefulSet/{}",
                            s.metadata.name.clone().unwrap_or_default()
                        ) == kind_and_name
                    })
                    .filter_map(|s| s.spec.as_ref().map(|s| s.template.clone())),
            )
            .chain(
                rendered
                    .jobs
                    .iter()
                    .filter(|j| {
                        format!("Job/{}", j.metadata.name.clone().unwrap_or_default())
                            .starts_with(kind_and_name)
                    })
                    .filter_map(|j| j.spec.as_ref().map(|s| s.template.clone())),
            )
            .next()
            .unwrap_or_else(|| panic!("{kind_and_name} is rendered"));
        template
            .metadata
            .and_then(|m| m.labels)
            .unwrap_or_default()
            .into_iter()
            .collect()
    };
    let pod = |name: &str, ip: &str, kind_and_name: &str| {
        let labels = labels_of(kind_and_name);
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Endpoint::pod(name, ip, "webtoon", &labels)
    };
    let database = pod("database", "10.244.0.12", "StatefulSet/rottoon-database");
    let cache = pod("cache", "10.244.0.13", "StatefulSet/rottoon-cache");
    let was = pod("was", "10.244.0.11", "Deployment/rottoon-was");
    let db_job = pod(
        "database-rotation",
        "10.244.0.20",
        "Job/rottoon-database-rotation-",
    );
    let cache_job = pod(
        "cache-rotation",
        "10.244.0.21",
        "Job/rottoon-cache-rotation-",
    );
    let internet = Endpoint::external("internet", "203.0.113.9");
    let policies = &rendered.network_policies;
    for (from, to, port, verdict) in [
        (&db_job, &database, 3306, true),
        (&cache_job, &cache, 6379, true),
        (&db_job, &cache, 6379, false),
        (&cache_job, &database, 3306, false),
        (&db_job, &was, 8080, false),
        (&db_job, &internet, 443, false),
        (&cache_job, &internet, 443, false),
        (&was, &db_job, 8080, false),
        (&internet, &cache_job, 6379, false),
        (&was, &database, 3306, true),
    ] {
        assert_eq!(
            allowed(policies, from, to, Port::tcp(port)),
            verdict,
            "{} -> {}:{port}",
            from.name,
            to.name
        );
    }
}
