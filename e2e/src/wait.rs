//! Waits on what the cluster reports, through watches, never on sleeps.

use std::fmt::Debug;
use std::time::Duration;

use kube::runtime::wait::{Condition, await_condition};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

/// Waits until the object `name` meets `condition`, or panics after `timeout` with
/// the object as last seen.
pub async fn until<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    condition: impl Condition<K>,
) -> K
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, condition)).await {
        Ok(Ok(Some(object))) => object,
        Ok(Ok(None)) => panic!("{name} was deleted while waiting for it"),
        Ok(Err(error)) => panic!("watching {name} failed: {error}"),
        Err(_) => {
            let last = api.get_opt(name).await.ok().flatten();
            panic!(
                "{name} did not reach the expected state within {timeout:?}; last seen: {last:#?}"
            )
        }
    }
}
