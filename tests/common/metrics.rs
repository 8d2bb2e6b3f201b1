//! Prometheus exporters as the tests run them: the binaries `e2e/tools/build.sh`
//! builds from their Go modules, started on 127.0.0.1 and stopped on drop, and their
//! `/metrics` scraped over HTTP and read in the text exposition format.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{terminate, wait_for_port};

/// An exporter binary named by `env_var`, which tests/run.sh sets from
/// `e2e/tools/build.sh <tool>`.
pub fn exporter_binary(env_var: &str, tool: &str) -> PathBuf {
    let path = std::env::var(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            panic!(
                "{env_var} is not set: run the tests with tests/run.sh, or set it to the path \
             `e2e/tools/build.sh {tool}` prints"
            )
        });
    assert!(path.exists(), "{env_var}={} does not exist", path.display());
    path
}

/// One sample of a scrape: metric name, labels and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name, with any `_bucket`/`_count`/`_sum` suffix.
    pub name: String,
    /// Labels by name.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// One scrape of an exporter.
#[derive(Clone, Debug)]
pub struct Scrape {
    /// Every sample, in the order served.
    pub samples: Vec<Sample>,
    /// The text as served.
    pub text: String,
}

impl Scrape {
    /// Samples of `name` whose labels include every pair of `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The sum of the samples of `name` whose labels include `labels`; 0 when none
    /// (a counter whose label set has not been seen yet).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// The value of the one sample of `name` with `labels`; fails when there is none.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self.matching(name, labels).collect();
        assert_eq!(
            found.len(),
            1,
            "one sample {name}{labels:?} in the scrape:\n{}",
            self.text
        );
        found[0].value
    }
}

/// Parses the text exposition format: `name{label="value",...} value [timestamp]`.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            (
                &line[..open],
                parse_labels(&line[open + 1..close]),
                &line[close + 1..],
            )
        }
        None => {
            let (name, rest) = line.split_once(' ')?;
            (name, BTreeMap::new(), rest)
        }
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `a="x",b="y\"z"` as a map; values unescaped.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() || chars.next() != Some('"') {
            return labels;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => {}
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(name.trim().to_string(), value);
    }
}

/// Fetches `http://127.0.0.1:<port>/metrics` with curl and parses it.
pub fn scrape(port: u16) -> Scrape {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "20"])
        .arg(&url)
        .output()
        .expect("curl runs (install curl)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "scrape {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Scrape {
        samples: parse(&text),
        text,
    }
}

/// Scrapes `port` until `ready` holds for a scrape, or `within` passes; returns the
/// last scrape, for the caller to assert on.
pub fn scrape_until(port: u16, within: Duration, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + within;
    loop {
        let scrape = scrape(port);
        if ready(&scrape) || Instant::now() >= deadline {
            return scrape;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running exporter, its stdout and stderr in a log file; stopped when dropped.
pub struct Exporter {
    child: Child,
    /// Its metrics port on 127.0.0.1.
    pub port: u16,
    log: PathBuf,
}

impl Exporter {
    /// Starts `binary` with `args` and exactly the environment `env`, logging to
    /// `log`, and waits until it listens on `port` of 127.0.0.1.
    pub fn start(
        binary: &Path,
        args: &[String],
        env: &[(String, String)],
        port: u16,
        log: PathBuf,
    ) -> Exporter {
        let file = std::fs::File::create(&log).expect("exporter log file");
        let child = Command::new(binary)
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file handle"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", binary.display()));
        let mut exporter = Exporter { child, port, log };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if !wait_for_port(addr, Duration::from_secs(20)) {
            let exited = exporter.child.try_wait();
            panic!(
                "{} does not listen on {addr} ({exited:?}):\n{}",
                binary.display(),
                exporter.log()
            );
        }
        exporter
    }

    /// What the exporter has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Scrapes its `/metrics`.
    pub fn scrape(&self) -> Scrape {
        scrape(self.port)
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// `args` with every `--web.listen-address=:<port>` (all interfaces, as in a pod)
/// bound to 127.0.0.1 instead.
pub fn on_loopback(args: Vec<String>) -> Vec<String> {
    args.into_iter()
        .map(|a| match a.strip_prefix("--web.listen-address=:") {
            Some(port) => format!("--web.listen-address=127.0.0.1:{port}"),
            None => a,
        })
        .collect()
}
