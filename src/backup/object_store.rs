//! The S3-compatible bucket backups are kept in: its configuration from the
//! environment the backup Jobs set, and the few requests the backup tools make
//! (list, head, put, a multipart upload streamed from a file, a download streamed to
//! a file, delete), each failure turned into a [`StoreError`] a user can act on.
//!
//! Requests are signed by Apache Arrow's `object_store` and sent with path-style
//! addressing over rustls with the ring provider.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use ::object_store::aws::{AmazonS3, AmazonS3Builder};
use ::object_store::path::Path as Key;
use ::object_store::{
    BackoffConfig, Certificate, ClientOptions, MultipartUpload, ObjectStore, ObjectStoreExt,
    PutPayload, RetryConfig,
};
use futures::StreamExt;
use regex::Regex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::patterns;
use crate::backup::description::Description;
use crate::backup::integrity::{Facts, Tally};
use crate::backup::store_error::StoreError;

/// `https://host[:port]` of the S3 API.
pub const ENDPOINT_ENV: &str = "WEBTOON_S3_ENDPOINT";
/// `true` admits an `http://` endpoint.
pub const ALLOW_HTTP_ENV: &str = "WEBTOON_S3_ALLOW_HTTP";
/// The bucket.
pub const BUCKET_ENV: &str = "WEBTOON_S3_BUCKET";
/// The key prefix of the stack's backups, ending with `/`.
pub const PREFIX_ENV: &str = "WEBTOON_S3_PREFIX";
/// The region requests are signed for.
pub const REGION_ENV: &str = "WEBTOON_S3_REGION";
/// A PEM bundle of CA certificates to trust for the endpoint, besides the system's.
pub const CA_FILE_ENV: &str = "WEBTOON_S3_CA_FILE";
/// Optional: the name of the Secret the keys come from, for error messages.
pub const SECRET_NAME_ENV: &str = "WEBTOON_S3_SECRET_NAME";
/// The access key id, as AWS tools name it.
pub const ACCESS_KEY_ID_ENV: &str = "AWS_ACCESS_KEY_ID";
/// The secret access key, as AWS tools name it.
pub const SECRET_ACCESS_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";
/// The database whose backups are handled.
pub const DATABASE_ENV: &str = "WEBTOON_DB_NAME";

/// Size of each part of a multipart upload, and of a file sent in one request at
/// most: S3 wants parts of 5 MiB or more, and one part is all the tool holds in memory.
pub const PART_BYTES: u64 = 8 << 20;
/// S3 accepts at most 10 000 parts; a larger dump gets larger parts.
const MAX_PARTS: u64 = 10_000;

static BUCKET: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(patterns::BUCKET));
static PREFIX: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(patterns::OBJECT_PREFIX));
static ENDPOINT: LazyLock<Regex> =
    LazyLock::new(|| patterns::compiled(patterns::OBJECT_STORE_ENDPOINT));

/// Where the bucket is and how to reach it, from the backup Job's environment.
#[derive(Clone)]
pub struct StoreConfig {
    /// `https://host[:port]`, without a trailing `/`.
    pub endpoint: String,
    /// Whether `endpoint` may be `http://`.
    pub allow_http: bool,
    /// The bucket.
    pub bucket: String,
    /// The key prefix, ending with `/`.
    pub prefix: String,
    /// The signing region.
    pub region: String,
    /// Extra CA certificates to trust.
    pub ca_file: Option<PathBuf>,
    /// The Secret the keys come from, when the Job names it.
    pub secret_name: Option<String>,
    access_key_id: String,
    secret_access_key: String,
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys stay out of every log and message.
        f.debug_struct("StoreConfig")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl StoreConfig {
    /// The configuration in this process's environment.
    pub fn from_env() -> Result<StoreConfig, StoreError> {
        StoreConfig::from_vars(|var| std::env::var(var).ok())
    }

    /// The configuration in the variables `get` returns.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<StoreConfig, StoreError> {
        let required = |var: &'static str| {
            get(var)
                .filter(|v| !v.is_empty())
                .ok_or(StoreError::MissingEnv { var })
        };
        let allow_http = match get(ALLOW_HTTP_ENV).as_deref() {
            None | Some("" | "false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(StoreError::BadEnv {
                    var: ALLOW_HTTP_ENV,
                    value: other.to_string(),
                    why: "must be true or false".to_string(),
                });
            }
        };
        let endpoint = required(ENDPOINT_ENV)?;
        if !ENDPOINT.is_match(&endpoint) {
            return Err(StoreError::BadEnv {
                var: ENDPOINT_ENV,
                value: endpoint,
                why: "is not https://host[:port]: fix objectStore.endpoint (no path, no bucket in it)"
                    .to_string(),
            });
        }
        if endpoint.starts_with("http://") && !allow_http {
            return Err(StoreError::PlainHttp { endpoint });
        }
        let bucket = required(BUCKET_ENV)?;
        if !BUCKET.is_match(&bucket) {
            return Err(StoreError::BadEnv {
                var: BUCKET_ENV,
                value: bucket,
                why: "is not a bucket name (3 to 63 lower-case letters, digits, dots and hyphens): fix objectStore.bucket".to_string(),
            });
        }
        let prefix = required(PREFIX_ENV)?;
        if !PREFIX.is_match(&prefix) {
            return Err(StoreError::BadEnv {
                var: PREFIX_ENV,
                value: prefix,
                why: "is not a key prefix of `/`-separated segments ending with `/`: fix objectStore.prefix".to_string(),
            });
        }
        Ok(StoreConfig {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            allow_http,
            bucket,
            prefix,
            region: get(REGION_ENV)
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "us-east-1".to_string()),
            ca_file: get(CA_FILE_ENV)
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
            secret_name: get(SECRET_NAME_ENV).filter(|s| !s.is_empty()),
            access_key_id: required(ACCESS_KEY_ID_ENV)?,
            secret_access_key: required(SECRET_ACCESS_KEY_ENV)?,
        })
    }

    /// `s3://<bucket>/<prefix><name>`.
    pub fn location(&self, name: &str) -> String {
        format!("s3://{}/{}{name}", self.bucket, self.prefix)
    }
}

/// A connection to the bucket, confined to the prefix.
pub struct BackupStore {
    s3: AmazonS3,
    config: StoreConfig,
}

impl BackupStore {
    /// A client for `config`'s bucket; nothing is sent until the first request.
    pub fn connect(config: StoreConfig) -> Result<BackupStore, StoreError> {
        // Both rustls providers can be linked (tests bring in aws-lc-rs); ring is
        // the one the static image is built with.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut options = ClientOptions::new()
            .with_allow_http(config.allow_http)
            .with_connect_timeout(Duration::from_secs(10))
            .with_timeout(Duration::from_secs(300));
        if let Some(path) = &config.ca_file {
            let ca_error = |why: String| StoreError::CaFile {
                path: path.clone(),
                why,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let certificates =
                Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
            if certificates.is_empty() {
                return Err(ca_error("it holds no PEM certificate".to_string()));
            }
            for certificate in certificates {
                options = options.with_root_certificate(certificate);
            }
        }
        let s3 = AmazonS3Builder::new()
            .with_endpoint(&config.endpoint)
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(config.allow_http)
            .with_client_options(options)
            // A Job that fails is retried by Kubernetes; a few quick retries cover a
            // dropped connection without hiding a wrong endpoint for minutes.
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: Duration::from_secs(60),
            })
            .build()
            .map_err(|e| StoreError::BadEnv {
                var: ENDPOINT_ENV,
                value: config.endpoint.clone(),
                why: format!("cannot be used: {e}"),
            })?;
        Ok(BackupStore { s3, config })
    }

    /// The configuration this store was made from.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// `s3://<bucket>/<prefix><name>`.
    pub fn location(&self, name: &str) -> String {
        self.config.location(name)
    }

    fn key(&self, name: &str) -> Result<Key, StoreError> {
        Key::parse(format!("{}{name}", self.config.prefix)).map_err(|e| StoreError::Request {
            operation: "name",
            location: self.location(name),
            detail: e.to_string(),
        })
    }

    /// Names of the objects directly under the prefix (not in deeper "directories").
    pub async fn names(&self) -> Result<Vec<String>, StoreError> {
        let prefix = Key::parse(self.config.prefix.trim_end_matches('/')).map_err(|e| {
            StoreError::Request {
                operation: "list",
                location: self.location(""),
                detail: e.to_string(),
            }
        })?;
        let listing = self
            .s3
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(|e| self.failure("list", "", e))?;
        Ok(listing
            .objects
            .into_iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
            .collect())
    }

    /// Size of the object `name`, or `None` when there is none.
    pub async fn size(&self, name: &str) -> Result<Option<u64>, StoreError> {
        match self.s3.head(&self.key(name)?).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(e) if is_missing_object(&e) => Ok(None),
            Err(e) => Err(self.failure("read", name, e)),
        }
    }

    /// The whole object `name` (for small ones: descriptions), or `None`.
    pub async fn read(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let found = match self.s3.get(&self.key(name)?).await {
            Ok(found) => found,
            Err(e) if is_missing_object(&e) => return Ok(None),
            Err(e) => return Err(self.failure("download", name, e)),
        };
        let bytes = found
            .bytes()
            .await
            .map_err(|e| self.failure("download", name, e))?;
        Ok(Some(bytes.to_vec()))
    }

    /// Writes `bytes` as the object `name` in one request.
    pub async fn write(&self, name: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.s3
            .put(&self.key(name)?, PutPayload::from(bytes))
            .await
            .map_err(|e| self.failure("upload", name, e))?;
        Ok(())
    }

    /// Deletes the object `name`; one already gone is no error.
    pub async fn delete(&self, name: &str) -> Result<(), StoreError> {
        match self.s3.delete(&self.key(name)?).await {
            Ok(()) => Ok(()),
            Err(e) if is_missing_object(&e) => Ok(()),
            Err(e) => Err(self.failure("delete", name, e)),
        }
    }

    /// Uploads the file `path` as the object `name`, read part by part, and makes
    /// the object only if the bytes sent are the ones `description` names. Any
    /// failure, a mismatch or `stop` resolving aborts the multipart upload, so that
    /// no object and no stored parts are left behind.
    pub async fn upload_file(
        &self,
        name: &str,
        path: &Path,
        description: &Description,
        stop: impl Future<Output = ()>,
    ) -> Result<Facts, StoreError> {
        let key = self.key(name)?;
        let file_error = |what, source| StoreError::File {
            what,
            path: path.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| file_error("read", e))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| file_error("read", e))?
            .len();
        let part_bytes = part_size(size);
        if size <= part_bytes {
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or_default());
            file.read_to_end(&mut bytes)
                .await
                .map_err(|e| file_error("read", e))?;
            let mut tally = Tally::default();
            tally.update(&bytes);
            let facts = tally.finish();
            self.refuse_mismatch(name, &facts, description)?;
            tokio::select! {
                sent = self.s3.put(&key, PutPayload::from(bytes)) => {
                    sent.map_err(|e| self.failure("upload", name, e))?;
                }
                () = stop => return Err(StoreError::Stopped),
            }
            return Ok(facts);
        }
        let mut upload = self
            .s3
            .put_multipart(&key)
            .await
            .map_err(|e| self.failure("upload", name, e))?;
        let sent = tokio::select! {
            sent = self.send_parts(upload.as_mut(), &mut file, part_bytes, name, path) => sent,
            () = stop => Err(StoreError::Stopped),
        };
        let outcome = match sent {
            Ok(facts) => match self.refuse_mismatch(name, &facts, description) {
                Ok(()) => upload
                    .complete()
                    .await
                    .map(|_| facts)
                    .map_err(|e| self.failure("upload", name, e)),
                Err(mismatch) => Err(mismatch),
            },
            Err(e) => Err(e),
        };
        if outcome.is_err()
            && let Err(abort) = upload.abort().await
        {
            tracing::warn!(location = %self.location(name), error = %abort, "cannot abort the multipart upload; a lifecycle rule for incomplete multipart uploads removes its parts");
        }
        outcome
    }

    async fn send_parts(
        &self,
        upload: &mut dyn MultipartUpload,
        file: &mut tokio::fs::File,
        part_bytes: u64,
        name: &str,
        path: &Path,
    ) -> Result<Facts, StoreError> {
        let mut tally = Tally::default();
        loop {
            let mut part = Vec::with_capacity(usize::try_from(part_bytes).unwrap_or_default());
            (&mut *file)
                .take(part_bytes)
                .read_to_end(&mut part)
                .await
                .map_err(|source| StoreError::File {
                    what: "read",
                    path: path.to_path_buf(),
                    source,
                })?;
            if part.is_empty() {
                return Ok(tally.finish());
            }
            tally.update(&part);
            upload
                .put_part(PutPayload::from(part))
                .await
                .map_err(|e| self.failure("upload", name, e))?;
        }
    }

    fn refuse_mismatch(
        &self,
        name: &str,
        facts: &Facts,
        description: &Description,
    ) -> Result<(), StoreError> {
        match facts.compare(description) {
            None => Ok(()),
            Some(mismatch) => Err(StoreError::Mismatch {
                location: format!("the dump read for {}", self.location(name)),
                mismatch,
            }),
        }
    }

    /// Downloads the object `name` into the file `to` (created or replaced), in
    /// pieces, and returns the size and SHA-256 of what arrived, or `None` when there
    /// is no such object.
    pub async fn download(&self, name: &str, to: &Path) -> Result<Option<Facts>, StoreError> {
        let found = match self.s3.get(&self.key(name)?).await {
            Ok(found) => found,
            Err(e) if is_missing_object(&e) => return Ok(None),
            Err(e) => return Err(self.failure("download", name, e)),
        };
        let file_error = |source| StoreError::File {
            what: "write",
            path: to.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::File::create(to).await.map_err(file_error)?;
        let mut tally = Tally::default();
        let mut pieces = found.into_stream();
        while let Some(piece) = pieces.next().await {
            let piece = piece.map_err(|e| self.failure("download", name, e))?;
            tally.update(&piece);
            file.write_all(&piece).await.map_err(file_error)?;
        }
        file.sync_all().await.map_err(file_error)?;
        Ok(Some(tally.finish()))
    }

    /// `error`, met while trying to `operation` the object `name`, as the user's
    /// problem to fix.
    fn failure(
        &self,
        operation: &'static str,
        name: &str,
        error: ::object_store::Error,
    ) -> StoreError {
        let detail = explain(&error);
        let code = s3_code(&detail);
        let endpoint = self.config.endpoint.clone();
        if let Some(tls) = tls_reason(&detail) {
            return StoreError::Tls {
                endpoint,
                detail: tls,
                ca_file_set: self.config.ca_file.is_some(),
            };
        }
        if code.as_deref() == Some("NoSuchBucket") {
            return StoreError::NoBucket {
                bucket: self.config.bucket.clone(),
                endpoint,
            };
        }
        let refused = matches!(
            error,
            ::object_store::Error::PermissionDenied { .. }
                | ::object_store::Error::Unauthenticated { .. }
        ) || matches!(
            code.as_deref(),
            // versitygw answers an unknown access key with 404 XAdminUserNotFound.
            Some(
                "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "AccessDenied"
                    | "XAdminUserNotFound"
            )
        );
        if refused {
            return StoreError::KeysRefused {
                secret: self.config.secret_name.as_ref().map_or_else(
                    || "the Secret named in objectStore.secretName".to_string(),
                    |s| format!("Secret {s}"),
                ),
                location: self.location(name),
                code: code.unwrap_or_else(|| "access denied".to_string()),
            };
        }
        if is_unreachable(&detail) {
            return StoreError::Unreachable { endpoint, detail };
        }
        StoreError::Request {
            operation,
            location: self.location(name),
            detail,
        }
    }
}

/// The part size for a file of `size` bytes: [`PART_BYTES`], or more when the file
/// would need more than [`MAX_PARTS`] parts, in whole MiB.
pub fn part_size(size: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    needed.max(PART_BYTES)
}

/// Whether `error` says the object does not exist (a HEAD's 404 has no body to
/// say more), rather than the bucket or the access key.
fn is_missing_object(error: &::object_store::Error) -> bool {
    matches!(error, ::object_store::Error::NotFound { .. })
        && matches!(
            s3_code(&explain(error)).as_deref(),
            None | Some("NoSuchKey")
        )
}

/// Every distinct message in `error`'s chain of causes, joined by `: `, with an S3
/// error document shortened to its code and message.
fn explain(error: &(dyn std::error::Error + 'static)) -> String {
    condense_error_document(&causes(error))
}

fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut messages: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        let message = error.to_string();
        // Wrappers often repeat their cause's message; keep the most specific one.
        if let Some(last) = messages.last_mut()
            && last.contains(&message)
        {
            *last = message;
        } else if !messages.iter().any(|m| m.contains(&message)) {
            messages.push(message);
        }
        next = error.source();
    }
    messages.join(": ")
}

/// `detail` with an S3 error document (`<?xml ...><Error><Code>...`) replaced by
/// `<Code>...</Code>: <message>`, which keeps the code findable by [`s3_code`].
fn condense_error_document(detail: &str) -> String {
    let (Some(start), Some(end)) = (detail.find("<?xml"), detail.find("</Error>")) else {
        return detail.to_string();
    };
    if end < start {
        return detail.to_string();
    }
    let document = &detail[start..end];
    let element = |tag: &str| {
        let open = format!("<{tag}>");
        let from = document.find(&open)? + open.len();
        let to = document[from..].find(&format!("</{tag}>"))? + from;
        Some(document[from..to].to_string())
    };
    let code = element("Code").unwrap_or_default();
    let message = element("Message").unwrap_or_default();
    format!(
        "{}<Code>{code}</Code>: {message}{}",
        &detail[..start],
        &detail[end + "</Error>".len()..]
    )
}

/// The S3 error code in an error response, such as `NoSuchBucket`.
fn s3_code(detail: &str) -> Option<String> {
    let start = detail.find("<Code>")? + "<Code>".len();
    let end = detail[start..].find("</Code>")? + start;
    Some(detail[start..end].to_string())
}

/// The TLS library's reason, when the failure is the endpoint's certificate or
/// the TLS handshake.
fn tls_reason(detail: &str) -> Option<String> {
    const MARKS: [&str; 3] = [
        "invalid peer certificate",
        "InvalidCertificate",
        "tls handshake",
    ];
    MARKS.iter().find_map(|mark| {
        detail.find(mark).map(|at| {
            detail[at..]
                .split(": ")
                .take(2)
                .collect::<Vec<_>>()
                .join(": ")
        })
    })
}

fn is_unreachable(detail: &str) -> bool {
    [
        "Connection refused",
        "dns error",
        "failed to lookup address",
        "No route to host",
        "timed out",
        "error trying to connect",
    ]
    .iter()
    .any(|mark| detail.contains(mark))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |var| pairs.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
    }

    const GOOD: [(&str, &str); 6] = [
        (ENDPOINT_ENV, "https://s3.example:9000/"),
        (BUCKET_ENV, "backups"),
        (PREFIX_ENV, "webtoon/minitoon/"),
        (ACCESS_KEY_ID_ENV, "AKIDEXAMPLE"),
        (
            SECRET_ACCESS_KEY_ENV,
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ),
        (REGION_ENV, "ap-northeast-2"),
    ];

    fn with(overrides: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut all: Vec<_> = GOOD
            .iter()
            .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
            .copied()
            .collect();
        all.extend(overrides.iter().filter(|(_, v)| !v.is_empty()).copied());
        all
    }

    #[test]
    fn reads_the_jobs_environment() {
        let config = StoreConfig::from_vars(vars(&GOOD)).expect("valid");
        assert_eq!(config.endpoint, "https://s3.example:9000");
        assert_eq!(config.region, "ap-northeast-2");
        assert_eq!(
            config.location("webtoon-20261201T030000Z.sql.gz"),
            "s3://backups/webtoon/minitoon/webtoon-20261201T030000Z.sql.gz"
        );
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("wJalr") && !debug.contains("AKIDEXAMPLE"),
            "{debug}"
        );
    }

    #[test]
    fn plain_http_needs_the_user_to_accept_it() {
        let refused = StoreConfig::from_vars(vars(&with(&[(ENDPOINT_ENV, "http://minio:9000")])))
            .expect_err("refused");
        assert!(
            refused
                .to_string()
                .contains("spec.database.backup.objectStore.insecure: true"),
            "{refused}"
        );
        let allowed = StoreConfig::from_vars(vars(&with(&[
            (ENDPOINT_ENV, "http://minio:9000"),
            (ALLOW_HTTP_ENV, "true"),
        ])))
        .expect("allowed");
        assert!(allowed.allow_http);
    }

    #[test]
    fn names_the_variable_that_is_wrong() {
        for (overrides, expected) in [
            (
                vec![(ENDPOINT_ENV, "s3.example")],
                "WEBTOON_S3_ENDPOINT=\"s3.example\" is not",
            ),
            (
                vec![(ENDPOINT_ENV, "https://s3.example/bucket")],
                "no path, no bucket",
            ),
            (vec![(PREFIX_ENV, "webtoon/minitoon")], "objectStore.prefix"),
            (vec![(PREFIX_ENV, "/webtoon/")], "objectStore.prefix"),
            (vec![(BUCKET_ENV, "Backups")], "objectStore.bucket"),
            (
                vec![(SECRET_ACCESS_KEY_ENV, "")],
                "AWS_SECRET_ACCESS_KEY is not set",
            ),
            (vec![(ALLOW_HTTP_ENV, "yes")], "must be true or false"),
        ] {
            let error = StoreConfig::from_vars(vars(&with(&overrides))).expect_err("refused");
            assert!(error.to_string().contains(expected), "{error}");
        }
    }

    #[test]
    fn parts_stay_within_s3s_limits() {
        assert_eq!(part_size(1), PART_BYTES);
        assert_eq!(part_size(80 << 30), 9 << 20);
        let huge = 5u64 << 40;
        assert!(huge.div_ceil(part_size(huge)) <= MAX_PARTS);
        assert_eq!(part_size(huge) % (1 << 20), 0);
    }

    #[test]
    fn finds_the_s3_error_code_and_the_tls_reason() {
        assert_eq!(
            s3_code(
                "Server returned non-2xx status code: 404 Not Found: <?xml?><Error><Code>NoSuchBucket</Code><Message>x</Message></Error>"
            ),
            Some("NoSuchBucket".to_string())
        );
        assert_eq!(s3_code("connection reset"), None);
        assert_eq!(
            condense_error_document(
                "404 Not Found: <?xml version=\"1.0\"?>\n<Error><Code>NoSuchBucket</Code><Message>The bucket does not exist</Message><RequestId>X</RequestId></Error>"
            ),
            "404 Not Found: <Code>NoSuchBucket</Code>: The bucket does not exist"
        );
        assert_eq!(
            tls_reason("error sending request: client error (Connect): invalid peer certificate: UnknownIssuer: more").as_deref(),
            Some("invalid peer certificate: UnknownIssuer")
        );
    }
}
