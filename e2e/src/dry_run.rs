//! Server-side dry runs: the API server's admission and validation, with nothing
//! stored. Children go through server-side apply, as the controller sends them.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;
use webtoon_operator::api::ValidatedStack;
use webtoon_operator::render::release::MigrationJobs;
use webtoon_operator::render::{Children, Credentials, Observed, render};

use crate::crd::{API_TIMEOUT, FIELD_MANAGER, stacks};

/// The API server's answer to a write, as text: its Status message when it refused.
pub fn error_text(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// Creates the raw WebtoonStack `document` in `namespace` with `dryRun=All`: the
/// schema and every CEL rule run, nothing is stored.
pub async fn create_stack(
    client: &Client,
    namespace: &str,
    document: &Value,
) -> Result<(), String> {
    let object = serde_json::from_value(document.clone()).map_err(|e| e.to_string())?;
    let params = PostParams {
        dry_run: true,
        field_manager: Some(FIELD_MANAGER.to_string()),
    };
    match tokio::time::timeout(
        API_TIMEOUT,
        stacks(client, namespace).create(&params, &object),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error_text(&error)),
        Err(_) => panic!("dry-run create of a WebtoonStack: no answer within {API_TIMEOUT:?}"),
    }
}

/// Passwords of the right shape, so that the credentials Secret is rendered and
/// checked too; dry runs never store them.
pub fn fake_credentials() -> Credentials {
    Credentials {
        database_root_password: "e2e-root-password-0123456789abcdef".to_string(),
        database_password: "e2e-app-password-0123456789abcdefgh".to_string(),
        database_backup_password: "e2e-backup-password-0123456789abcd".to_string(),
        cache_password: "e2e-cache-password-0123456789abcdef".to_string(),
    }
}

/// Every child of `stack`, rendered as the controller would once the credentials
/// exist, at the start of the first scaling schedule so raised floors are rendered,
/// and with the Jobs of a migration (after a backup) when the stack has one.
pub fn children(stack: &ValidatedStack) -> Children {
    let now = stack
        .spec
        .scaling
        .schedules
        .first()
        .and_then(|s| s.start.parse::<jiff::Timestamp>().ok());
    let migration = stack.spec.was.migration.as_ref().map(|_| MigrationJobs {
        image: stack.spec.was.image.clone(),
        backup: stack
            .spec
            .database
            .backup
            .as_ref()
            .map(|_| format!("{}-20261201T030000Z.sql.gz", stack.spec.database.name)),
        migrate: true,
    });
    render(
        stack,
        &Observed {
            credentials: Some(fake_credentials()),
            now,
            migration,
            ..Default::default()
        },
    )
}

/// Server-side applies every child with `dryRun=All`, in the order the controller
/// applies them (`Children::to_documents`; cluster-scoped ones cluster-wide), and
/// returns one line per object the API server refused.
pub async fn apply_children(client: &Client, namespace: &str, children: &Children) -> Vec<String> {
    let documents = children
        .to_documents()
        .unwrap_or_else(|e| panic!("the children do not serialise: {e}"));
    let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
    let mut refused = Vec::new();
    for document in documents {
        let object: DynamicObject = serde_json::from_value(document)
            .unwrap_or_else(|e| panic!("a rendered child is no Kubernetes object: {e}"));
        let types = object
            .types
            .clone()
            .unwrap_or_else(|| panic!("a rendered child has no apiVersion and kind"));
        let kind = types.kind.clone();
        let gvk = GroupVersionKind::try_from(&types)
            .unwrap_or_else(|e| panic!("a rendered {kind} has a malformed apiVersion: {e}"));
        let resource = ApiResource::from_gvk(&gvk);
        let api: Api<DynamicObject> = if object.metadata.namespace.is_some() {
            Api::namespaced_with(client.clone(), namespace, &resource)
        } else {
            Api::all_with(client.clone(), &resource)
        };
        let name = object.name_any();
        match tokio::time::timeout(
            API_TIMEOUT,
            api.patch(&name, &params, &Patch::Apply(&object)),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => refused.push(format!("{kind} {name}: {}", error_text(&error))),
            Err(_) => panic!("dry-run apply of {kind} {name}: no answer within {API_TIMEOUT:?}"),
        }
    }
    refused
}
