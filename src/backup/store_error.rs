//! What can go wrong between a backup Job and its bucket, each said so that the
//! person reading the Job's log or the stack's status knows which field to fix.

use std::path::PathBuf;

/// The fields that configure the bucket, as a user finds them in the stack.
const FIELD: &str = "spec.database.backup.objectStore (or spec.database.restore.objectStore)";

/// A failure of `webtoon-operator backup upload|fetch`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A variable the Job's pod must set is missing or empty.
    #[error("{var} is not set: the operator sets it in backup Jobs from {FIELD}")]
    MissingEnv {
        /// The variable.
        var: &'static str,
    },

    /// A variable holds something the tool cannot use.
    #[error("{var}={value:?} {why}")]
    BadEnv {
        /// The variable.
        var: &'static str,
        /// Its value (never a secret).
        value: String,
        /// What is wrong, and the fix.
        why: String,
    },

    /// The endpoint is plain HTTP and the user did not accept that.
    #[error(
        "WEBTOON_S3_ENDPOINT={endpoint:?} is not encrypted: use https://, or set spec.database.backup.objectStore.insecure: true (spec.database.restore.objectStore.insecure for a restore) to send keys and backups in clear text"
    )]
    PlainHttp {
        /// The endpoint.
        endpoint: String,
    },

    /// The private CA bundle cannot be read or holds no certificate.
    #[error(
        "cannot use the CA bundle WEBTOON_S3_CA_FILE={path} (key ca.crt of the ConfigMap in objectStore.caConfigMap): {why}"
    )]
    CaFile {
        /// The bundle's path.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },

    /// The endpoint's certificate was not accepted.
    #[error(
        "TLS with {endpoint} failed: {detail}; {}",
        if *.ca_file_set {
            "the certificate is not signed by the CA in WEBTOON_S3_CA_FILE: put the CA that signs the endpoint's certificate in key ca.crt of the ConfigMap in objectStore.caConfigMap"
        } else {
            "for an endpoint whose certificate a private CA signs, put that CA in key ca.crt of a ConfigMap and name it in objectStore.caConfigMap (WEBTOON_S3_CA_FILE)"
        }
    )]
    Tls {
        /// The endpoint.
        endpoint: String,
        /// The TLS library's reason.
        detail: String,
        /// Whether WEBTOON_S3_CA_FILE was given.
        ca_file_set: bool,
    },

    /// Nothing answered at the endpoint.
    #[error(
        "cannot reach {endpoint}: {detail}; check objectStore.endpoint and objectStore.egressCIDRs"
    )]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The connection's error.
        detail: String,
    },

    /// The store rejected the access key or the signature made with the secret key.
    #[error(
        "the object store refused the keys in {secret} (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) for {location}: {code}; check both keys, and that they may list, read, write and delete under the prefix"
    )]
    KeysRefused {
        /// `Secret <name>`, or how to find it.
        secret: String,
        /// `s3://bucket/key` of the request.
        location: String,
        /// The store's error code, such as `SignatureDoesNotMatch`.
        code: String,
    },

    /// The bucket does not exist.
    #[error("bucket {bucket:?} does not exist at {endpoint}: create it, or fix objectStore.bucket")]
    NoBucket {
        /// The bucket.
        bucket: String,
        /// The endpoint.
        endpoint: String,
    },

    /// Any other failed request.
    #[error("{operation} {location} failed: {detail}")]
    Request {
        /// What was attempted: `upload`, `list`, ...
        operation: &'static str,
        /// `s3://bucket/key`.
        location: String,
        /// The store's or the client's explanation.
        detail: String,
    },

    /// A local file cannot be read or written.
    #[error("cannot {what} {path}: {source}")]
    File {
        /// What was attempted: `read`, `write`, ...
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },

    /// The dump step did not leave a successful report to upload from.
    #[error("nothing to upload: {why}")]
    NoDump {
        /// What the dump step left.
        why: String,
    },

    /// A description is missing, unparseable or not of the dump it sits beside.
    #[error("{location} {why}")]
    BadDescription {
        /// The description's file or `s3://bucket/key`.
        location: String,
        /// What is wrong.
        why: String,
    },

    /// A dump's bytes are not those its description names.
    #[error("{location} {mismatch}")]
    Mismatch {
        /// The dump's file or `s3://bucket/key`.
        location: String,
        /// What differs.
        mismatch: crate::backup::integrity::Mismatch,
    },

    /// No backup under the prefix fits what was asked for.
    #[error("{what} under s3://{bucket}/{prefix}")]
    NoBackup {
        /// What is missing, such as `no described backup of database webtoon`.
        what: String,
        /// The bucket.
        bucket: String,
        /// The prefix.
        prefix: String,
    },

    /// The process was asked to stop (SIGTERM or SIGINT) before it finished.
    #[error("stopped by a signal before the transfer finished")]
    Stopped,
}
