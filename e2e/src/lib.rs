//! Fixtures of the end-to-end suite: a client for `$KUBECONFIG`, a namespace per
//! scenario under the restricted Pod Security profile, and waits on conditions.

pub mod audit;
pub mod crd;
pub mod dry_run;
pub mod examples;
pub mod helm;
pub mod kubectl;
pub mod namespace;
pub mod node;
pub mod operator;
pub mod pods;
pub mod proxy_log;
pub mod stack;
pub mod wait;

/// A client for the cluster that `$KUBECONFIG` names (or the in-cluster account).
pub async fn client() -> kube::Client {
    match kube::Client::try_default().await {
        Ok(client) => client,
        Err(error) => panic!("the e2e suite needs a cluster in $KUBECONFIG: {error}"),
    }
}
