//! The whole backup chain of stacks whose backups live in S3-compatible object
//! storage, run the way the rendered pods run it, on 127.0.0.1: a real MariaDB
//! (Debian `mariadbd`) with the rendered configuration and init script, a real S3
//! server (versitygw, TLS from a CA of the test's, trusted through the stack's
//! `caConfigMap`), and every container of the rendered backup CronJob, verify
//! CronJob and database StatefulSet run with its own command, arguments and
//! environment: the database image's scripts with bash, the operator's image as
//! this crate's binary.
//!
//! Each pod's volumes are directories of the test's (ConfigMaps filled from the
//! rendered objects, or from the user's objects the stack names; emptyDirs empty),
//! and every absolute path a container's arguments or environment name must lie
//! under one of that container's own mounts: a path the pod does not mount fails
//! the test, as it would fail the pod. Only the database's address (the Service's
//! DNS name in the cluster) is pointed at the test's server.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use common::servers::{MariaDb, ROOT_PASSWORD};
use common::{TempDir, config_file, stack_from_yaml};
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec};
use webtoon_operator::api::ValidatedStack;
use webtoon_operator::backup::catalog::Catalog;
use webtoon_operator::backup::description::description_name;
use webtoon_operator::backup::object_store::{BackupStore, StoreConfig};
use webtoon_operator::backup::report::{BackupReport, Report, TERMINATION_LOG, VerifyReport};
use webtoon_operator::render::credentials::secret_name;
use webtoon_operator::render::{Children, Observed, render};

const NAMESPACE: &str = "webtoon";
/// The stack whose database is backed up.
const SOURCE: &str = "sourcetoon";
/// A new stack that starts its database from the source's newest backup.
const TARGET: &str = "restoretoon";
const BUCKET: &str = "backups";
/// The source's backups: its default prefix, `<namespace>/<stack>/`.
const PREFIX: &str = "webtoon/sourcetoon/";
/// The user's Secret with the bucket's keys.
const KEYS_SECRET: &str = "backup-s3";
/// The user's ConfigMap with the CA that signs the bucket's certificate.
const CA_CONFIG_MAP: &str = "backup-s3-ca";
const KEEP: usize = 2;
const APP_PASSWORD: &str = "app-pass-0123456789";
const BACKUP_PASSWORD: &str = "backup-pass-0123456789";
/// The operator's binary in its image.
const OPERATOR_IN_IMAGE: &str = "/usr/local/bin/webtoon-operator";
/// Where the database image runs its first-start scripts from.
const INIT_DIR: &str = "/docker-entrypoint-initdb.d";

fn object_store(endpoint: &str, prefix: Option<&str>) -> String {
    let prefix = prefix.map_or(String::new(), |p| format!(", prefix: {p}"));
    format!(
        "{{endpoint: \"{endpoint}\", bucket: {BUCKET}{prefix}, secretName: {KEYS_SECRET}, caConfigMap: {CA_CONFIG_MAP}}}"
    )
}

/// Backups to the bucket alone (no `storage`: each dump is staged in a scratch
/// directory), verified on their own schedule.
fn source_stack(endpoint: &str) -> ValidatedStack {
    stack_from_yaml(&format!(
        r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {{name: {SOURCE}, namespace: {NAMESPACE}}}
spec:
  hosts: [{SOURCE}.example]
  was: {{image: registry.example/{SOURCE}/was:1.0.0}}
  database:
    backup:
      schedule: "0 3 * * *"
      keep: {KEEP}
      objectStore: {}
"#,
        object_store(endpoint, None)
    ))
}

/// A new stack restoring the source's newest backup from the source's prefix.
fn target_stack(endpoint: &str) -> ValidatedStack {
    stack_from_yaml(&format!(
        r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {{name: {TARGET}, namespace: {NAMESPACE}}}
spec:
  hosts: [{TARGET}.example]
  was: {{image: registry.example/{TARGET}/was:1.0.0}}
  database:
    restore:
      from: latest
      objectStore: {}
"#,
        object_store(endpoint, Some(PREFIX))
    ))
}

/// What the cluster holds besides the rendered objects: the credentials Secrets the
/// operator generates, and the user's Secret and ConfigMap the stacks name.
struct Cluster {
    /// (Secret, key, value).
    secrets: Vec<(String, String, String)>,
    /// (ConfigMap, key, value).
    config_maps: Vec<(String, String, String)>,
}

impl Cluster {
    fn new(stacks: &[&ValidatedStack], server: &S3Server) -> Cluster {
        let mut secrets = Vec::new();
        for stack in stacks {
            for (key, value) in [
                ("database-root-password", ROOT_PASSWORD),
                ("database-password", APP_PASSWORD),
                ("database-backup-password", BACKUP_PASSWORD),
            ] {
                secrets.push((secret_name(stack), key.to_string(), value.to_string()));
            }
        }
        for (key, value) in [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ] {
            secrets.push((KEYS_SECRET.to_string(), key.to_string(), value.to_string()));
        }
        let ca = server.ca_file.as_ref().expect("the S3 server speaks TLS");
        let ca = std::fs::read_to_string(ca).expect("read the CA certificate");
        Cluster {
            secrets,
            config_maps: vec![(CA_CONFIG_MAP.to_string(), "ca.crt".to_string(), ca)],
        }
    }

    fn secret(&self, secret: &str, key: &str) -> String {
        self.secrets
            .iter()
            .find(|(s, k, _)| s == secret && k == key)
            .map(|(_, _, v)| v.clone())
            .unwrap_or_else(|| {
                panic!("a container reads key {key} of Secret {secret}, which nobody creates")
            })
    }

    fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let data: BTreeMap<String, String> = self
            .config_maps
            .iter()
            .filter(|(c, _, _)| c == name)
            .map(|(_, k, v)| (k.clone(), v.clone()))
            .collect();
        (!data.is_empty()).then_some(data)
    }
}

/// A rendered variable replaced: (name, the value rendered, the test's value).
type Override<'a> = (&'a str, &'a str, String);

/// One run of a rendered pod: its volumes as directories under a short path of its
/// own (the verify script's throwaway server puts its socket there).
struct Pod {
    dir: TempDir,
    name: String,
    spec: PodSpec,
    volumes: BTreeMap<String, PathBuf>,
}

/// One container's run: its output and its termination message.
struct Ran {
    out: Output,
    termination: Option<String>,
}

impl Ran {
    fn text(&self) -> String {
        text(&self.out)
    }

    fn succeeded(&self) -> bool {
        self.out.status.success()
    }

    fn report(&self) -> Report {
        let message = self
            .termination
            .as_deref()
            .unwrap_or_else(|| panic!("no termination message: {}", self.text()));
        assert!(message.len() <= 4096, "fits a termination message");
        Report::parse(message).unwrap_or_else(|| panic!("not a report: {message}"))
    }

    fn backup_report(&self) -> BackupReport {
        match self.report() {
            Report::Backup(report) => report,
            other => panic!("not a backup report: {other:?}"),
        }
    }

    fn verify_report(&self) -> VerifyReport {
        match self.report() {
            Report::Verify(report) => report,
            other => panic!("not a verify report: {other:?}"),
        }
    }
}

impl Pod {
    /// `spec` with its volumes made: ConfigMaps from `children` or the user's,
    /// emptyDirs empty, and `claims` (volume, directory) for the claims.
    fn new(
        name: &str,
        spec: &PodSpec,
        children: &Children,
        cluster: &Cluster,
        claims: &[(&str, PathBuf)],
    ) -> Pod {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let dir = TempDir(std::env::temp_dir().join(format!(
            "wbc-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst)
        )));
        let _ = std::fs::remove_dir_all(&dir.0);
        std::fs::create_dir_all(&dir.0).expect("pod directory");
        let mut volumes = BTreeMap::new();
        for volume in spec.volumes.iter().flatten() {
            let local = dir.0.join(&volume.name);
            if let Some(source) = &volume.config_map {
                let data = children
                    .config_maps
                    .iter()
                    .find(|c| c.metadata.name.as_deref() == Some(source.name.as_str()))
                    .and_then(|c| c.data.clone())
                    .or_else(|| cluster.config_map(&source.name))
                    .unwrap_or_else(|| {
                        panic!(
                            "{name}: volume {} is ConfigMap {}, which neither the render nor the user provides",
                            volume.name, source.name
                        )
                    });
                std::fs::create_dir_all(&local).expect("ConfigMap volume");
                let files: Vec<(String, String)> = match &source.items {
                    Some(items) => items
                        .iter()
                        .map(|item| (item.key.clone(), item.path.clone()))
                        .collect(),
                    None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
                };
                for (key, path) in files {
                    let value = data.get(&key).unwrap_or_else(|| {
                        panic!("{name}: ConfigMap {} has no key {key}", source.name)
                    });
                    std::fs::write(local.join(path), value).expect("ConfigMap file");
                }
            } else if volume.empty_dir.is_some() {
                std::fs::create_dir_all(&local).expect("emptyDir volume");
            } else {
                assert!(
                    claims.iter().any(|(v, _)| *v == volume.name),
                    "{name}: the test has no directory for volume {}",
                    volume.name
                );
                continue;
            }
            volumes.insert(volume.name.clone(), local);
        }
        for (volume, path) in claims {
            std::fs::create_dir_all(path).expect("claim directory");
            volumes.insert(volume.to_string(), path.clone());
        }
        Pod {
            dir,
            name: name.to_string(),
            spec: spec.clone(),
            volumes,
        }
    }

    /// Puts `path` behind the claim `volume` from now on.
    fn attach(&mut self, volume: &str, path: PathBuf) {
        self.volumes.insert(volume.to_string(), path);
    }

    fn volume(&self, volume: &str) -> &Path {
        self.volumes
            .get(volume)
            .unwrap_or_else(|| panic!("{}: no volume {volume}", self.name))
    }

    /// The container `name`, checking it is an init container or not as `init` says.
    fn container(&self, name: &str, init: bool) -> Container {
        let list = if init {
            self.spec.init_containers.clone().unwrap_or_default()
        } else {
            self.spec.containers.clone()
        };
        list.into_iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no {}container {name}",
                    self.name,
                    if init { "init " } else { "" }
                )
            })
    }

    /// (path in the container, directory here), longest path first.
    fn mounts(&self, container: &Container) -> Vec<(String, PathBuf)> {
        let mut mounts: Vec<(String, PathBuf)> = container
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| {
                let mut local = self.volume(&m.name).to_path_buf();
                if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                    local = local.join(sub);
                }
                (m.mount_path.clone(), local)
            })
            .collect();
        mounts.push((
            container
                .termination_message_path
                .clone()
                .unwrap_or_else(|| TERMINATION_LOG.to_string()),
            self.termination_log(container),
        ));
        mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        mounts
    }

    fn termination_log(&self, container: &Container) -> PathBuf {
        self.dir
            .0
            .join(format!("{}.termination-log", container.name))
    }

    /// `value` with a path in the container turned into the path here; a path
    /// outside every mount of the container fails the test.
    fn local(&self, container: &Container, value: &str) -> String {
        if !value.starts_with('/') {
            return value.to_string();
        }
        self.mounts(container)
            .into_iter()
            .find_map(|(path, local)| {
                let rest = value.strip_prefix(path.as_str())?;
                (rest.is_empty() || rest.starts_with('/'))
                    .then(|| format!("{}{rest}", local.display()))
            })
            .unwrap_or_else(|| {
                panic!(
                    "{}: container {} names {value}, which none of its volumes mounts",
                    self.name, container.name
                )
            })
    }

    /// The container's environment as it would see it: Secrets resolved, paths
    /// turned into this pod's directories, then `overrides` applied.
    fn env(
        &self,
        container: &Container,
        cluster: &Cluster,
        overrides: &[Override],
    ) -> Vec<(String, String)> {
        let env: Vec<(String, String)> = container
            .env
            .iter()
            .flatten()
            .map(|var: &EnvVar| {
                let value = match (&var.value, &var.value_from) {
                    (Some(value), _) => self.local(container, value),
                    (None, Some(from)) => {
                        let reference = from.secret_key_ref.as_ref().unwrap_or_else(|| {
                            panic!("{}: {} comes from a Secret", container.name, var.name)
                        });
                        cluster.secret(&reference.name, &reference.key)
                    }
                    (None, None) => String::new(),
                };
                (var.name.clone(), value)
            })
            .collect();
        for (name, rendered, _) in overrides {
            let value = env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
            assert_eq!(
                value,
                Some(*rendered),
                "{}: container {} sets {name}",
                self.name,
                container.name
            );
        }
        env.into_iter()
            .map(|(name, value)| {
                let value = overrides
                    .iter()
                    .find(|(k, _, _)| *k == name)
                    .map_or(value, |(_, _, v)| v.clone());
                (name, value)
            })
            .collect()
    }

    /// A command with the container's environment alone, plus the image's PATH, a
    /// home directory (`home`, or an empty one) and TMPDIR at its `/tmp` mount.
    fn command(
        &self,
        program: &Path,
        container: &Container,
        cluster: &Cluster,
        overrides: &[Override],
        home: Option<&Path>,
    ) -> Command {
        let default_home = self.dir.0.join(format!("{}.home", container.name));
        std::fs::create_dir_all(&default_home).expect("home directory");
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.unwrap_or(&default_home));
        if let Some((_, tmp)) = self
            .mounts(container)
            .into_iter()
            .find(|(p, _)| p == "/tmp")
        {
            command.env("TMPDIR", tmp);
        }
        command.envs(self.env(container, cluster, overrides));
        command
    }

    /// Runs the container's command and arguments: the operator's binary for the
    /// operator's image, bash for the scripts of the database image.
    fn run(
        &self,
        container: &Container,
        cluster: &Cluster,
        overrides: &[Override],
        home: Option<&Path>,
    ) -> Ran {
        let _ = std::fs::remove_file(self.termination_log(container));
        let command_line = container.command.clone().unwrap_or_default();
        let (program, rest) = command_line.split_first().unwrap_or_else(|| {
            panic!(
                "{}: container {} names its command",
                self.name, container.name
            )
        });
        let program = match program.as_str() {
            OPERATOR_IN_IMAGE => {
                assert_eq!(
                    container.image.as_deref(),
                    Some(Observed::default().operator_image()),
                    "{}: {} runs in the operator's image",
                    self.name,
                    container.name
                );
                PathBuf::from(env!("CARGO_BIN_EXE_webtoon-operator"))
            }
            "bash" => PathBuf::from("bash"),
            other => panic!("{}: {} runs {other}", self.name, container.name),
        };
        let args: Vec<String> = rest
            .iter()
            .chain(container.args.iter().flatten())
            .map(|a| self.local(container, a))
            .collect();
        let out = self
            .command(&program, container, cluster, overrides, home)
            .args(args)
            .output()
            .expect("the container's command runs");
        Ran {
            out,
            termination: std::fs::read_to_string(self.termination_log(container)).ok(),
        }
    }

    /// What the database image does on a first start: runs each `*.sh` of its init
    /// directory in name order, as `bash`, until one fails.
    fn run_init_scripts(
        &self,
        container: &Container,
        cluster: &Cluster,
        home: &Path,
    ) -> Vec<(String, Output)> {
        let dir = PathBuf::from(self.local(container, INIT_DIR));
        let mut scripts: Vec<String> = std::fs::read_dir(&dir)
            .expect("init directory")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sh"))
            .collect();
        scripts.sort();
        let mut ran = Vec::new();
        for script in scripts {
            let out = self
                .command(Path::new("bash"), container, cluster, &[], Some(home))
                .arg(dir.join(&script))
                .output()
                .expect("bash runs");
            let failed = !out.status.success();
            ran.push((script, out));
            if failed {
                break;
            }
        }
        ran
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The pod template of the CronJob `name`.
fn cron_job_pod(children: &Children, name: &str) -> PodSpec {
    children
        .cron_jobs
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
        .and_then(|c| c.spec.as_ref())
        .and_then(|s| s.job_template.spec.as_ref())
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_else(|| panic!("CronJob {name} has a pod template"))
}

/// The pod template of the database StatefulSet.
fn database_pod(children: &Children, stack: &str) -> PodSpec {
    let name = format!("{stack}-database");
    children
        .stateful_sets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name.as_str()))
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_else(|| panic!("StatefulSet {name} has a pod template"))
}

fn container_names(containers: Option<&Vec<Container>>) -> Vec<String> {
    containers
        .into_iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect()
}

/// The library's client on a container's bucket, to look at and damage what the
/// Jobs wrote.
struct Bucket {
    runtime: tokio::runtime::Runtime,
    store: BackupStore,
}

impl Bucket {
    fn new(env: &[(String, String)]) -> Bucket {
        let config = StoreConfig::from_vars(|var| {
            env.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
        })
        .expect("the container's environment configures a store");
        Bucket {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            store: BackupStore::connect(config).expect("store client"),
        }
    }

    fn names(&self) -> Vec<String> {
        let mut names = self
            .runtime
            .block_on(self.store.names())
            .expect("list the prefix");
        names.sort();
        names
    }

    fn read(&self, name: &str) -> Vec<u8> {
        self.runtime
            .block_on(self.store.read(name))
            .expect("read an object")
            .unwrap_or_else(|| panic!("{name} is in the bucket"))
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        self.runtime
            .block_on(self.store.write(name, bytes.to_vec()))
            .expect("write an object");
    }
}

/// The S3 server, both stacks rendered, and the cluster objects they read.
struct Chain {
    server: S3Server,
    source: Children,
    target: Children,
    cluster: Cluster,
}

impl Chain {
    fn start(name: &str) -> Chain {
        let server = S3Server::start(name, true);
        server.create_bucket(BUCKET);
        let source_stack = source_stack(&server.endpoint);
        let target_stack = target_stack(&server.endpoint);
        let cluster = Cluster::new(&[&source_stack, &target_stack], &server);
        Chain {
            source: render(&source_stack, &Observed::default()),
            target: render(&target_stack, &Observed::default()),
            server,
            cluster,
        }
    }

    /// A server with the source's rendered configuration, initialised by its
    /// StatefulSet's first start, holding the application's tables.
    fn source_database(&self, name: &str) -> MariaDb {
        let cnf = config_file(
            &self.source,
            &format!("{SOURCE}-database-config"),
            "webtoon.cnf",
        );
        let db = MariaDb::start(name, &cnf);
        let spec = database_pod(&self.source, SOURCE);
        assert_eq!(
            container_names(spec.init_containers.as_ref()),
            Vec::<String>::new(),
            "the source restores nothing"
        );
        let pod = Pod::new(
            "source database",
            &spec,
            &self.source,
            &self.cluster,
            &[("data", db.dir.0.join("data"))],
        );
        let ran = pod.run_init_scripts(
            &pod.container("mariadb", false),
            &self.cluster,
            &client_home(&db),
        );
        let names: Vec<&str> = ran.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["10-webtoon-init.sh"]);
        for (_, out) in ran {
            ok(out);
        }
        fill(&db);
        db
    }

    /// One run of the backup CronJob's pod against `db`: the dump step, then, as
    /// it succeeded, the upload. Returns the upload's run.
    fn backup(&self, db: &MariaDb) -> Ran {
        let spec = cron_job_pod(&self.source, &format!("{SOURCE}-database-backup"));
        assert_eq!(container_names(spec.init_containers.as_ref()), ["backup"]);
        assert_eq!(container_names(Some(&spec.containers)), ["upload"]);
        let pod = Pod::new("backup", &spec, &self.source, &self.cluster, &[]);
        let port = db.port.to_string();
        let dump = pod.run(
            &pod.container("backup", true),
            &self.cluster,
            &[
                (
                    "WEBTOON_DB_HOST",
                    "sourcetoon-database.webtoon.svc",
                    "127.0.0.1".to_string(),
                ),
                ("WEBTOON_DB_PORT", "3306", port),
            ],
            None,
        );
        assert!(dump.succeeded(), "the dump step: {}", dump.text());
        let upload = pod.run(&pod.container("upload", false), &self.cluster, &[], None);
        assert!(upload.succeeded(), "the upload: {}", upload.text());
        upload
    }

    /// The source's bucket, through the upload container's own configuration.
    fn bucket(&self) -> Bucket {
        let spec = cron_job_pod(&self.source, &format!("{SOURCE}-database-backup"));
        let pod = Pod::new("bucket", &spec, &self.source, &self.cluster, &[]);
        Bucket::new(&pod.env(&pod.container("upload", false), &self.cluster, &[]))
    }

    /// A first start of the target's database pod, its data volume still empty.
    fn target_pod(&self) -> Pod {
        let spec = database_pod(&self.target, TARGET);
        assert_eq!(
            container_names(spec.init_containers.as_ref()),
            ["fetch-backup"]
        );
        assert_eq!(container_names(Some(&spec.containers)), ["mariadb"]);
        // The claim of the StatefulSet's volumeClaimTemplate, new and empty.
        let mut pod = Pod::new("target database", &spec, &self.target, &self.cluster, &[]);
        let data = pod.dir.0.join("data");
        std::fs::create_dir_all(&data).expect("data volume");
        pod.attach("data", data);
        pod
    }

    fn verify_pod(&self) -> Pod {
        let spec = cron_job_pod(&self.source, &format!("{SOURCE}-database-verify"));
        assert_eq!(
            container_names(spec.init_containers.as_ref()),
            ["fetch-backup"]
        );
        assert_eq!(container_names(Some(&spec.containers)), ["verify"]);
        Pod::new("verify", &spec, &self.source, &self.cluster, &[])
    }
}

/// A home whose client configuration finds `db`'s socket, as the image's clients
/// find the image's own.
fn client_home(db: &MariaDb) -> PathBuf {
    let home = db.dir.0.join("home");
    std::fs::create_dir_all(&home).expect("home");
    std::fs::write(
        home.join(".my.cnf"),
        format!("[client]\nsocket={}\n", db.socket().display()),
    )
    .expect("write ~/.my.cnf");
    home
}

/// Four tables, one of them empty, as the application user.
fn fill(db: &MariaDb) {
    ok(db.as_user(
        "webtoon",
        APP_PASSWORD,
        "USE webtoon;
         CREATE TABLE series (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(200) NOT NULL) CHARACTER SET utf8mb4;
         CREATE TABLE episodes (id INT PRIMARY KEY AUTO_INCREMENT, series_id INT NOT NULL, title VARCHAR(200) NOT NULL, body TEXT, KEY (series_id)) CHARACTER SET utf8mb4;
         CREATE TABLE images (id INT PRIMARY KEY AUTO_INCREMENT, episode_id INT NOT NULL, png LONGBLOB NOT NULL);
         CREATE TABLE bookmarks (user_id INT NOT NULL, episode_id INT NOT NULL, PRIMARY KEY (user_id, episode_id));
         INSERT INTO series (title) SELECT CONCAT('시리즈 ', seq) FROM seq_1_to_20;
         INSERT INTO episodes (series_id, title, body) SELECT seq % 20 + 1, CONCAT('화 ', seq, ' 🎨'), REPEAT(SHA2(seq, 256), seq % 7) FROM seq_1_to_1500;
         INSERT INTO images (episode_id, png) SELECT seq, UNHEX(REPEAT(SHA2(seq, 512), 16)) FROM seq_1_to_300;",
    ));
}

/// The site's writes between two backups.
fn write_round(db: &MariaDb, round: usize) {
    ok(db.as_user(
        "webtoon",
        APP_PASSWORD,
        &format!(
            "USE webtoon;
             INSERT INTO bookmarks SELECT {round}, seq FROM seq_1_to_{rows};
             UPDATE episodes SET body = CONCAT(IFNULL(body, ''), '{round}') WHERE id % 10 = {round};
             DELETE FROM images WHERE id = {round};",
            rows = round * 50
        ),
    ));
}

/// Every base table of the application database: (name, rows, CHECKSUM TABLE).
fn table_facts(db: &MariaDb) -> Vec<(String, String, String)> {
    let names = ok(db.root(
        "SELECT table_name FROM information_schema.tables
         WHERE table_schema = 'webtoon' AND table_type = 'BASE TABLE' ORDER BY BINARY table_name",
    ));
    names
        .lines()
        .map(|table| {
            let rows = ok(db.root(&format!("SELECT COUNT(*) FROM webtoon.`{table}`")));
            let checksum = ok(db.root(&format!("CHECKSUM TABLE webtoon.`{table}`")));
            let checksum = checksum.rsplit('\t').next().unwrap_or_default().to_string();
            assert!(
                checksum.parse::<u64>().is_ok(),
                "{table} has a checksum: {checksum}"
            );
            (table.to_string(), rows, checksum)
        })
        .collect()
}

/// Waits until the UTC second after `since`, so the next backup's name (the time
/// it starts, to the second) follows the previous one's, as a schedule's would.
fn wait_for_the_next_second(since: SystemTime) {
    let second = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    while second(SystemTime::now()) <= second(since) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `rounds` backup pods, the site writing before each but the first; returns
/// the names of the backups, oldest first.
fn scheduled_backups(chain: &Chain, db: &MariaDb, rounds: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut finished = None;
    for round in 1..=rounds {
        if round > 1 {
            write_round(db, round);
        }
        if let Some(finished) = finished {
            wait_for_the_next_second(finished);
        }
        let started = Instant::now();
        let upload = chain.backup(db);
        finished = Some(SystemTime::now());
        let report = upload.backup_report();
        let name = report.name.clone().expect("the report names the backup");
        assert_eq!(report.result, "ok", "{report:?}");
        assert_eq!(
            report.location.as_deref(),
            Some(format!("s3://{BUCKET}/{PREFIX}{name}").as_str()),
            "{report:?}"
        );
        assert_eq!(report.tables, Some(4), "{report:?}");
        assert_eq!(report.message, None);
        let stdout = String::from_utf8_lossy(&upload.out.stdout);
        assert!(
            stdout.contains(&format!(
                " kept={} pruned={}",
                round.min(KEEP),
                usize::from(round > KEEP)
            )),
            "round {round}: {}",
            upload.text()
        );
        eprintln!(
            "backup pod {round}: {} ms: {}",
            started.elapsed().as_millis(),
            stdout.trim()
        );
        names.push(name);
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted, names,
        "each backup has a name of its own, in time order"
    );
    names
}

#[test]
fn scheduled_backups_keep_two_in_the_bucket_and_the_newest_restores_a_new_stack_identically() {
    let started = Instant::now();
    let chain = Chain::start("backup-chain-s3");
    let source = chain.source_database("backup-chain-source");
    eprintln!(
        "S3 server and source database: {} ms",
        started.elapsed().as_millis()
    );

    let names = scheduled_backups(&chain, &source, 3);
    let bucket = chain.bucket();
    let listed = bucket.names();
    let catalog = Catalog::new(listed.iter().map(String::as_str), "webtoon");
    assert_eq!(catalog.described, names[names.len() - KEEP..], "{listed:?}");
    let mut expected: Vec<String> = names[names.len() - KEEP..]
        .iter()
        .flat_map(|n| [n.clone(), description_name(n)])
        .collect();
    expected.sort();
    assert_eq!(listed, expected, "nothing else in the bucket");
    assert_eq!(
        chain.server.open_multipart_uploads(BUCKET),
        0,
        "no upload left unfinished"
    );
    let newest = names.last().expect("backups").clone();
    let source_facts = table_facts(&source);

    // The new stack's database pod: the init container fetches the newest backup
    // into the scratch volume, then the image's first start runs the init script
    // and the restore script.
    let restore_started = Instant::now();
    let mut pod = chain.target_pod();
    let fetch = pod.run(
        &pod.container("fetch-backup", true),
        &chain.cluster,
        &[],
        None,
    );
    assert!(fetch.succeeded(), "{}", fetch.text());
    assert!(
        String::from_utf8_lossy(&fetch.out.stdout)
            .starts_with(&format!("backup fetched: database=webtoon file={newest} ")),
        "{}",
        fetch.text()
    );
    assert_eq!(
        files(pod.volume("staging")),
        [newest.clone(), description_name(&newest)]
    );
    let cnf = config_file(
        &chain.target,
        &format!("{TARGET}-database-config"),
        "webtoon.cnf",
    );
    let target = MariaDb::start("backup-chain-target", &cnf);
    // The server's first start initialised its data directory: that is the volume now.
    pod.attach("data", target.dir.0.join("data"));
    let mariadb = pod.container("mariadb", false);
    let ran = pod.run_init_scripts(&mariadb, &chain.cluster, &client_home(&target));
    let names_run: Vec<&str> = ran.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names_run, ["10-webtoon-init.sh", "20-webtoon-restore.sh"]);
    let mut logs = Vec::new();
    for (_, out) in ran {
        logs.push(ok(out));
    }
    let restored = logs.last().expect("the restore's log");
    assert!(
        restored.contains(&format!("restore ok: database=webtoon file={newest} "))
            && restored.contains("described=yes tables=4"),
        "{restored}"
    );
    let marker = pod
        .env(&mariadb, &chain.cluster, &[])
        .into_iter()
        .find(|(k, _)| k == "WEBTOON_RESTORE_MARKER")
        .map(|(_, v)| PathBuf::from(v))
        .expect("the database container names its restore marker");
    assert!(
        marker.starts_with(target.dir.0.join("data")),
        "{}",
        marker.display()
    );
    assert!(!marker.exists(), "a complete restore clears its marker");
    let target_facts = table_facts(&target);
    assert_eq!(
        target_facts, source_facts,
        "every table's rows and CHECKSUM TABLE"
    );
    eprintln!(
        "restore (fetch, server start, init and restore scripts): {} ms; tables {target_facts:?}",
        restore_started.elapsed().as_millis()
    );

    // A restart of the pod finds a database on the volume and fetches nothing.
    let restart = Pod::new(
        "restarted target database",
        &database_pod(&chain.target, TARGET),
        &chain.target,
        &chain.cluster,
        &[("data", target.dir.0.join("data"))],
    );
    let fetch = restart.run(
        &restart.container("fetch-backup", true),
        &chain.cluster,
        &[],
        None,
    );
    assert!(fetch.succeeded(), "{}", fetch.text());
    assert!(
        String::from_utf8_lossy(&fetch.out.stdout).contains("backup fetch skipped"),
        "{}",
        fetch.text()
    );
    assert_eq!(files(restart.volume("staging")), Vec::<String>::new());
    eprintln!("whole test: {} ms", started.elapsed().as_millis());
}

#[test]
fn a_damaged_newest_backup_is_refused_by_restore_and_verify_and_verifies_once_sound() {
    let started = Instant::now();
    let chain = Chain::start("backup-chain-damage-s3");
    let source = chain.source_database("backup-chain-damage-source");
    let names = scheduled_backups(&chain, &source, 2);
    let newest = names.last().expect("backups").clone();
    let location = format!("s3://{BUCKET}/{PREFIX}{newest}");
    let bucket = chain.bucket();
    let sound = bucket.read(&newest);
    bucket.write(&newest, &sound[..sound.len() / 2]);
    let truncated = format!(
        "{location} is truncated: {} bytes, its description says {}",
        sound.len() / 2,
        sound.len()
    );

    // The new stack's database never starts from it: the init container fails,
    // leaving nothing to load.
    let pod = chain.target_pod();
    let fetch = pod.run(
        &pod.container("fetch-backup", true),
        &chain.cluster,
        &[],
        None,
    );
    assert!(!fetch.succeeded(), "{}", fetch.text());
    assert!(
        String::from_utf8_lossy(&fetch.out.stderr).contains(&truncated),
        "{}",
        fetch.text()
    );
    assert_eq!(files(pod.volume("staging")), Vec::<String>::new());

    // The verification fails in its fetch, and reports it.
    let verify_started = Instant::now();
    let pod = chain.verify_pod();
    let fetch = pod.run(
        &pod.container("fetch-backup", true),
        &chain.cluster,
        &[],
        None,
    );
    assert!(!fetch.succeeded(), "{}", fetch.text());
    assert!(
        String::from_utf8_lossy(&fetch.out.stderr).contains(&truncated),
        "{}",
        fetch.text()
    );
    let report = fetch.verify_report();
    assert_eq!(report.result, "failed", "{report:?}");
    assert_eq!(report.name.as_deref(), Some(newest.as_str()));
    assert!(
        report
            .message
            .as_deref()
            .is_some_and(|m| m.contains(&truncated)),
        "{report:?}"
    );
    assert_eq!(files(pod.volume("staging")), Vec::<String>::new());

    // Sound again: the next verification fetches it, loads it into its throwaway
    // server and passes.
    bucket.write(&newest, &sound);
    let pod = chain.verify_pod();
    let fetch = pod.run(
        &pod.container("fetch-backup", true),
        &chain.cluster,
        &[],
        None,
    );
    assert!(fetch.succeeded(), "{}", fetch.text());
    let verify = pod.run(&pod.container("verify", false), &chain.cluster, &[], None);
    assert!(verify.succeeded(), "{}", verify.text());
    let log = String::from_utf8_lossy(&verify.out.stdout);
    assert!(
        log.starts_with(&format!(
            "verify passed: database=webtoon file={newest} tables=4 "
        )),
        "{}",
        verify.text()
    );
    let report = verify.verify_report();
    assert_eq!(report.result, "passed", "{report:?}");
    assert_eq!(report.name.as_deref(), Some(newest.as_str()));
    assert_eq!(report.tables, Some(4));
    assert_eq!(report.message, None);
    assert_eq!(
        files(pod.volume("work")),
        Vec::<String>::new(),
        "the throwaway server's directory is gone"
    );
    eprintln!(
        "verify pods: {} ms; {}; whole test: {} ms",
        verify_started.elapsed().as_millis(),
        log.trim(),
        started.elapsed().as_millis()
    );
}
