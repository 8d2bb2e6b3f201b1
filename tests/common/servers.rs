//! Real MariaDB and Redis servers for the data-plane tests: each on 127.0.0.1, on a
//! free port, in its own temporary directory, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;
use super::process::{free_port, terminate};

/// How long a server may take to start.
const START_DEADLINE: Duration = Duration::from_secs(90);

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + START_DEADLINE;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not start in time");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The password the tests give MariaDB's root user, as the image does from the Secret.
pub const ROOT_PASSWORD: &str = "root-Pass'word\\with\"quotes";

/// A MariaDB server started with the rendered `webtoon.cnf`; only the data
/// directory, socket, port and bind address differ, on the command line.
pub struct MariaDb {
    /// Its temporary directory: data, socket, logs and anything else the test needs.
    pub dir: TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    child: Child,
}

impl MariaDb {
    /// Initialises a data directory, starts the server and sets the root password.
    pub fn start(name: &str, my_cnf: &str) -> Self {
        let dir = TempDir::new(name);
        let data = dir.0.join("data");
        let cnf = dir.0.join("webtoon.cnf");
        std::fs::write(&cnf, my_cnf).expect("write my.cnf");
        // Servers running side by side must not share temporary table names in /tmp.
        let tmp = dir.0.join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmp dir");
        let install = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg("--user=root")
            .arg(format!("--tmpdir={}", tmp.display()))
            .output()
            .expect("mariadb-install-db runs (apt install mariadb-server)");
        assert!(install.status.success(), "mariadb-install-db: {install:?}");
        let port = free_port();
        let child = Command::new("mariadbd")
            .arg(format!("--defaults-file={}", cnf.display()))
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.0.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.0.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", dir.0.join("error.log").display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg("--user=root")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        let server = MariaDb { dir, port, child };
        wait_until("mariadbd", || {
            server
                .socket_client("")
                .args(["-e", "select 1"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        let set = server
            .socket_client("")
            .arg("-e")
            .arg(format!(
                "ALTER USER root@localhost IDENTIFIED BY '{}'",
                ROOT_PASSWORD.replace('\\', "\\\\").replace('\'', "''")
            ))
            .output()
            .expect("mariadb client runs");
        assert!(set.status.success(), "set root password: {set:?}");
        server
    }

    /// The socket path.
    pub fn socket(&self) -> PathBuf {
        self.dir.0.join("mysqld.sock")
    }

    fn socket_client(&self, password: &str) -> Command {
        let mut command = Command::new("mariadb");
        command
            .arg("--no-defaults")
            .arg("--default-character-set=utf8mb4")
            .arg("--protocol=socket")
            .arg(format!("--socket={}", self.socket().display()))
            .arg("--user=root")
            .env("MYSQL_PWD", password);
        command
    }

    /// Runs SQL as root over the socket.
    pub fn root(&self, sql: &str) -> Output {
        self.socket_client(ROOT_PASSWORD)
            .args(["--batch", "--skip-column-names", "-e", sql])
            .output()
            .expect("mariadb client runs")
    }

    /// Runs SQL as `user` over TCP, the way a WAS or the backup job connects.
    pub fn as_user(&self, user: &str, password: &str, sql: &str) -> Output {
        Command::new("mariadb")
            .arg("--no-defaults")
            .arg("--default-character-set=utf8mb4")
            .arg("--protocol=tcp")
            .arg("--host=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(format!("--user={user}"))
            .env("MYSQL_PWD", password)
            .args(["--batch", "--skip-column-names", "-e", sql])
            .output()
            .expect("mariadb client runs")
    }

    /// Runs a root client over the socket on `database` with `input` as its standard
    /// input: a dump to load, or statements to run.
    pub fn root_input(&self, database: &str, input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .socket_client(ROOT_PASSWORD)
            .args(["--batch", "--skip-column-names"])
            .arg(format!("--database={database}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mariadb client runs");
        let mut stdin = child.stdin.take().expect("client stdin");
        let input = input.to_vec();
        // Written from a thread: the client's output must be read meanwhile.
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().expect("mariadb client output");
        let written = writer.join().expect("writer thread");
        // A client that stopped early says why in its output; one that succeeded
        // must have read everything.
        if out.status.success() {
            written.expect("write the client's input");
        }
        out
    }

    /// A root client over the socket whose standard input and output the test
    /// holds: one connection across statements, as a transaction needs. It prints
    /// each statement's rows as soon as the statement ends.
    pub fn root_session(&self) -> Child {
        self.socket_client(ROOT_PASSWORD)
            .args(["--batch", "--skip-column-names", "--unbuffered"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("mariadb client runs")
    }

    /// A client as `user` over TCP reading statements from its standard input,
    /// which the test holds, as a WAS writing while a backup runs.
    pub fn user_session(&self, user: &str, password: &str) -> Child {
        Command::new("mariadb")
            .arg("--no-defaults")
            .arg("--default-character-set=utf8mb4")
            .arg("--protocol=tcp")
            .arg("--host=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(format!("--user={user}"))
            .env("MYSQL_PWD", password)
            .args(["--batch", "--skip-column-names"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mariadb client runs")
    }

    /// Runs a rendered script with bash and `env`. The clients it calls find this
    /// server's socket through `~/.my.cnf`, the way the image's clients find the
    /// image's socket through its own configuration.
    pub fn run_script(&self, script: &Path, env: &[(&str, String)]) -> Output {
        let home = self.dir.0.join("home");
        std::fs::create_dir_all(&home).expect("home dir");
        std::fs::write(
            home.join(".my.cnf"),
            format!("[client]\nsocket={}\n", self.socket().display()),
        )
        .expect("write ~/.my.cnf");
        let mut command = Command::new("bash");
        command.arg(script).env("HOME", &home);
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().expect("bash runs")
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// A Redis server started through the rendered start script.
pub struct Redis {
    /// Its temporary directory.
    pub dir: TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    child: Child,
}

impl Redis {
    /// Writes `redis.conf` and `start.sh` and runs `sh start.sh` with `REDIS_PASSWORD`.
    pub fn start(name: &str, redis_conf: &str, start_sh: &str, password: &str) -> Self {
        Redis::start_with_env(
            name,
            redis_conf,
            start_sh,
            &[("REDIS_PASSWORD".to_string(), password.to_string())],
        )
    }

    /// [`Redis::start`] with the environment `env` (the Redis container's, resolved).
    pub fn start_with_env(
        name: &str,
        redis_conf: &str,
        start_sh: &str,
        env: &[(String, String)],
    ) -> Self {
        let dir = TempDir::new(name);
        std::fs::write(dir.0.join("redis.conf"), redis_conf).expect("write redis.conf");
        std::fs::write(dir.0.join("start.sh"), start_sh).expect("write start.sh");
        let port = redis_port_of(redis_conf);
        let child = Command::new("sh")
            .arg(dir.0.join("start.sh"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis start script runs");
        let server = Redis { dir, port, child };
        wait_until("redis-server", || {
            server
                .cli(None, &["ping"])
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("NOAUTH"))
        });
        server
    }

    /// Runs `redis-cli` with one command, as `user`/`password` or without AUTH.
    pub fn cli(&self, auth: Option<(&str, &str)>, args: &[&str]) -> std::io::Result<Output> {
        let mut command = Command::new("redis-cli");
        command
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "--no-auth-warning",
            ])
            .stdin(Stdio::null());
        if let Some((user, password)) = auth {
            command.args(["--user", user, "--pass", password]);
        }
        command.args(args).output()
    }

    /// Output of one command as text (replies and errors alike).
    pub fn reply(&self, auth: Option<(&str, &str)>, args: &[&str]) -> String {
        let out = self.cli(auth, args).expect("redis-cli runs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

/// The rendered redis.conf and start.sh with the pod's port, bind address and
/// directories (`/data`, `/run/redis`, `/etc/redis`) moved to `dir` on 127.0.0.1.
pub fn redis_local_layout(conf: &str, script: &str, dir: &Path, port: u16) -> (String, String) {
    let d = dir.display();
    for line in [
        "port 6379\n",
        "bind 0.0.0.0\n",
        "dir /data\n",
        "aclfile /run/redis/users.acl\n",
    ] {
        assert!(conf.contains(line), "rendered redis.conf has {line}");
    }
    let conf = conf
        .replace("port 6379\n", &format!("port {port}\n"))
        .replace("bind 0.0.0.0\n", "bind 127.0.0.1\n")
        .replace("dir /data\n", &format!("dir {d}\n"))
        .replace("/run/redis/", &format!("{d}/"));
    let script = script
        .replace("/run/redis/", &format!("{d}/"))
        .replace("/etc/redis/", &format!("{d}/"));
    (conf, script)
}

fn redis_port_of(conf: &str) -> u16 {
    conf.lines()
        .find_map(|l| l.strip_prefix("port "))
        .and_then(|p| p.trim().parse().ok())
        .expect("redis.conf names its port")
}

impl Drop for Redis {
    fn drop(&mut self) {
        // start.sh execs redis-server, so the child is the server itself.
        terminate(&mut self.child);
    }
}
