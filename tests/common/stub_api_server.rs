//! A stub Kubernetes API server on 127.0.0.1 for running the real operator process:
//! every list is empty, every watch stays open and quiet, and each request is
//! recorded. Without the CRD, WebtoonStack requests get the 404 a real server sends.
//!
//! Shared by the process tests and the controller benchmark.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::Response;

struct Recorded {
    crd_installed: bool,
    requests: Mutex<Vec<String>>,
}

/// A running stub server; it stops when dropped.
pub struct StubApiServer {
    /// Where it listens.
    pub address: SocketAddr,
    recorded: Arc<Recorded>,
    task: tokio::task::JoinHandle<()>,
}

impl StubApiServer {
    /// Starts a server on a free port of 127.0.0.1; `crd_installed` says whether it
    /// serves WebtoonStacks.
    pub async fn start(crd_installed: bool) -> Self {
        let recorded = Arc::new(Recorded {
            crd_installed,
            requests: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the stub API server");
        let address = listener.local_addr().expect("stub address");
        let app = Router::new().fallback(answer).with_state(recorded.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            recorded,
            task,
        }
    }

    /// Every request so far, as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.recorded
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Writes a kubeconfig that points at this server into `path`.
    pub fn write_kubeconfig(&self, path: &Path) {
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stub\n  cluster:\n    server: http://{}\nusers:\n- name: stub\n  user: {{}}\ncontexts:\n- name: stub\n  context:\n    cluster: stub\n    user: stub\n    namespace: default\ncurrent-context: stub\n",
            self.address
        );
        std::fs::write(path, config).expect("write kubeconfig");
    }
}

impl Drop for StubApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

async fn answer(State(recorded): State<Arc<Recorded>>, request: Request) -> Response {
    let uri = request.uri().clone();
    if let Ok(mut requests) = recorded.requests.lock() {
        requests.push(format!("{} {uri}", request.method()));
    }
    if !recorded.crd_installed && uri.path().contains("/webtoonstacks") {
        return json(
            StatusCode::NOT_FOUND,
            serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the server could not find the requested resource",
                "reason": "NotFound", "code": 404,
            }),
        );
    }
    if request.method() != Method::GET {
        return json(
            StatusCode::METHOD_NOT_ALLOWED,
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "MethodNotAllowed", "code": 405}),
        );
    }
    let watch = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1");
    if watch {
        // An open stream with no events: nothing changes in this cluster.
        return Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(futures::stream::pending::<
                Result<Bytes, Infallible>,
            >()))
            .unwrap_or_default();
    }
    json(
        StatusCode::OK,
        serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": []}),
    )
}
