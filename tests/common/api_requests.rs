//! What an API request asks permission for: its RBAC group, resource and verb, read
//! from the method and path as the API server's authorizer reads them.

use webtoon_operator::controller::rbac::PERMISSIONS;

/// The permissions a sequence of requests (method, path with query, status) needs,
/// as (group, resource, verb). A server-side apply that creates its object is
/// authorized as `create` too: a real server answers it 201, and an apply after a
/// read that found nothing (404) is one.
pub fn permissions_needed<'a>(
    requests: impl IntoIterator<Item = (&'a str, &'a str, Option<u16>)>,
) -> Vec<(String, String, String)> {
    let mut missing = std::collections::BTreeSet::new();
    let mut needed = Vec::new();
    for (method, uri, status) in requests {
        let path = uri.split_once('?').map_or(uri, |(p, _)| p).to_string();
        let (group, resource, verb) = permission_of(method, uri);
        let creates = method == "PATCH" && (status == Some(201) || missing.remove(&path));
        if method == "GET" && status == Some(404) {
            missing.insert(path);
        }
        if creates {
            needed.push((group.clone(), resource.clone(), "create".to_string()));
        }
        needed.push((group, resource, verb));
    }
    needed
}

/// The (group, resource, verb) a request names by its method and path.
pub fn permission_of(method: &str, uri: &str) -> (String, String, String) {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => panic!("not a Kubernetes API path: {uri}"),
    };
    let rest = match rest {
        ["namespaces", _namespace, rest @ ..] if !rest.is_empty() => rest,
        rest => rest,
    };
    let (resource, named) = match rest {
        [resource] => (resource.to_string(), false),
        [resource, _name] => (resource.to_string(), true),
        [resource, _name, sub] => (format!("{resource}/{sub}"), true),
        _ => panic!("unexpected path shape: {uri}"),
    };
    let watch = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let verb = match (method, named) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PATCH", _) => "patch",
        ("PUT", _) => "update",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => panic!("unexpected method {method} for {uri}"),
    };
    (group.to_string(), resource, verb.to_string())
}

/// Whether the operator's RBAC table grants `(group, resource, verb)`.
pub fn granted(group: &str, resource: &str, verb: &str) -> bool {
    PERMISSIONS
        .iter()
        .any(|p| p.group == group && p.resource == resource && p.verbs.contains(&verb))
}
