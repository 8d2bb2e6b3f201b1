//! An in-memory API server (kube-fake-client) behind a wire that counts the
//! controller's write requests and can fail them the way a real API server does:
//! 409, 500 and 504 Status responses, or no answer at all.
//!
//! Shared by the reconcile tests and the controller benchmark.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Client;
use kube::Resource;
use kube::client::Body;
use kube_fake_client::ClientBuilder;
use webtoon_operator::api::WebtoonStack;
use webtoon_operator::render::monitoring::pod_monitor::PodMonitor;

/// An API failure to inject into the controller's next write requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 409: another writer changed the object first.
    Conflict,
    /// 500: the API server failed, for example on an etcd leader change.
    Internal,
    /// 504: the API server gave up waiting for storage.
    GatewayTimeout,
    /// The request is sent and never answered.
    Hang,
}

impl Fault {
    /// The Status object the API server would answer with; `None` for no answer.
    fn status(self) -> Option<(u16, &'static str, &'static str)> {
        match self {
            Fault::Conflict => Some((
                409,
                "Conflict",
                "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again",
            )),
            Fault::Internal => Some((
                500,
                "InternalError",
                "Internal error occurred: etcdserver: leader changed",
            )),
            Fault::GatewayTimeout => Some((
                504,
                "Timeout",
                "The server was unable to return a response in the time allotted, but may still be processing the request",
            )),
            Fault::Hang => None,
        }
    }
}

/// Records the operator's requests, counts its writes and holds the faults still to
/// inject.
#[derive(Default)]
pub struct Wire {
    writes: AtomicUsize,
    pending: Mutex<Option<(Fault, usize)>>,
    requests: Mutex<Vec<Request>>,
}

/// One request the operator sent, and the status code it got.
#[derive(Clone, Debug)]
pub struct Request {
    /// HTTP method.
    pub method: http::Method,
    /// Path and query.
    pub uri: String,
    /// Status code of the answer; `None` when none came.
    pub status: Option<u16>,
}

impl Wire {
    /// Fails the next `times` write requests with `fault`.
    pub fn inject(&self, fault: Fault, times: usize) {
        if let Ok(mut pending) = self.pending.lock() {
            *pending = Some((fault, times));
        }
    }

    /// Write requests (POST, PUT, PATCH, DELETE) since the last call.
    pub fn take_writes(&self) -> usize {
        self.writes.swap(0, Ordering::SeqCst)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn record(&self, method: &http::Method, uri: &http::Uri, status: Option<u16>) {
        if let Ok(mut requests) = self.requests.lock() {
            requests.push(Request {
                method: method.clone(),
                uri: uri.to_string(),
                status,
            });
        }
    }

    fn on_request(&self, method: &http::Method) -> Option<Fault> {
        let write = [
            http::Method::POST,
            http::Method::PUT,
            http::Method::PATCH,
            http::Method::DELETE,
        ]
        .contains(method);
        if !write {
            return None;
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        let mut pending = self.pending.lock().ok()?;
        let (fault, remaining) = pending.take()?;
        if remaining > 1 {
            *pending = Some((fault, remaining - 1));
        }
        Some(fault)
    }
}

fn status_response(code: u16, reason: &str, message: &str) -> http::Response<Body> {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    let mut response = http::Response::new(Body::from(body.to_string().into_bytes()));
    *response.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A client whose requests pass through `wire` on their way to `inner`.
fn wired(inner: Client, wire: Arc<Wire>, namespace: &str) -> Client {
    let service = tower::service_fn(move |request: http::Request<Body>| {
        let inner = inner.clone();
        let wire = wire.clone();
        let fault = wire.on_request(request.method());
        let (method, uri) = (request.method().clone(), request.uri().clone());
        async move {
            let response = match fault.map(Fault::status) {
                None => inner.send(request).await,
                Some(Some((code, reason, message))) => Ok(status_response(code, reason, message)),
                Some(None) => {
                    wire.record(&method, &uri, None);
                    return std::future::pending().await;
                }
            };
            let status = response.as_ref().ok().map(|r| r.status().as_u16());
            wire.record(&method, &uri, status);
            response
        }
    });
    Client::new(service, namespace)
}

/// Names the WebtoonStack kind for the fake client's status-subresource table, which
/// wants a type with a default value; the real type has required fields.
#[derive(serde::Serialize)]
struct StackKind {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    metadata: kube::api::ObjectMeta,
}

impl Default for StackKind {
    fn default() -> Self {
        Self {
            api_version: "webtoon.io/v1alpha1",
            kind: "WebtoonStack",
            metadata: kube::api::ObjectMeta::default(),
        }
    }
}

impl Resource for StackKind {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;
    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        "WebtoonStack".into()
    }
    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        "webtoon.io".into()
    }
    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        "v1alpha1".into()
    }
    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        "webtoonstacks".into()
    }
    fn meta(&self) -> &kube::api::ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut kube::api::ObjectMeta {
        &mut self.metadata
    }
}

/// One in-memory API server holding `stack`.
pub struct FakeApi {
    /// Talks to the server directly: for the test's own reads and writes, which play
    /// the part of users and of Kubernetes' own controllers.
    pub direct: Client,
    /// Talks through the wire: for the operator under test.
    pub operator: Client,
    /// The operator's wire.
    pub wire: Arc<Wire>,
}

impl FakeApi {
    /// Starts a server with `stack` stored in it.
    pub async fn with_stack(stack: WebtoonStack) -> Self {
        let namespace = stack
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let direct = ClientBuilder::new()
            .with_resource::<WebtoonStack>()
            // A cluster with the Prometheus Operator's CRDs.
            .with_resource::<PodMonitor>()
            .with_status_subresource::<StackKind>()
            .with_status_subresource::<Deployment>()
            .with_status_subresource::<StatefulSet>()
            .with_status_subresource::<PersistentVolumeClaim>()
            .with_object(stack)
            .build()
            .await
            .expect("the in-memory API server starts");
        let wire = Arc::new(Wire::default());
        let operator = wired(direct.clone(), wire.clone(), &namespace);
        Self {
            direct,
            operator,
            wire,
        }
    }
}
