//! The `webtoon-operator` command line.

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use webtoon_operator::api::crd_yaml;
use webtoon_operator::controller::rbac;
use webtoon_operator::manifest::{parse_stacks, render_yaml, validated};
use webtoon_operator::render::Observed;
use webtoon_operator::{Error, Result};

/// Kubernetes operator for webtoon serving stacks.
#[derive(Parser)]
#[command(name = "webtoon-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Upload a backup to, or fetch one from, S3-compatible object storage: what the
    /// backup, restore and verify Jobs run, since the operator's image has no shell.
    Backup {
        #[command(subcommand)]
        command: webtoon_operator::backup::command::BackupCommand,
    },
    /// Print the WebtoonStack CustomResourceDefinition as YAML.
    Crd,
    /// Print the operator's RBAC role: a ClusterRole, or with `--namespace` a Role for
    /// an operator that watches only that namespace.
    /// Exit 0 when an HTTP URL answers 200, else 1: the chart's `helm test` checks
    /// `/readyz` with it, since the operator's image has no shell or curl.
    Probe {
        /// `http://host:port/path`.
        #[arg(long)]
        url: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    Rbac {
        /// Namespace of a Role for `run --namespace`.
        #[arg(long)]
        namespace: Option<String>,
        /// Print instead the Role for the leader Lease in this namespace
        /// (`run --leader-elect`).
        #[arg(long, conflicts_with = "namespace")]
        leader_election_namespace: Option<String>,
    },
    /// Print every child object of the stacks in a file, offline, as YAML that
    /// `kubectl apply -f -` accepts. The credentials Secret is left out: the operator
    /// generates it in the cluster.
    Render {
        /// Manifest file with one or more WebtoonStacks; `-` reads standard input.
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// Namespace for stacks that name none.
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// Render as at this time (RFC 3339), to preview scaling schedules.
        #[arg(long)]
        at: Option<jiff::Timestamp>,
        /// The operator's image, which backup Jobs run to reach a bucket (default:
        /// this version's published image, as `run` uses unless
        /// `$WEBTOON_OPERATOR_IMAGE` names another).
        #[arg(long)]
        operator_image: Option<String>,
    },
    /// Check the stacks in a file against every rule of the API; exit 1 if any fails.
    Validate {
        /// Manifest file with one or more WebtoonStacks; `-` reads standard input.
        #[arg(short = 'f', long = "filename")]
        file: String,
    },
    /// Run the controller.
    Run {
        /// Watch only this namespace (the default is every namespace).
        #[arg(long)]
        namespace: Option<String>,
        /// Address of the /metrics, /healthz and /readyz server.
        #[arg(long, default_value = "0.0.0.0:8080")]
        metrics_address: std::net::SocketAddr,
        /// Log format: `text` for people, `json` for log pipelines.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
        /// Reconcile only while holding the leader Lease, for more than one replica.
        #[arg(long)]
        leader_elect: bool,
        /// Namespace of the leader Lease (default: `$POD_NAMESPACE`, else `default`).
        #[arg(long)]
        lease_namespace: Option<String>,
        /// Name of the leader Lease.
        #[arg(long, default_value = "webtoon-operator")]
        lease_name: String,
    },
}

/// The HTTP status `url` (`http://host[:port][/path]`) answers a GET with.
async fn probe(url: &str) -> std::result::Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "only http:// URLs are probed".to_string())?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: webtoon-operator-probe\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    text.lines()
        .next()
        .and_then(|status| status.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            format!(
                "not an HTTP answer: {:?}",
                text.lines().next().unwrap_or_default()
            )
        })
}

/// This process as the leader Lease names it: the pod name in a cluster, else the
/// host name and process id.
fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "webtoon-operator".to_string());
        format!("{host}-{}", std::process::id())
    })
}

/// Resolves when the process is asked to stop (SIGTERM or SIGINT).
async fn stop_requested() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Runs the controller while this replica holds the leader Lease: stands by until
/// it is free, reconciles while renewing it, and hands it over on SIGTERM. A lost
/// Lease ends the process, whose restart campaigns again.
async fn run_elected(
    client: kube::Client,
    namespace: Option<String>,
    metrics: std::sync::Arc<webtoon_operator::metrics::Metrics>,
    lease: webtoon_operator::controller::leader::LeaseConfig,
) -> Result<()> {
    use webtoon_operator::controller::leader::Elector;
    let mut elector = Elector::new(client.clone(), lease.clone());
    metrics.set_standby(true);
    tracing::info!(lease = %lease.name, namespace = %lease.namespace, identity = %lease.identity, "standing by for the leader Lease");
    tokio::select! {
        () = elector.acquire(|holder| metrics.set_leader_identity(holder)) => {}
        _ = stop_requested() => {
            tracing::info!("stopped while standing by");
            return Ok(());
        }
    }
    metrics.set_standby(false);
    tracing::info!(identity = %lease.identity, "holding the leader Lease: reconciling");
    let outcome = tokio::select! {
        ran = webtoon_operator::controller::run(client, namespace, metrics.clone()) => ran,
        lost = elector.hold() => Err(lost),
    };
    metrics.set_watching(false);
    if !matches!(outcome, Err(Error::LeaseLost { .. })) {
        match elector.release().await {
            Ok(()) => tracing::info!("released the leader Lease"),
            Err(error) => {
                tracing::warn!(%error, "cannot release the leader Lease; it expires on its own")
            }
        }
    }
    outcome
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn run_controller(
    namespace: Option<String>,
    metrics_address: std::net::SocketAddr,
    lease: Option<webtoon_operator::controller::leader::LeaseConfig>,
) -> Result<()> {
    // kube's TLS stack panics when more than one rustls provider is linked (feature
    // unification can bring in aws-lc-rs beside ring); naming one removes the guess.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_default()
        .await
        .map_err(|e| Error::Startup {
            what: "configure a Kubernetes client from KUBECONFIG or the in-cluster service account"
                .to_string(),
            message: e.to_string(),
        })?;
    let listener = tokio::net::TcpListener::bind(metrics_address)
        .await
        .map_err(|e| Error::Startup {
            what: format!("listen on {metrics_address} for metrics and health checks"),
            message: e.to_string(),
        })?;
    let metrics = std::sync::Arc::new(webtoon_operator::metrics::Metrics::default());
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(webtoon_operator::metrics::serve(
        listener,
        metrics.clone(),
        async move {
            let _ = server_stopped.await;
        },
    ));
    tracing::info!(%metrics_address, namespace = namespace.as_deref().unwrap_or("*"), "webtoon-operator starting");
    let outcome = match lease {
        Some(lease) => run_elected(client, namespace, metrics, lease).await,
        None => webtoon_operator::controller::run(client, namespace, metrics).await,
    };
    let _ = stop_server.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(Error::Startup {
                what: format!("serve metrics on {metrics_address}"),
                message: e.to_string(),
            });
        }
        Err(e) => tracing::warn!(error = %e, "metrics server task ended abnormally"),
    }
    outcome?;
    tracing::info!("webtoon-operator stopped");
    Ok(())
}

fn read_source(file: &str) -> Result<String> {
    let io_error = |source| Error::Io {
        path: file.to_string(),
        source,
    };
    if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(io_error)?;
        Ok(text)
    } else {
        std::fs::read_to_string(file).map_err(io_error)
    }
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Backup { command } => return Ok(command.run()),
        Command::Crd => {
            let yaml = crd_yaml().map_err(|e| Error::Serialize {
                what: "CustomResourceDefinition".to_string(),
                message: e.to_string(),
            })?;
            print!("{yaml}");
        }
        Command::Probe { url, timeout } => {
            let runtime = tokio::runtime::Runtime::new().map_err(|e| Error::Startup {
                what: "start the async runtime".to_string(),
                message: e.to_string(),
            })?;
            let answer = runtime.block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(timeout), probe(&url))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {timeout} s")))
            });
            return Ok(match answer {
                Ok(status) if status == 200 => {
                    println!("{url}: {status}");
                    ExitCode::SUCCESS
                }
                Ok(status) => {
                    eprintln!("{url}: {status}");
                    ExitCode::FAILURE
                }
                Err(why) => {
                    eprintln!("{url}: {why}");
                    ExitCode::FAILURE
                }
            });
        }
        Command::Rbac {
            namespace,
            leader_election_namespace,
        } => {
            let yaml = match (namespace, leader_election_namespace) {
                (_, Some(lease)) => serde_saphyr::to_string(&rbac::leader_election_role(&lease)),
                (Some(namespace), None) => serde_saphyr::to_string(&rbac::role(&namespace)),
                (None, None) => serde_saphyr::to_string(&rbac::cluster_role()),
            }
            .map_err(|e| Error::Serialize {
                what: "operator role".to_string(),
                message: e.to_string(),
            })?;
            print!("{yaml}");
        }
        Command::Render {
            file,
            namespace,
            at,
            operator_image,
        } => {
            let text = read_source(&file)?;
            let observed = Observed {
                now: at,
                operator_image,
                ..Observed::default()
            };
            for mut stack in parse_stacks(&file, &text)? {
                if stack.metadata.namespace.is_none() {
                    stack.metadata.namespace = namespace.clone();
                }
                print!("{}", render_yaml(&validated(&stack)?, &observed)?);
            }
        }
        Command::Validate { file } => {
            let text = read_source(&file)?;
            for stack in parse_stacks(&file, &text)? {
                let stack = validated(&stack)?;
                println!("{}/{}: valid", stack.namespace, stack.name);
            }
        }
        Command::Run {
            namespace,
            metrics_address,
            log_format,
            leader_elect,
            lease_namespace,
            lease_name,
        } => {
            init_tracing(log_format);
            let lease = leader_elect.then(|| webtoon_operator::controller::leader::LeaseConfig {
                namespace: lease_namespace
                    .or_else(|| std::env::var("POD_NAMESPACE").ok())
                    .unwrap_or_else(|| "default".to_string()),
                name: lease_name,
                identity: identity(),
            });
            let runtime = tokio::runtime::Runtime::new().map_err(|e| Error::Startup {
                what: "start the async runtime".to_string(),
                message: e.to_string(),
            })?;
            runtime.block_on(run_controller(namespace, metrics_address, lease))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
