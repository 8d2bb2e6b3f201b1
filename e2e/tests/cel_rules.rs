//! Every CEL rule of the CRD, enforced by a real API server: the accept and reject
//! cases that tests/cel_rules.rs evaluates client-side with kube-cel, sent as
//! dry-run creates: accepted cases are accepted, rejected ones are
//! refused with the rule's own message.

#[path = "../../tests/common/cel_cases.rs"]
mod cel_cases;

use std::collections::BTreeSet;
use std::time::Duration;

use cel_cases::{base, cases, crd_schema as schema, rule_for, rules};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::dry_run::create_stack;
use webtoon_e2e::examples::in_namespace;
use webtoon_e2e::namespace::within_namespace;

const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
async fn the_api_server_enforces_every_cel_rule_with_its_message() {
    within_namespace("cel-rules", SCENARIO_TIMEOUT, |client, ns| async move {
        // The apply compiles every rule and checks its cost: a rule that fails
        // either way fails here, named.
        ensure_crd(&client).await;
        let schema = schema();
        create_stack(&client, &ns, &in_namespace(base(), &ns))
            .await
            .unwrap_or_else(|error| panic!("the base object is refused: {error}"));

        let mut failures = Vec::new();
        let mut covered = BTreeSet::new();
        for case in cases() {
            let (rule, message) = rule_for(&case, &schema);
            covered.insert((case.path.to_string(), rule.clone()));
            let mut good = base();
            (case.accept)(&mut good);
            if let Err(error) = create_stack(&client, &ns, &in_namespace(good, &ns)).await {
                failures.push(format!(
                    "{}: the accepted case is refused: {error}",
                    case.rule
                ));
            }
            let mut bad = base();
            (case.reject)(&mut bad);
            match create_stack(&client, &ns, &in_namespace(bad, &ns)).await {
                Ok(()) => failures.push(format!("{}: the rejected case is accepted", case.rule)),
                Err(error) if !error.contains(&message) => failures.push(format!(
                    "{}: refused without the rule's message {message:?}: {error}",
                    case.rule
                )),
                Err(_) => {}
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        let all: BTreeSet<(String, String)> =
            rules(&schema).into_iter().map(|(p, r, _)| (p, r)).collect();
        assert_eq!(covered, all, "every rule is sent to the server");
    })
    .await;
}
