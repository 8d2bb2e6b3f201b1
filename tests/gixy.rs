//! gixy-ng, the nginx configuration security scanner, over the rendered in-cluster
//! `nginx.conf` of every example, every variant and a PHP stack with TLS, an admin
//! allow-list and the response cache: every check passes but those listed in
//! `tests/gixy_skips.yaml`, each with its reason, and each of those still fires (a
//! skip that no longer applies must go). Version-aware checks judge the nginx of the
//! default proxy image.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use common::{TempDir, VARIANTS, example_files, root, stack_from_yaml, stacks_in, venv_tool};
use webtoon_operator::api::{DEFAULT_PROXY_IMAGE, ValidatedStack};
use webtoon_operator::manifest::validated;
use webtoon_operator::render::proxy::nginx_conf::{NginxLayout, nginx_conf};

#[derive(serde::Deserialize)]
struct Skip {
    id: String,
    reason: String,
}

/// A PHP stack that switches on what the variants leave off.
const PHP_STACK: &str = "
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: phpsite, namespace: webtoon}
spec:
  hosts: [php.example, www.php.example]
  tls: {secretName: php-tls}
  proxy: {admin: {paths: [/admin, /wp-admin/], allowCIDRs: [10.0.12.0/24]}, trustedProxyCIDRs: [10.0.0.0/8]}
  was: {image: registry.example/php/app:2.1.0, protocol: fastcgi, port: 9000, fastcgiRoot: /app/public}
";

/// The nginx version of the default proxy image, such as `1.28.0`.
fn default_nginx_version() -> String {
    let (_, tag) = DEFAULT_PROXY_IMAGE.rsplit_once(':').expect("a tag");
    tag.split('-').next().expect("a version").to_string()
}

/// Runs gixy over `files` and returns its findings as (check, file name).
fn gixy(files: &[std::path::PathBuf]) -> Vec<(String, String)> {
    let output = Command::new(venv_tool("WEBTOON_GIXY", "gixy"))
        .args([
            "--format",
            "json",
            "--nginx-version",
            &default_nginx_version(),
        ])
        .args(files)
        .output()
        .expect("run gixy");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "gixy printed no JSON report ({e}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    report
        .as_array()
        .expect("a list of findings")
        .iter()
        .map(|f| {
            let file = f["path"].as_str().unwrap_or_default();
            let name = Path::new(file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (f["plugin"].as_str().unwrap_or_default().to_string(), name)
        })
        .collect()
}

fn in_cluster_conf(stack: &ValidatedStack) -> String {
    nginx_conf(stack, &NginxLayout::in_cluster(stack))
}

#[test]
fn rendered_nginx_configs_pass_every_gixy_check_but_the_reasoned_skips() {
    let skips: Vec<Skip> = serde_saphyr::from_str(
        &std::fs::read_to_string(root().join("tests/gixy_skips.yaml")).expect("skips file"),
    )
    .expect("skips parse");
    for skip in &skips {
        assert!(
            skip.reason.split_whitespace().count() >= 10,
            "{} needs its reason written out",
            skip.id
        );
    }
    let skipped: BTreeSet<&str> = skips.iter().map(|s| s.id.as_str()).collect();

    let dir = TempDir::new("gixy");
    let mut stacks: Vec<ValidatedStack> = example_files()
        .iter()
        .flat_map(|f| stacks_in(f))
        .map(|s| validated(&s).expect("example is valid"))
        .collect();
    stacks.extend(VARIANTS.iter().map(|yaml| stack_from_yaml(yaml)));
    stacks.push(stack_from_yaml(PHP_STACK));
    assert!(
        stacks
            .iter()
            .filter(|s| s.spec.was.protocol == webtoon_operator::api::WasProtocol::Fastcgi)
            .count()
            >= 2,
        "PHP stacks are scanned"
    );
    let mut files = Vec::new();
    for stack in &stacks {
        let path = dir.0.join(format!("{}.conf", stack.name));
        std::fs::write(&path, in_cluster_conf(stack)).expect("write nginx.conf");
        files.push(path);
    }

    let findings = gixy(&files);
    let mut unexpected = Vec::new();
    let mut fired: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (check, file) in &findings {
        fired
            .entry(check.as_str())
            .or_default()
            .insert(file.as_str());
        if !skipped.contains(check.as_str()) {
            unexpected.push(format!("{check} in {file}"));
        }
    }
    assert!(
        unexpected.is_empty(),
        "gixy findings without a reasoned skip:\n{}",
        unexpected.join("\n")
    );
    let stale: Vec<&&str> = skipped
        .iter()
        .filter(|id| !fired.contains_key(**id))
        .collect();
    assert!(stale.is_empty(), "skips that no longer fire: {stale:?}");
    eprintln!(
        "gixy-ng over {} rendered nginx.conf files (nginx {}): no finding but the skipped {:?}",
        files.len(),
        default_nginx_version(),
        fired.keys().collect::<Vec<_>>()
    );
}

/// The control: gixy reads these files and its checks fire on them, so the clean
/// report above is the configuration's.
#[test]
fn gixy_reports_the_two_problems_the_configuration_used_to_have() {
    let stack = stack_from_yaml(PHP_STACK);
    let conf = in_cluster_conf(&stack);
    let old = conf
        .lines()
        .filter(|l| !l.starts_with("worker_rlimit_nofile"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(
            "allow 127.0.0.1;\n            allow ::1;\n            deny all;\n            stub_status;",
            "stub_status;",
        );
    assert!(
        old.contains("location = /stub_status {\n            stub_status;"),
        "{old}"
    );
    let dir = TempDir::new("gixy-control");
    let path = dir.0.join("old.conf");
    std::fs::write(&path, old).expect("write");
    let checks: BTreeSet<String> = gixy(&[path]).into_iter().map(|(c, _)| c).collect();
    for check in ["worker_rlimit_nofile_vs_connections", "status_page_exposed"] {
        assert!(checks.contains(check), "{check} did not fire: {checks:?}");
    }
}
