//! A small webtoon application server (WAS) that runs behind the operator's proxy:
//! an episode list read from MariaDB and cached in Redis, episode images from the
//! shared volume, a health check, a WebSocket echo and an admin page. It reads its
//! settings from exactly the environment the operator injects (`WEBTOON_*`), and on
//! SIGTERM it stops accepting connections and finishes the requests in flight.
//!
//! `demo-was migrate` is its database migration, the command a stack's
//! `spec.was.migration.command` names: it creates the schema (the same SQL the server
//! runs at startup), retrying for a while because the database may have just become
//! ready, and exits 0 once the schema exists, non-zero with a one-line reason on
//! stderr otherwise. It reads only the `WEBTOON_DB_*` variables, and
//! `DEMO_WAS_MIGRATE_TIMEOUT_SECONDS` (default 30) bounds how long it keeps trying.
//!
//! ```sh
//! cargo run --example demo-was            # with WEBTOON_DB_*, WEBTOON_REDIS_*, WEBTOON_IMAGES_DIR ...
//! cargo run --example demo-was migrate    # with WEBTOON_DB_*
//! ```

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// Redis key of the cached episode list.
const EPISODES_KEY: &str = "webtoon:episodes:v1";
/// How long the cached episode list lives, in seconds.
const EPISODES_TTL: u64 = 30;
/// Response header that says whether the episode list came from Redis.
const CACHE_HEADER: &str = "x-cache";
/// The application's only table; `IF NOT EXISTS` lets the server and any number of
/// migrations run it again.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS episodes (
   id BIGINT PRIMARY KEY AUTO_INCREMENT,
   title VARCHAR(200) NOT NULL,
   image VARCHAR(200) NOT NULL
 ) CHARACTER SET utf8mb4";
/// The pause between attempts to create the schema.
const SCHEMA_RETRY: Duration = Duration::from_secs(2);
/// Seconds `demo-was migrate` keeps trying, unless `MIGRATE_TIMEOUT_VAR` says
/// otherwise: the migration Job's own timeout is 30 s at the least.
const MIGRATE_TIMEOUT: u64 = 30;
/// Not `WEBTOON_*`: the operator keeps those names to itself, and a stack sets this
/// one in `spec.was.migration.env`.
const MIGRATE_TIMEOUT_VAR: &str = "DEMO_WAS_MIGRATE_TIMEOUT_SECONDS";
const USAGE: &str = "usage: demo-was            serve the application
       demo-was migrate    create the database schema, then exit";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Settings, from the variables the operator injects into WAS pods.
struct Settings {
    db: mysql_async::Opts,
    redis_url: String,
    images_dir: PathBuf,
    images_url_path: String,
    port: u16,
}

fn var(name: &str) -> Result<String, BoxError> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

/// Percent-encodes a URL user-info part, so any password fits in a Redis URL.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The database settings alone: all a migration needs, so that it runs without the
/// cache or the image volume.
fn db_from_env() -> Result<mysql_async::Opts, BoxError> {
    let host = var("WEBTOON_DB_HOST")?;
    let port = var("WEBTOON_DB_PORT")?;
    let port: u16 = port
        .parse()
        .map_err(|e| format!("WEBTOON_DB_PORT {port:?}: {e}"))?;
    Ok(mysql_async::OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port)
        .db_name(Some(var("WEBTOON_DB_NAME")?))
        .user(Some(var("WEBTOON_DB_USER")?))
        .pass(Some(var("WEBTOON_DB_PASSWORD")?))
        .into())
}

/// Creates the application's table, or leaves it as it is.
async fn create_schema(conn: &mut mysql_async::Conn) -> Result<(), mysql_async::Error> {
    conn.query_drop(SCHEMA).await
}

impl Settings {
    fn from_env() -> Result<Self, BoxError> {
        // An external Redis may use the default user: the user name is optional.
        let user = std::env::var("WEBTOON_REDIS_USER").unwrap_or_default();
        let redis_url = format!(
            "redis://{}:{}@{}:{}/",
            encode(&user),
            encode(&var("WEBTOON_REDIS_PASSWORD")?),
            var("WEBTOON_REDIS_HOST")?,
            var("WEBTOON_REDIS_PORT")?.parse::<u16>()?
        );
        Ok(Settings {
            db: db_from_env()?,
            redis_url,
            images_dir: PathBuf::from(var("WEBTOON_IMAGES_DIR")?),
            images_url_path: var("WEBTOON_IMAGES_URL_PATH")?
                .trim_end_matches('/')
                .to_string(),
            port: var("WEBTOON_PORT")?.parse()?,
        })
    }
}

/// What every handler shares.
#[derive(Clone)]
struct App {
    db: mysql_async::Pool,
    redis: redis::Client,
    /// One multiplexed Redis connection, opened on first use and again after an error.
    redis_conn: Arc<Mutex<Option<redis::aio::MultiplexedConnection>>>,
    images_dir: Arc<PathBuf>,
    schema_ready: Arc<AtomicBool>,
    in_flight: Arc<AtomicUsize>,
}

/// One episode of the list.
#[derive(Serialize, Deserialize)]
struct Episode {
    id: i64,
    title: String,
    image: String,
}

/// A failed request: logged, and answered with a status and a short reason.
struct Failure(StatusCode, String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        tracing::warn!(status = %self.0, reason = %self.1, "request failed");
        (self.0, self.1).into_response()
    }
}

impl App {
    async fn redis(&self) -> Result<redis::aio::MultiplexedConnection, redis::RedisError> {
        let mut slot = self.redis_conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = self.redis.get_multiplexed_async_connection().await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn redis_failed(&self) {
        *self.redis_conn.lock().await = None;
    }

    /// Creates the application's table; retried until the database answers.
    async fn migrate(&self) -> Result<(), mysql_async::Error> {
        create_schema(&mut self.db.get_conn().await?).await
    }
}

async fn episodes(State(app): State<App>) -> Result<Response, Failure> {
    let cached: Option<String> = match app.redis().await {
        Ok(mut conn) => match redis::cmd("GET")
            .arg(EPISODES_KEY)
            .query_async(&mut conn)
            .await
        {
            Ok(value) => value,
            Err(e) => {
                // The cache is an optimisation: fall back to the database.
                tracing::warn!(error = %e, "redis GET failed");
                app.redis_failed().await;
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "redis unreachable");
            None
        }
    };
    let (body, cache) = match cached {
        Some(body) => (body, "hit"),
        None => {
            let mut conn = app.db.get_conn().await?;
            let rows: Vec<(i64, String, String)> = conn
                .query("SELECT id, title, image FROM episodes ORDER BY id")
                .await?;
            let list: Vec<Episode> = rows
                .into_iter()
                .map(|(id, title, image)| Episode { id, title, image })
                .collect();
            let body = serde_json::to_string(&list)?;
            if let Ok(mut conn) = app.redis().await {
                let set: Result<(), _> = redis::cmd("SET")
                    .arg(EPISODES_KEY)
                    .arg(&body)
                    .arg("EX")
                    .arg(EPISODES_TTL)
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = set {
                    tracing::warn!(error = %e, "redis SET failed");
                    app.redis_failed().await;
                }
            }
            (body, "miss")
        }
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::HeaderName::from_static(CACHE_HEADER),
                HeaderValue::from_static(cache),
            ),
        ],
        body,
    )
        .into_response())
}

/// The file under `root` that a URL path names, or `None` for anything that could
/// leave it (`..`, absolute parts, hidden files).
fn image_path(root: &Path, url_path: &str) -> Option<PathBuf> {
    let relative = Path::new(url_path);
    let safe = relative.components().all(|c| match c {
        Component::Normal(part) => !part.to_string_lossy().starts_with('.'),
        _ => false,
    });
    (safe && !url_path.is_empty()).then(|| root.join(relative))
}

async fn image(
    State(app): State<App>,
    axum::extract::Path(path): axum::extract::Path<String>,
) -> Response {
    let Some(file) = image_path(&app.images_dir, &path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let content_type = match file.extension().and_then(|e| e.to_str()) {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("avif") => "image/avif",
        _ => "application/octet-stream",
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Ready when the schema exists and both the database and Redis answer.
async fn healthz(State(app): State<App>) -> Result<&'static str, Failure> {
    if !app.schema_ready.load(Ordering::Acquire) {
        return Err(Failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "database schema not ready".to_string(),
        ));
    }
    app.db.get_conn().await?.ping().await?;
    let mut conn = app.redis().await?;
    if let Err(e) = redis::cmd("PING").query_async::<String>(&mut conn).await {
        app.redis_failed().await;
        return Err(e.into());
    }
    Ok("ok")
}

async fn ws(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            Message::Close(_) => break,
            _ => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

/// The admin page; the proxy lets only administrator networks reach it.
async fn admin(State(app): State<App>) -> Result<Response, Failure> {
    let mut conn = app.db.get_conn().await?;
    let count: Option<i64> = conn.query_first("SELECT COUNT(*) FROM episodes").await?;
    let body = serde_json::json!({
        "episodes": count.unwrap_or(0),
        "inFlight": app.in_flight.load(Ordering::Acquire),
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}

#[derive(Deserialize)]
struct Work {
    ms: Option<u64>,
}

/// A page that takes `ms` milliseconds (at most 10 s) to render, to watch a
/// graceful shutdown finish it.
async fn work(Query(work): Query<Work>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(work.ms.unwrap_or(0).min(10_000))).await;
    "done"
}

/// Counts requests in flight, for the admin page.
async fn count_in_flight(State(app): State<App>, request: Request, next: Next) -> Response {
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
    app.in_flight.fetch_add(1, Ordering::AcqRel);
    let _guard = Guard(app.in_flight.clone());
    next.run(request).await
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// `demo-was migrate`: the schema, created within the timeout, then exit. The error
/// names the database, since that is what whoever reads a failed Job's log checks.
async fn migrate() -> Result<(), String> {
    let db = db_from_env().map_err(|e| e.to_string())?;
    let timeout = match std::env::var(MIGRATE_TIMEOUT_VAR) {
        Err(_) => MIGRATE_TIMEOUT,
        Ok(text) => match text.parse::<u64>() {
            Ok(seconds) if seconds > 0 => seconds,
            _ => {
                return Err(format!(
                    "{MIGRATE_TIMEOUT_VAR} is {text:?}: give a whole number of seconds above 0"
                ));
            }
        },
    };
    let address = format!("{}:{}", db.ip_or_hostname(), db.tcp_port());
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        // The deadline bounds each attempt too: a host that drops packets would
        // otherwise hold the connection attempt past it.
        let attempt = tokio::time::timeout_at(deadline, async {
            let mut conn = mysql_async::Conn::new(db.clone()).await?;
            create_schema(&mut conn).await?;
            conn.disconnect().await
        })
        .await;
        let reason = match attempt {
            Ok(Ok(())) => {
                tracing::info!(database = %address, attempts, "schema ready");
                return Ok(());
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {timeout}s"),
        };
        // A reason of the server's may span lines; the error stays on one.
        let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
        if tokio::time::Instant::now() + SCHEMA_RETRY >= deadline {
            return Err(format!(
                "cannot create the schema on the database at {address} \
                 (after {attempts} attempt(s) in {}s): {reason}",
                started.elapsed().as_secs()
            ));
        }
        tracing::warn!(database = %address, error = %reason, "database not ready, retrying");
        tokio::time::sleep(SCHEMA_RETRY).await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (command, result) = match args.as_slice() {
        [] => ("demo-was", serve().await.map_err(|e| e.to_string())),
        [command] if command == "migrate" => ("demo-was migrate", migrate().await),
        [help] if help == "--help" || help == "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            // A mistyped migration command must fail the Job, not start a server
            // that never exits.
            let args: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
            eprintln!("demo-was: unknown arguments: {}\n{USAGE}", args.join(" "));
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{command}: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), BoxError> {
    let settings = Settings::from_env()?;
    let app = App {
        db: mysql_async::Pool::new(settings.db),
        redis: redis::Client::open(settings.redis_url.as_str())?,
        redis_conn: Arc::new(Mutex::new(None)),
        images_dir: Arc::new(settings.images_dir),
        schema_ready: Arc::new(AtomicBool::new(false)),
        in_flight: Arc::new(AtomicUsize::new(0)),
    };
    let migrating = app.clone();
    tokio::spawn(async move {
        // The database may start after the WAS: keep trying; /healthz says why.
        loop {
            match migrating.migrate().await {
                Ok(()) => {
                    migrating.schema_ready.store(true, Ordering::Release);
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "database not ready"),
            }
            tokio::time::sleep(SCHEMA_RETRY).await;
        }
    });
    let router = Router::new()
        .route("/episodes", get(episodes))
        .route(
            &format!("{}/{{*path}}", settings.images_url_path),
            get(image),
        )
        .route("/healthz", get(healthz))
        .route("/ws", get(ws))
        .route("/admin", get(admin))
        .route("/work", get(work))
        .layer(middleware::from_fn_with_state(app.clone(), count_in_flight))
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", settings.port)).await?;
    tracing::info!(port = settings.port, "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    app.db.disconnect().await?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_stay_inside_the_image_directory() {
        let root = Path::new("/images");
        assert_eq!(
            image_path(root, "ep1/01.png"),
            Some(PathBuf::from("/images/ep1/01.png"))
        );
        for bad in ["../etc/passwd", "/etc/passwd", "ep1/../../x", ".hidden", ""] {
            assert_eq!(image_path(root, bad), None, "{bad}");
        }
    }
}
