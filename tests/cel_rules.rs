//! CEL layer: every `x-kubernetes-validations` rule of the generated CRD, evaluated
//! client-side with kube-cel against a spec it must accept and one it must reject,
//! with the rejecting message asserted. Each case also runs through the Rust
//! validation, which must agree: the two places hold the same rules.

use std::collections::BTreeSet;

#[path = "common/cel_cases.rs"]
mod cel_cases;

use cel_cases::{Case, base, cases, crd_schema as schema, rules};
use kube_cel::Validator;
use serde_json::Value;
use webtoon_operator::api::{WebtoonStack, validate};

fn all_rules() -> Vec<(String, String, String)> {
    rules(&schema())
}

fn rule_for(case: &Case) -> (String, String) {
    cel_cases::rule_for(case, &schema())
}

fn cel_errors(object: &Value) -> Vec<(String, String)> {
    match Validator::new().validate(&schema(), object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| (e.rule.clone(), e.message.clone()))
            .collect(),
    }
}

fn rust_accepts(object: &Value) -> Result<(), String> {
    let stack: WebtoonStack = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    validate(&stack).map(|_| ()).map_err(|e| format!("{e:?}"))
}

#[test]
fn the_base_object_passes_every_rule() {
    assert_eq!(cel_errors(&base()), Vec::new());
    rust_accepts(&base()).expect("the base object is valid in Rust too");
}

#[test]
fn every_rule_is_covered_by_a_case() {
    let rules = all_rules();
    for (path, rule, message) in &rules {
        eprintln!(
            "CEL rule at {}: {rule}\n    message: {message}",
            if path.is_empty() { "<root>" } else { path }
        );
    }
    let covered: BTreeSet<(String, String)> = cases()
        .iter()
        .map(|c| (c.path.to_string(), rule_for(c).0))
        .collect();
    let all: BTreeSet<(String, String)> = rules.into_iter().map(|(p, r, _)| (p, r)).collect();
    assert_eq!(covered, all, "every rule needs an accept and a reject case");
    assert_eq!(all.len(), 32);
}

#[test]
fn each_rule_accepts_its_good_spec_and_rejects_its_bad_spec_with_its_message() {
    for case in cases() {
        let (rule, message) = rule_for(&case);
        let mut good = base();
        (case.accept)(&mut good);
        assert_eq!(
            cel_errors(&good),
            Vec::new(),
            "{}: accepted case failed",
            case.rule
        );
        let mut bad = base();
        (case.reject)(&mut bad);
        let errors = cel_errors(&bad);
        assert!(
            errors.contains(&(rule.clone(), message.clone())),
            "{}: expected {message:?}, got {errors:?}",
            case.rule
        );
    }
}

#[test]
fn rust_validation_agrees_with_cel_on_every_case() {
    for case in cases() {
        let mut good = base();
        (case.accept)(&mut good);
        rust_accepts(&good)
            .unwrap_or_else(|e| panic!("{}: Rust rejects what CEL accepts: {e}", case.rule));
        let mut bad = base();
        (case.reject)(&mut bad);
        assert!(
            rust_accepts(&bad).is_err(),
            "{}: Rust accepts what CEL rejects",
            case.rule
        );
    }
}
