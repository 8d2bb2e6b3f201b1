//! Stacks that switch on what the examples leave off. Shared by two test crates:
//! the offline render tests (through `common`) and the end-to-end dry runs (through
//! `#[path]`), so both check the same specs.

/// Specs that switch on what the examples leave off.
pub const VARIANTS: &[&str] = &[
    r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: phptoon, namespace: webtoon}
spec:
  hosts: ["*.phptoon.example"]
  acceptSinglePointOfFailure: true
  proxy: {replicas: 1, service: {type: NodePort}, rateLimit: {enabled: false}, cache: {enabled: false}, trustedProxyCIDRs: [10.0.0.0/8]}
  was: {image: "php:8.3-fpm", port: 9000, protocol: fastcgi, replicas: 1}
  cache: {persistence: {size: 1Gi}, evictionPolicy: volatile-lru}
  database: {restore: {from: latest}}
  storage: {storageClassName: nfs-csi, size: 10Gi}
  deletionPolicy: Delete
"#,
    r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: a23456789012345678901234567890123456, namespace: a2345678901234567890123456789012345678901234567890123456789012}
spec:
  hosts: [long.example]
  proxy: {service: {type: ClusterIP, annotations: {example.com/lb: internal}}}
  was:
    image: "registry.example:5000/team/was@sha256:0000000000000000000000000000000000000000000000000000000000000000"
    migration: {command: [bin/migrate, --to-latest], env: [{name: STEP, value: all}], timeoutSeconds: 900}
  database: {backup: {schedule: "0 3 * * *", timeZone: Asia/Seoul}}
  storage: {nfs: {server: 10.1.2.3, path: /exports/images}}
"#,
];
