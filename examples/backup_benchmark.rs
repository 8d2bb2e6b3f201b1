//! Backup and restore time and dump size for a 100,000-row table, with the rendered
//! init, backup and restore scripts against a local MariaDB (Debian
//! `mariadb-server`) started for the run in a temporary directory.
//!
//! ```sh
//! cargo run --release --example backup_benchmark
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use webtoon_operator::manifest::{parse_stacks, validated};
use webtoon_operator::render::{Observed, render};

const STACK: &str = r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: benchtoon, namespace: webtoon}
spec:
  hosts: [benchtoon.example]
  was: {image: registry.example/was:1.0.0}
  database:
    backup: {keep: 3}
    restore: {from: latest}
"#;
const ROWS: u32 = 100_000;
const ROOT: &str = "bench-root-password";
const APP: &str = "bench-app-password";
const BACKUP: &str = "bench-backup-password";

type BoxError = Box<dyn std::error::Error>;

fn checked(what: &str, out: Output) -> Result<String, BoxError> {
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

struct Server {
    dir: PathBuf,
    port: u16,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    fn client(&self, password: &str) -> Command {
        let mut c = Command::new("mariadb");
        c.args([
            "--no-defaults",
            "--protocol=socket",
            "--user=root",
            "-N",
            "-B",
        ])
        .arg(format!("--socket={}", self.dir.join("sock").display()))
        .env("MYSQL_PWD", password);
        c
    }

    fn sql(&self, sql: &str) -> Result<String, BoxError> {
        checked(sql, self.client(ROOT).args(["-e", sql]).output()?)
    }

    fn script(&self, path: &Path, env: &[(&str, String)]) -> Result<String, BoxError> {
        let home = self.dir.join("home");
        std::fs::create_dir_all(&home)?;
        std::fs::write(
            home.join(".my.cnf"),
            format!("[client]\nsocket={}\n", self.dir.join("sock").display()),
        )?;
        let mut c = Command::new("bash");
        c.arg(path).env("HOME", &home);
        for (k, v) in env {
            c.env(k, v);
        }
        checked(&path.display().to_string(), c.output()?)
    }
}

fn start(dir: &Path, my_cnf: &str) -> Result<Server, BoxError> {
    std::fs::create_dir_all(dir.join("tmp"))?;
    std::fs::write(dir.join("webtoon.cnf"), my_cnf)?;
    checked(
        "mariadb-install-db",
        Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg("--auth-root-authentication-method=normal")
            .args(["--skip-test-db", "--user=root"])
            .arg(format!("--tmpdir={}", dir.join("tmp").display()))
            .output()?,
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new("mariadbd")
        .arg(format!(
            "--defaults-file={}",
            dir.join("webtoon.cnf").display()
        ))
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--socket={}", dir.join("sock").display()))
        .arg(format!("--tmpdir={}", dir.join("tmp").display()))
        .arg(format!("--log-error={}", dir.join("error.log").display()))
        .arg(format!("--port={port}"))
        .args(["--bind-address=127.0.0.1", "--user=root"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let server = Server {
        dir: dir.to_path_buf(),
        port,
        child,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server
        .client("")
        .args([
            "-e",
            &format!("ALTER USER root@localhost IDENTIFIED BY '{ROOT}'"),
        ])
        .output()?
        .status
        .success()
    {
        if Instant::now() > deadline {
            return Err("mariadbd did not start".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(server)
}

fn main() -> Result<(), BoxError> {
    let stacks = parse_stacks("benchmark", STACK)?;
    let children = render(&validated(&stacks[0])?, &Observed::default());
    let file = |map: &str, key: &str| -> Result<String, BoxError> {
        children
            .config_maps
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(map))
            .and_then(|c| c.data.as_ref()?.get(key).cloned())
            .ok_or_else(|| format!("{map}/{key} not rendered").into())
    };
    let dir = std::env::temp_dir().join(format!("webtoon-backup-benchmark-{}", std::process::id()));
    let server = start(&dir, &file("benchtoon-database-config", "webtoon.cnf")?)?;
    for (name, text) in [
        (
            "init.sh",
            file("benchtoon-database-init", "10-webtoon-init.sh")?,
        ),
        (
            "restore.sh",
            file("benchtoon-database-init", "20-webtoon-restore.sh")?,
        ),
        ("backup.sh", file("benchtoon-database-backup", "backup.sh")?),
    ] {
        std::fs::write(dir.join(name), text)?;
    }
    let passwords = [
        ("MARIADB_ROOT_PASSWORD", ROOT.to_string()),
        ("WEBTOON_DB_PASSWORD", APP.to_string()),
        ("WEBTOON_DB_BACKUP_PASSWORD", BACKUP.to_string()),
    ];
    server.script(&dir.join("init.sh"), &passwords)?;
    server.sql(&format!(
        "USE webtoon;
         CREATE TABLE webtoon.episodes (id INT PRIMARY KEY AUTO_INCREMENT, series INT NOT NULL, title VARCHAR(200) NOT NULL, image VARCHAR(200) NOT NULL, published DATETIME NOT NULL, KEY (series)) CHARACTER SET utf8mb4;
         INSERT INTO webtoon.episodes (series, title, image, published)
           SELECT seq % 500, CONCAT('Episode ', seq, ' of series ', seq % 500), CONCAT('s', seq % 500, '/e', seq, '/01.webp'), '2026-01-01' + INTERVAL seq MINUTE FROM seq_1_to_{ROWS};"
    ))?;
    let before = server.sql("CHECKSUM TABLE webtoon.episodes")?;
    let backups = dir.join("backups");
    std::fs::create_dir_all(&backups)?;

    let started = Instant::now();
    let log = server.script(
        &dir.join("backup.sh"),
        &[
            ("WEBTOON_DB_HOST", "127.0.0.1".to_string()),
            ("WEBTOON_DB_PORT", server.port.to_string()),
            ("WEBTOON_DB_NAME", "webtoon".to_string()),
            ("WEBTOON_DB_USER", "webtoon_backup".to_string()),
            ("WEBTOON_DB_PASSWORD", BACKUP.to_string()),
            ("WEBTOON_BACKUP_DIR", backups.display().to_string()),
            ("WEBTOON_BACKUP_KEEP", "3".to_string()),
        ],
    )?;
    let backup_time = started.elapsed();
    let size: u64 = std::fs::read_dir(&backups)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();

    server.sql("DROP DATABASE webtoon")?;
    server.script(&dir.join("init.sh"), &passwords)?;
    let mut env = passwords.to_vec();
    env.extend([
        ("WEBTOON_DB_NAME", "webtoon".to_string()),
        ("WEBTOON_BACKUP_DIR", backups.display().to_string()),
        ("WEBTOON_RESTORE_FROM", "latest".to_string()),
        (
            "WEBTOON_RESTORE_MARKER",
            dir.join("marker").display().to_string(),
        ),
    ]);
    let started = Instant::now();
    server.script(&dir.join("restore.sh"), &env)?;
    let restore_time = started.elapsed();
    let after = server.sql("CHECKSUM TABLE webtoon.episodes")?;
    if before != after {
        return Err(format!("checksums differ: {before} / {after}").into());
    }
    println!("{log}");
    println!(
        "{ROWS} rows: backup {:.2} s, restore {:.2} s, dump {:.1} KiB gzip; checksums equal",
        backup_time.as_secs_f64(),
        restore_time.as_secs_f64(),
        size as f64 / 1024.0
    );
    Ok(())
}
