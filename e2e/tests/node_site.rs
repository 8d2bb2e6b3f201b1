//! On the real node: `examples/minimal.yaml`, unchanged, becomes Ready with every pod
//! running under the restricted Pod Security profile, and its proxy Service serves
//! the demo WAS page with data from MariaDB cached in Redis, and images from the
//! shared volume that nginx reads itself.

use std::time::Duration;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::node::{assert_every_pod_runs, get, mariadb_as_root, service_ip, volume_dir};
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack;

const LIMIT: Duration = Duration::from_secs(300);

#[tokio::test]
async fn real_node_serves_the_minimal_example_demo_site() {
    within_namespace("node-site", LIMIT, |client, namespace| async move {
        ensure_crd(&client).await;
        let _operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
        let ready = stack::deploy(&client, stack::example("minimal", &namespace)).await;
        let name = ready.name_any();
        let host = ready.spec.hosts[0].clone();

        // Every pod runs, in a namespace that enforces the restricted profile: the
        // API server admitted each one, and each container really started.
        let tiers = assert_every_pod_runs(&client, &namespace).await;
        assert_eq!(tiers, ["cache", "database", "proxy", "was"]);

        // A row written into MariaDB comes back through nginx and the WAS, from the
        // database the first time and from Redis the second.
        let insert = format!(
            "INSERT INTO episodes (title, image) VALUES ('Episode one', '{}/ep1/01.png')",
            ready.spec.storage.url_path
        );
        mariadb_as_root(&namespace, &name, &ready.spec.database.name, &insert).await;

        let ip = service_ip(&client, &namespace, &format!("{name}-proxy")).await;
        let first = get(&ip, &host, "/episodes").await;
        assert_eq!(first.status, 200, "{first:?}");
        assert!(first.text().contains("Episode one"), "{}", first.text());
        assert_eq!(first.header("x-cache"), Some("miss"));
        let second = get(&ip, &host, "/episodes").await;
        assert_eq!(second.status, 200, "{second:?}");
        assert_eq!(second.text(), first.text());
        assert_eq!(second.header("x-cache"), Some("hit"));

        // An image put on the shared volume (where an uploader would) is served by
        // nginx from its own mount: static-file headers that the WAS never sends.
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
        let shared = claims
            .list(&ListParams::default())
            .await
            .expect("claims can be listed")
            .items
            .into_iter()
            .find(|c| {
                c.spec
                    .as_ref()
                    .and_then(|s| s.access_modes.as_ref())
                    .is_some_and(|m| m.iter().any(|m| m == "ReadWriteMany"))
            })
            .expect("the stack has a ReadWriteMany image claim");
        let dir = volume_dir(&client, &namespace, &shared.name_any()).await;
        let image: Vec<u8> = (0..=255u8).cycle().take(40_000).collect();
        std::fs::create_dir_all(dir.join("ep1")).expect("a directory on the image volume");
        std::fs::write(dir.join("ep1/01.png"), &image).expect("an image on the volume");
        let path = format!("{}/ep1/01.png", ready.spec.storage.url_path);
        let served = get(&ip, &host, &path).await;
        assert_eq!(served.status, 200, "{served:?}");
        assert_eq!(served.body, image, "the bytes on the volume");
        assert_eq!(served.header("content-type"), Some("image/png"));
        assert!(
            served.header("etag").is_some() && served.header("accept-ranges") == Some("bytes"),
            "nginx's static module answered: {:?}",
            served.headers
        );
    })
    .await;
}
