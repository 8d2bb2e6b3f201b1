//! Graceful removal of a serving pod: it keeps serving while the endpoint removal
//! reaches every client, so a rollout or scale-down fails no request.

use k8s_openapi::api::core::v1::{Lifecycle, LifecycleHandler, SleepAction};

/// A pre-stop hook that delays SIGTERM by `seconds`; the pod's grace period must
/// cover it.
pub fn sleep_before_stop(seconds: i64) -> Lifecycle {
    Lifecycle {
        pre_stop: Some(LifecycleHandler {
            sleep: Some(SleepAction { seconds }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
