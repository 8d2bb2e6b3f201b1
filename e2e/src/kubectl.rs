//! Runs kubectl (`$KUBECTL`, or `kubectl` on the PATH) against `$KUBECONFIG`.

use std::time::Duration;

/// How long one kubectl invocation may take.
pub const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

/// What one kubectl run printed.
#[derive(Debug)]
pub struct Output {
    /// Whether kubectl exited with status 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs kubectl with `args`; panics when it cannot start or does not finish in time.
pub async fn kubectl(args: &[&str]) -> Output {
    let program = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string());
    let mut command = tokio::process::Command::new(&program);
    command.args(args).kill_on_drop(true);
    let output = match tokio::time::timeout(KUBECTL_TIMEOUT, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => panic!("cannot run {program} (set KUBECTL to its path): {error}"),
        Err(_) => panic!("{program} {args:?} did not finish within {KUBECTL_TIMEOUT:?}"),
    };
    Output {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
