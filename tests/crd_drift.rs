//! Generated files stay in step with the code: the CRD in `crds/` with the Rust
//! types, and the operator roles in the chart with the RBAC table.

use std::path::Path;

#[test]
fn crds_directory_matches_the_generated_crd() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/webtoonstacks.webtoon.io.yaml");
    let stored =
        std::fs::read_to_string(&path).expect("crds/webtoonstacks.webtoon.io.yaml is readable");
    let generated = webtoon_operator::api::crd_yaml().expect("the CRD serializes");
    assert!(
        stored == generated,
        "{} is out of date: run `cargo run -- crd > crds/webtoonstacks.webtoon.io.yaml`",
        path.display()
    );
}

#[test]
fn crd_names_short_name_printer_columns_and_status_subresource() {
    let crd = webtoon_operator::api::crd();
    assert_eq!(crd.spec.group, "webtoon.io");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names, Some(vec!["wts".to_string()]));
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    assert!(
        version
            .subresources
            .as_ref()
            .is_some_and(|s| s.status.is_some())
    );
    let columns: Vec<&str> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(columns, ["Ready", "Proxy", "WAS", "URL", "Age"]);
}

#[test]
fn every_spec_field_is_documented_for_kubectl_explain() {
    let crd = webtoon_operator::api::crd();
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("schema serializes");
    let mut undocumented = Vec::new();
    walk(
        &schema["openAPIV3Schema"]["properties"]["spec"],
        "spec",
        &mut undocumented,
    );
    assert!(
        undocumented.is_empty(),
        "fields without a description: {undocumented:?}"
    );
}

fn walk(node: &serde_json::Value, path: &str, undocumented: &mut Vec<String>) {
    if node
        .get("description")
        .and_then(|d| d.as_str())
        .is_none_or(str::is_empty)
    {
        undocumented.push(path.to_string());
    }
    // Kubernetes' own types (EnvVar, ResourceRequirements) carry the upstream docs.
    if path.ends_with(".env") || path.ends_with(".resources") {
        return;
    }
    let children = node
        .get("properties")
        .or_else(|| node.get("items").and_then(|i| i.get("properties")))
        .and_then(|p| p.as_object());
    for (name, child) in children.into_iter().flatten() {
        walk(child, &format!("{path}.{name}"), undocumented);
    }
}

#[test]
fn chart_rbac_files_match_the_generated_roles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/webtoon-operator/files");
    let cluster_role = serde_saphyr::to_string(&webtoon_operator::controller::rbac::cluster_role())
        .expect("the ClusterRole serializes");
    let role = serde_saphyr::to_string(&webtoon_operator::controller::rbac::role("webtoon-system"))
        .expect("the Role serializes");
    let lease_role = serde_saphyr::to_string(
        &webtoon_operator::controller::rbac::leader_election_role("webtoon-system"),
    )
    .expect("the leader-election Role serializes");
    for (file, generated, command) in [
        ("clusterrole.yaml", cluster_role, "rbac"),
        ("role.yaml", role, "rbac --namespace webtoon-system"),
        (
            "leader-election-role.yaml",
            lease_role,
            "rbac --leader-election-namespace webtoon-system",
        ),
    ] {
        let stored = std::fs::read_to_string(dir.join(file)).expect("RBAC file is readable");
        assert!(
            stored == generated,
            "charts/webtoon-operator/files/{file} is out of date: run `cargo run -- {command} > charts/webtoon-operator/files/{file}`"
        );
    }
}
