//! webtoon-operator: turns one `WebtoonStack` custom resource into a complete,
//! secure, self-healing serving stack for a webtoon site.

pub mod api;
pub mod backup;
pub mod controller;
pub mod manifest;
pub mod metrics;
pub mod render;

use api::FieldError;

/// Everything that can go wrong in the operator and its command-line tools.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The stack breaks one or more validation rules.
    #[error("invalid WebtoonStack:\n{}", format_field_errors(.0))]
    InvalidSpec(Vec<FieldError>),

    /// A manifest file could not be read as YAML of the expected shape.
    #[error("cannot parse {source_name}: {message}")]
    Parse {
        /// File name, or `-` for standard input.
        source_name: String,
        /// The parser's explanation, with line and column where known.
        message: String,
    },

    /// Reading or writing a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A request to the Kubernetes API failed.
    #[error("cannot {verb} {kind} {name}: {source}")]
    Kube {
        /// What was attempted: read, apply, delete, ...
        verb: &'static str,
        /// Kind of the object.
        kind: String,
        /// Name of the object.
        name: String,
        /// The client's error.
        source: Box<kube::Error>,
    },

    /// This replica lost the leader Lease and must stop reconciling.
    #[error("lost the leader Lease {name}: {why}; restarting to campaign again")]
    LeaseLost {
        /// The Lease.
        name: String,
        /// What happened.
        why: String,
    },
    /// The controller cannot start.
    #[error("cannot {what}: {message}")]
    Startup {
        /// What start-up step failed, such as `listen on 0.0.0.0:8080`.
        what: String,
        /// The underlying explanation.
        message: String,
    },

    /// WebtoonStacks cannot be listed when the controller starts.
    #[error(
        "cannot list WebtoonStacks: {source}: install the CRD (webtoon-operator crd | kubectl apply -f -) and let the operator list and watch webtoonstacks.webtoon.io"
    )]
    StackApiUnavailable {
        /// The client's error.
        source: Box<kube::Error>,
    },

    /// The API server did not answer in time.
    #[error("the Kubernetes API did not answer within {seconds}s while {step}; retrying")]
    Timeout {
        /// The reconcile step that waited.
        step: &'static str,
        /// How long it waited.
        seconds: u64,
    },

    /// The operating system's random number generator failed.
    #[error("cannot generate credentials: {0}")]
    Credentials(String),

    /// Serializing an object failed.
    #[error("cannot serialize {what}: {message}")]
    Serialize {
        /// What was being serialized.
        what: String,
        /// The serializer's explanation.
        message: String,
    },
}

impl Error {
    /// An API error on one object.
    pub fn kube(
        verb: &'static str,
        kind: impl Into<String>,
        name: &str,
        source: kube::Error,
    ) -> Self {
        Error::Kube {
            verb,
            kind: kind.into(),
            name: name.to_string(),
            source: Box::new(source),
        }
    }

    /// Whether the API answered 409 Conflict: another writer got there first.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Kube { source, .. } if matches!(source.as_ref(), kube::Error::Api(s) if s.code == 409))
    }

    /// A short label for metrics: the kind of failure, never user data.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::InvalidSpec(_) => "invalid_spec",
            Error::Parse { .. } => "parse",
            Error::Io { .. } => "io",
            Error::Startup { .. } => "startup",
            Error::LeaseLost { .. } => "lease",
            Error::Kube { .. } if self.is_conflict() => "conflict",
            Error::Kube { .. } | Error::StackApiUnavailable { .. } => "api",
            Error::Timeout { .. } => "timeout",
            Error::Serialize { .. } => "serialize",
            Error::Credentials(_) => "credentials",
        }
    }
}

fn format_field_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Result with the operator's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
