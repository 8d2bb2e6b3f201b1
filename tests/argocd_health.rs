//! The Argo CD health check of a WebtoonStack, run in Lua 5.1 (the Lua Argo CD
//! embeds) as Argo CD runs it: every case of its `health_test.yaml`, and the
//! statuses the operator itself computes for a serving stack, a stack coming up, a
//! stack that lost a tier, a rolled-back release and an invalid spec.

mod common;

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use mlua::{Lua, LuaSerdeExt, Table};
use serde_json::Value;
use webtoon_operator::api::{FailedRelease, WebtoonStack, WebtoonStackStatus};
use webtoon_operator::controller::release::{Outcome, Releases, Report};
use webtoon_operator::controller::status::{self, ObservedChildren};

fn check_dir() -> PathBuf {
    common::root().join(
        "charts/webtoon-operator/files/argocd/resource_customizations/webtoon.io/WebtoonStack",
    )
}

/// Runs `health.lua` on `object` as Argo CD does: the object is the global `obj`, the
/// script returns a table with `status` and `message`.
fn health(object: &Value) -> (String, String) {
    let script =
        std::fs::read_to_string(check_dir().join("health.lua")).expect("health.lua is readable");
    let lua = Lua::new();
    let obj = lua.to_value(object).expect("the object converts to Lua");
    lua.globals().set("obj", obj).expect("obj is set");
    let result: Table = lua
        .load(&script)
        .set_name("health.lua")
        .eval()
        .unwrap_or_else(|e| panic!("health.lua failed: {e}"));
    let field = |name: &str| -> String {
        result
            .get::<Option<String>>(name)
            .expect("a string field")
            .unwrap_or_default()
    };
    (field("status"), field("message"))
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} is unreadable: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_case_of_health_test_yaml_gets_its_status_and_message() {
    let tests = yaml(&check_dir().join("health_test.yaml"));
    let cases = tests["tests"].as_array().expect("a list of tests");
    assert!(
        cases.len() >= 9,
        "Healthy, Progressing, Degraded and deleting are covered"
    );
    let mut statuses = std::collections::BTreeSet::new();
    for case in cases {
        let input = case["inputPath"].as_str().expect("inputPath");
        let (status, message) = health(&yaml(&check_dir().join(input)));
        let want = &case["healthStatus"];
        assert_eq!(
            status,
            want["status"].as_str().unwrap_or_default(),
            "{input}"
        );
        assert_eq!(
            message,
            want["message"].as_str().unwrap_or_default(),
            "{input}"
        );
        statuses.insert(status);
    }
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        ["Degraded", "Healthy", "Progressing"]
    );
}

fn stack() -> WebtoonStack {
    let yaml = std::fs::read_to_string(common::root().join("examples/minimal.yaml"))
        .expect("the minimal example is readable");
    let mut stack: WebtoonStack = serde_saphyr::from_str(&yaml).expect("a stack");
    stack.metadata.generation = Some(2);
    stack
}

fn children(was_available: i32, database_ready: i32) -> ObservedChildren {
    let deployment = |available| Deployment {
        status: Some(DeploymentStatus {
            available_replicas: Some(available),
            ..Default::default()
        }),
        ..Default::default()
    };
    let set = |ready| StatefulSet {
        status: Some(StatefulSetStatus {
            ready_replicas: Some(ready),
            ..Default::default()
        }),
        ..Default::default()
    };
    ObservedChildren {
        proxy: Some(deployment(2)),
        was: Some(deployment(was_available)),
        database: Some(set(database_ready)),
        cache: Some(set(1)),
        images: Some(PersistentVolumeClaim {
            status: Some(PersistentVolumeClaimStatus {
                phase: Some("Bound".to_string()),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// The stack with the status the operator computes from `children` and `releases`.
fn with_status(
    children: &ObservedChildren,
    releases: &Releases,
    previous: Option<&WebtoonStackStatus>,
) -> WebtoonStack {
    let mut stack = stack();
    let validated = webtoon_operator::manifest::validated(&stack).expect("a valid stack");
    let now = Time("2026-12-01T12:00:00Z".parse().expect("a time"));
    stack.status = Some(status::compute(
        &validated,
        stack.metadata.generation,
        children,
        releases,
        None,
        previous,
        now,
    ));
    stack
}

fn health_of(stack: &WebtoonStack) -> (String, String) {
    health(&serde_json::to_value(stack).expect("the stack serialises"))
}

#[test]
fn the_statuses_the_operator_computes_read_as_argo_cd_should_show_them() {
    let none = Releases::default();
    let coming_up = with_status(&children(0, 1), &none, None);
    assert_eq!(health_of(&coming_up).0, "Progressing");

    let serving = with_status(&children(2, 1), &none, None);
    assert_eq!(
        health_of(&serving),
        ("Healthy".to_string(), "every tier is serving".to_string())
    );

    let rolling = with_status(
        &children(2, 1),
        &Releases {
            progressing: true,
            ..Default::default()
        },
        serving.status.as_ref(),
    );
    assert_eq!(health_of(&rolling).0, "Progressing");

    let lost = with_status(&children(2, 0), &none, serving.status.as_ref());
    let (state, message) = health_of(&lost);
    assert_eq!(state, "Degraded", "{message}");
    assert!(message.contains("DatabaseReady"), "{message}");

    let rolled_back = with_status(
        &children(2, 1),
        &Releases {
            reports: vec![Report {
                tier: "WAS",
                failed: FailedRelease {
                    image: "registry.invalid/minitoon/was:2.0.0".to_string(),
                    template_hash: "cda487556a69b606".to_string(),
                    reason: "ImagePullBackOff".to_string(),
                    message: "no such host".to_string(),
                    time: None,
                },
                outcome: Outcome::RolledBack("registry.example/minitoon/was:1.0.0".to_string()),
            }],
            ..Default::default()
        },
        serving.status.as_ref(),
    );
    let (state, message) = health_of(&rolled_back);
    assert_eq!(state, "Degraded", "{message}");
    assert!(message.contains("rolled back to image registry.example/minitoon/was:1.0.0"));

    let mut invalid = stack();
    let now = Time("2026-12-01T12:00:00Z".parse().expect("a time"));
    invalid.status = Some(status::invalid(
        invalid.metadata.generation,
        "spec.hosts[0]: not a host name",
        serving.status.as_ref(),
        now,
    ));
    assert_eq!(
        health_of(&invalid),
        (
            "Degraded".to_string(),
            "spec.hosts[0]: not a host name".to_string()
        )
    );

    let mut newer = serving.clone();
    newer.metadata.generation = Some(3);
    assert_eq!(
        health_of(&newer).0,
        "Progressing",
        "a spec not yet observed"
    );

    let mut deleting = serving;
    deleting.metadata.deletion_timestamp =
        Some(Time("2026-12-01T12:00:00Z".parse().expect("a time")));
    assert_eq!(
        health_of(&deleting),
        (
            "Progressing".to_string(),
            "the stack is being deleted".to_string()
        )
    );
}
