//! Watches the ready pods of one component while a scenario changes it, and reports
//! the lowest count seen: the proof that a rollout or rollback never served with
//! fewer pods than the stack wants.

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Whether a pod is Ready and not terminating.
pub fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The image of a pod's first container.
pub fn image(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// The image of the first container of a Deployment's pod template.
pub fn template_image(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// A running watch of the ready pods that match a label selector.
pub struct ReadyFloor {
    stop: oneshot::Sender<()>,
    task: JoinHandle<(i32, usize)>,
}

impl ReadyFloor {
    /// Starts watching; it stops early once the count falls below `floor`.
    pub fn watch(pods: Api<Pod>, selector: &str, floor: i32) -> Self {
        let config = watcher::Config::default().labels(selector);
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut stream = Box::pin(watcher::watcher(pods, config));
            let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
            let mut listing: BTreeMap<String, Pod> = BTreeMap::new();
            let mut lowest = i32::MAX;
            let mut events = 0usize;
            loop {
                let event = tokio::select! {
                    _ = &mut stopped => return (lowest, events),
                    item = stream.next() => match item {
                        Some(Ok(event)) => event,
                        Some(Err(_)) => continue,
                        None => return (lowest, events),
                    },
                };
                match event {
                    Event::Init => listing.clear(),
                    Event::InitApply(pod) => {
                        listing.insert(pod.name_any(), pod);
                    }
                    Event::InitDone => pods = std::mem::take(&mut listing),
                    Event::Apply(pod) => {
                        pods.insert(pod.name_any(), pod);
                    }
                    Event::Delete(pod) => {
                        pods.remove(&pod.name_any());
                    }
                }
                events += 1;
                let ready = pods.values().filter(|p| is_ready(p)).count() as i32;
                if !pods.is_empty() {
                    lowest = lowest.min(ready);
                }
                if lowest < floor {
                    return (lowest, events);
                }
            }
        });
        Self { stop, task }
    }

    /// Stops watching; returns the lowest ready count seen and the number of events.
    pub async fn finish(self) -> (i32, usize) {
        let _ = self.stop.send(());
        self.task.await.expect("the pod observer ran")
    }
}
