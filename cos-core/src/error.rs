//! One error type for every operation and transfer, and the one place that decides what is worth retrying.

use std::fmt;
use std::sync::Arc;

/// Everything that can go wrong in cos-rs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input was rejected before any request was built: nothing was sent.
    InvalidInput(InvalidInput),
    /// COS answered with an error document (or an error status with a COS request id).
    Service(Box<ServiceError>),
    /// The response is not what the operation expects (an HTML page from a proxy, a truncated XML body…).
    UnexpectedResponse(Box<UnexpectedResponse>),
    /// The request did not complete: connect, TLS, reset, timeout or I/O failure in the driver.
    Transport(TransportError),
    /// Bytes arrived, but not the bytes sent: an ETag or CRC-64 does not match what was computed locally.
    Integrity(IntegrityError),
    /// The local source (file, reader, stream) failed or changed while it was being uploaded.
    Source(String),
    /// The task was cancelled by its owner.
    Cancelled,
}

impl Error {
    /// Whether sending the same request again may succeed: transport failures, 5xx, `SlowDown`,
    /// `RequestTimeout`, and unreadable 2xx bodies. Never other 4xx (clock skew is handled separately).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(e) => e.kind != TransportErrorKind::ReplayMismatch,
            Error::Service(e) => {
                e.status >= 500
                    || matches!(
                        e.code.as_str(),
                        "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable"
                    )
            }
            Error::UnexpectedResponse(e) => {
                e.status >= 500 || (200..300).contains(&e.status) || e.status == 429
            }
            _ => false,
        }
    }

    /// The COS error code, when COS sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Service(e) => Some(&e.code),
            _ => None,
        }
    }

    /// The HTTP status of the response that caused the error, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Service(e) => Some(e.status),
            Error::UnexpectedResponse(e) => Some(e.status),
            _ => None,
        }
    }

    /// The COS request id, where the server gave one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Service(e) => e.request_id.as_deref(),
            Error::UnexpectedResponse(e) => e.request_id.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidInput(e) => write!(f, "invalid input (nothing was sent): {e}"),
            Error::Service(e) => write!(f, "{e}"),
            Error::UnexpectedResponse(e) => write!(f, "{e}"),
            Error::Transport(e) => write!(f, "{e}"),
            Error::Integrity(e) => write!(f, "integrity check failed: {e}"),
            Error::Source(e) => write!(f, "upload source failed: {e}"),
            Error::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::InvalidInput(e) => Some(e),
            Error::Transport(e) => Some(e),
            _ => None,
        }
    }
}

impl Error {
    /// Which request the error came from (operation, method, key, attempt), when known.
    pub fn context(&self) -> Option<&RequestContext> {
        match self {
            Error::Service(e) => e.context.as_ref(),
            Error::UnexpectedResponse(e) => e.context.as_ref(),
            Error::Transport(e) => e.context.as_deref(),
            _ => None,
        }
    }

    /// Records which request the error came from, unless it already says so.
    pub fn with_context(mut self, context: &RequestContext) -> Error {
        match &mut self {
            Error::Service(e) => {
                e.context.get_or_insert_with(|| context.clone());
            }
            Error::UnexpectedResponse(e) => {
                e.context.get_or_insert_with(|| context.clone());
            }
            Error::Transport(e) => {
                e.context.get_or_insert_with(|| Box::new(context.clone()));
            }
            _ => {}
        }
        self
    }
}

/// Which request an error came from: the operation, the method, the object key and the attempt.
///
/// The drivers attach it to every response and transport failure, so an error says which step of a
/// transfer failed (e.g. the `ListMultipartUploads` an `upload_file` makes to find a resumable upload).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestContext {
    /// The operation (`PutObject`, `UploadPart`, `ListMultipartUploads`…).
    pub operation: &'static str,
    /// The HTTP method.
    pub method: String,
    /// The object key (decoded; empty for bucket-level requests).
    pub key: String,
    /// The attempt, 1 for the first.
    pub attempt: u32,
}

impl RequestContext {
    /// The context of a request the core built for `operation`.
    pub fn of<B>(operation: &'static str, attempt: u32, request: &http::Request<B>) -> Self {
        let path = request.uri().path();
        let path = path.strip_prefix('/').unwrap_or(path);
        let key = crate::auth::decode(path).unwrap_or_else(|| path.to_string());
        RequestContext {
            operation,
            method: request.method().as_str().to_string(),
            key,
            attempt,
        }
    }
}

impl fmt::Display for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} /{}, attempt {})",
            self.operation,
            self.method,
            crate::error::printable(&self.key),
            self.attempt
        )
    }
}

/// `s` with control characters escaped, for messages.
pub(crate) fn printable(s: &str) -> String {
    if s.chars().any(char::is_control) {
        s.escape_debug().to_string()
    } else {
        s.to_string()
    }
}

/// Replaces secret values a server may echo (`x-cos-security-token`, `q-signature`, `q-key`'s signing key
/// never travels) with `<redacted>` in `text`: a COS `FormatString`, `StringToSign` or body excerpt.
///
/// ```
/// let s = cos_core::error::redact_secrets("put\n/a\n\nhost=h&x-cos-security-token=TOKEN123\n");
/// assert_eq!(s, "put\n/a\n\nhost=h&x-cos-security-token=<redacted>\n");
/// ```
pub fn redact_secrets(text: &str) -> String {
    const MARKERS: [&str; 6] = [
        "x-cos-security-token=",
        "x-cos-security-token:",
        "x-cos-security-token%3d",
        "q-signature=",
        "q-signature%3d",
        "<securitytoken>",
    ];
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hit = MARKERS
            .iter()
            .filter_map(|m| lower[i..].find(m).map(|at| (i + at, m.len())))
            .min();
        let Some((at, len)) = hit else {
            out.push_str(&text[i..]);
            break;
        };
        let value_start = at + len;
        out.push_str(&text[i..value_start]);
        let rest = &text[value_start..];
        let skip_ws = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        let value_len = rest[skip_ws..]
            .find(['&', '\n', '\r', '"', '<', ' ', ',', ';'])
            .unwrap_or(rest.len() - skip_ws);
        if value_len > 0 {
            out.push_str(&rest[..skip_ws]);
            out.push_str("<redacted>");
        }
        i = value_start + skip_ws + value_len;
        if value_len == 0 {
            out.push_str(&rest[..skip_ws]);
        }
    }
    out
}

impl From<InvalidInput> for Error {
    fn from(e: InvalidInput) -> Self {
        Error::InvalidInput(e)
    }
}

/// Why input was rejected before sending.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidInput {
    /// The bucket is not `<name>-<appid>` with a valid name, or the host name would be too long.
    Bucket {
        /// The bucket as given.
        bucket: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The region is empty or has characters other than lower-case letters, digits and `-`.
    Region(String),
    /// The object key is empty, too long, or otherwise unusable.
    Key {
        /// The key as given (cut to 100 characters).
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A part number outside `1..=10000`.
    PartNumber(u64),
    /// A part or object size outside what COS accepts.
    Size {
        /// What was measured (part, object, append…).
        what: &'static str,
        /// The size in bytes.
        size: u64,
        /// The accepted limit, described.
        limit: &'static str,
    },
    /// A traffic limit outside `819200..=838860800` bit/s.
    TrafficLimit(u64),
    /// The `x-cos-meta-*` headers together exceed 2 KB.
    MetadataTooLarge(usize),
    /// A metadata name is not a valid header name.
    MetadataName(String),
    /// A header value contains characters HTTP headers cannot carry.
    HeaderValue(String),
    /// A parameter is outside its range (max-uploads, max-parts, position…).
    Parameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The SecretId or SecretKey is empty.
    MissingCredentials,
    /// The endpoint is not an `http://` or `https://` URL with a host.
    Endpoint(String),
    /// A request URI could not be formed or read.
    Uri(String),
    /// The multipart upload has no parts to complete.
    NoParts,
    /// A checkpoint cannot be used for this upload.
    Checkpoint(String),
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidInput::Bucket { bucket, reason } => write!(f, "bucket {bucket:?}: {reason}"),
            InvalidInput::Region(r) => write!(
                f,
                "region {r:?}: expected lower-case letters, digits and '-', e.g. ap-guangzhou"
            ),
            InvalidInput::Key { key, reason } => write!(f, "object key {key:?}: {reason}"),
            InvalidInput::PartNumber(n) => write!(f, "part number {n}: must be in 1..=10000"),
            InvalidInput::Size { what, size, limit } => write!(f, "{what} size {size}: {limit}"),
            InvalidInput::TrafficLimit(v) => {
                write!(f, "traffic limit {v} bit/s: must be in 819200..=838860800")
            }
            InvalidInput::MetadataTooLarge(n) => {
                write!(f, "user metadata is {n} bytes: COS accepts at most 2048")
            }
            InvalidInput::MetadataName(n) => {
                write!(f, "metadata name {n:?} is not a valid header name")
            }
            InvalidInput::HeaderValue(h) => {
                write!(f, "header {h}: value has characters HTTP cannot carry")
            }
            InvalidInput::Parameter { name, reason } => write!(f, "{name}: {reason}"),
            InvalidInput::MissingCredentials => {
                f.write_str("SecretId and SecretKey must both be set")
            }
            InvalidInput::Endpoint(e) => {
                write!(f, "endpoint {e:?}: expected http(s)://host[:port]")
            }
            InvalidInput::Uri(u) => write!(f, "cannot form a request URI from {u:?}"),
            InvalidInput::NoParts => f.write_str("a multipart upload needs at least one part"),
            InvalidInput::Checkpoint(e) => write!(f, "checkpoint: {e}"),
        }
    }
}

impl std::error::Error for InvalidInput {}

/// An error answered by COS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceError {
    /// HTTP status (a 200 for a Complete whose body is `<Error>`).
    pub status: u16,
    /// COS `Code`, e.g. `NoSuchUpload`; the status text when the body had none.
    pub code: String,
    /// COS `Message`.
    pub message: String,
    /// `RequestId` (body) or `x-cos-request-id` (header).
    pub request_id: Option<String>,
    /// `TraceId` (body) or `x-cos-trace-id` (header).
    pub trace_id: Option<String>,
    /// `Resource`.
    pub resource: Option<String>,
    /// The server's `StringToSign`, sent with `SignatureDoesNotMatch`.
    pub string_to_sign: Option<String>,
    /// The server's `FormatString` (HttpString), sent with `SignatureDoesNotMatch`; a security token in
    /// it is replaced with `<redacted>` when the response is parsed.
    pub format_string: Option<String>,
    /// Which request was answered with this error.
    pub context: Option<RequestContext>,
}

impl fmt::Display for ServiceError {
    /// Server text is shown through [`Untrusted`]: control characters escaped, long values cut (the
    /// fields keep the full text).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "COS error {} {}: {}",
            self.status,
            Untrusted(&self.code, 64),
            Untrusted(&self.message, MAX_SHOWN)
        )?;
        if let Some(c) = &self.context {
            write!(f, " in {c}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {})", Untrusted(id, 128))?;
        }
        if let Some(s) = &self.format_string {
            write!(f, "; server FormatString \"{}\"", Untrusted(s, MAX_SHOWN))?;
        }
        Ok(())
    }
}

/// How many characters of one server-provided value a `Display` shows.
pub const MAX_SHOWN: usize = 512;

/// Displays text that came from a server safely on a terminal: control characters (C0, DEL, C1, and the
/// bidirectional overrides) are written as `\n`, `\t`, `\u{1b}`…, and after `.1` characters the rest is
/// replaced by `…(N more bytes)`.
///
/// ```
/// use cos_core::error::Untrusted;
/// assert_eq!(Untrusted("ok\x1b[2K\rupload ok", 100).to_string(), "ok\\u{1b}[2K\\rupload ok");
/// assert_eq!(Untrusted(&"x".repeat(10), 4).to_string(), "xxxx…(6 more bytes)");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Untrusted<'a>(pub &'a str, pub usize);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Untrusted(s, max) = *self;
        for (n, (i, c)) in s.char_indices().enumerate() {
            if n == max {
                return write!(f, "…({} more bytes)", s.len() - i);
            }
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control()
                    || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
                {
                    write!(f, "{}", c.escape_unicode())?
                }
                c => fmt::Write::write_char(f, c)?,
            }
        }
        Ok(())
    }
}

/// A response the operation cannot interpret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnexpectedResponse {
    /// HTTP status.
    pub status: u16,
    /// What was expected and what was wrong.
    pub reason: String,
    /// The first bytes of the body, lossily decoded.
    pub excerpt: String,
    /// `x-cos-request-id`, if present.
    pub request_id: Option<String>,
    /// Which request was answered.
    pub context: Option<RequestContext>,
}

impl fmt::Display for UnexpectedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unexpected response {}", self.status)?;
        if let Some(c) = &self.context {
            write!(f, " in {c}")?;
        }
        write!(f, ": {}", Untrusted(&self.reason, MAX_SHOWN))?;
        if !self.excerpt.is_empty() {
            write!(f, "; body starts \"{}\"", Untrusted(&self.excerpt, 256))?;
        }
        Ok(())
    }
}

/// A transport failure reported by the driver.
///
/// [`std::error::Error::source`] leads to the underlying failure (down to the `std::io::Error` where there
/// is one); equality compares the kind, message and context only.
#[derive(Clone)]
pub struct TransportError {
    /// What kind of failure.
    pub kind: TransportErrorKind,
    /// The driver's description.
    pub message: String,
    /// Which request failed, when the driver knows.
    pub context: Option<Box<RequestContext>>,
    cause: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl TransportError {
    /// A transport error of a kind with a message.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            message: message.into(),
            context: None,
            cause: None,
        }
    }

    /// Keeps `cause` as the [`source`](std::error::Error::source) of this error.
    pub fn with_cause(
        mut self,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.cause = Some(Arc::from(cause.into()));
        self
    }

    /// Names the request that failed, and words a connection failure the same on every transport:
    /// `cannot connect to <host:port>: <cause>`, the cause being the innermost error of the
    /// [`source`](std::error::Error::source) chain (the `io::Error` where there is one).
    pub fn for_request(mut self, context: RequestContext, authority: &str) -> Self {
        if self.kind == TransportErrorKind::Connect {
            let mut inner: Option<&(dyn std::error::Error + 'static)> = None;
            let mut cur = std::error::Error::source(&self);
            while let Some(e) = cur {
                inner = Some(e);
                cur = e.source();
            }
            let cause = inner.map_or_else(|| self.message.clone(), |e| e.to_string());
            self.message = format!("cannot connect to {authority}: {cause}");
        }
        self.context = Some(Box::new(context));
        self
    }

    /// Like [`with_cause`](Self::with_cause) for a cause already shared.
    pub fn with_shared_cause(mut self, cause: Arc<dyn std::error::Error + Send + Sync>) -> Self {
        self.cause = Some(cause);
        self
    }
}

impl PartialEq for TransportError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message && self.context == other.context
    }
}

impl Eq for TransportError {}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("context", &self.context)
            .field("cause", &self.cause)
            .finish()
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transport error ({:?})", self.kind)?;
        if let Some(c) = &self.context {
            write!(f, " in {c}")?;
        }
        // Written by the driver (a replay diff can be long), but it may quote what a server sent:
        // escaped, and cut only at a generous length.
        write!(f, ": {}", Untrusted(&self.message, 8 * MAX_SHOWN))
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Kinds of transport failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// Could not connect (refused, DNS, unreachable).
    Connect,
    /// TLS handshake or certificate failure.
    Tls,
    /// A connect or read timeout elapsed.
    Timeout,
    /// The connection was closed or reset mid-exchange.
    Reset,
    /// Reading the request body from its source failed.
    Body,
    /// The answer's body is larger than the core accepts for the operation
    /// ([`crate::task::ResponseLimits`]); the driver stopped reading it.
    TooLarge,
    /// A replay responder (recorded exchanges, in tests) has no answer for the request: never retried,
    /// so a mismatch fails at once instead of after backoff sleeps.
    ReplayMismatch,
    /// Anything else.
    Other,
}

/// A local check against what the server reported failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntegrityError {
    /// The ETag the server returned is not the MD5 of the bytes sent.
    Etag {
        /// Part number, or `None` for a single PUT or append.
        part: Option<u32>,
        /// MD5 hex of what was sent.
        expected: String,
        /// ETag returned.
        actual: String,
    },
    /// The server's CRC-64 is not the CRC-64 of the bytes sent.
    Crc64 {
        /// Part number, or `None` for the whole object.
        part: Option<u32>,
        /// CRC-64 computed locally.
        expected: u64,
        /// CRC-64 returned.
        actual: u64,
    },
    /// The answer lets nothing be verified: its ETag is not an MD5 of what was sent (or there is no
    /// digest of what was sent) and it carries no usable `x-cos-hash-crc64ecma`. Accept such answers with
    /// `accept_unverified` on the operation.
    Unverified {
        /// Part number, or `None` for a single PUT or append.
        part: Option<u32>,
        /// The ETag returned (empty when absent).
        etag: String,
        /// Whether an `x-cos-hash-crc64ecma` was present (but unparseable or nothing to compare with).
        crc64_present: bool,
    },
}

impl fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = |p: &Option<u32>| match p {
            Some(n) => format!("part {n}"),
            None => "object".to_string(),
        };
        match self {
            IntegrityError::Etag {
                part,
                expected,
                actual,
            } => write!(
                f,
                "{} ETag {} is not the MD5 {expected} of the bytes sent",
                what(part),
                Untrusted(actual, 80)
            ),
            IntegrityError::Unverified {
                part,
                etag,
                crc64_present,
            } => write!(
                f,
                "{} answer cannot be verified: ETag \"{}\" is not an MD5 of the bytes sent and {}",
                what(part),
                Untrusted(etag, 80),
                if *crc64_present {
                    "x-cos-hash-crc64ecma cannot be compared"
                } else {
                    "there is no x-cos-hash-crc64ecma"
                }
            ),
            IntegrityError::Crc64 {
                part,
                expected,
                actual,
            } => write!(
                f,
                "{} CRC-64 {actual} from COS differs from {expected} computed locally",
                what(part)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> Error {
        Error::Service(Box::new(ServiceError {
            status,
            code: code.into(),
            request_id: Some("req-1".into()),
            ..ServiceError::default()
        }))
    }

    fn unexpected(status: u16) -> Error {
        Error::UnexpectedResponse(Box::new(UnexpectedResponse {
            status,
            reason: "not XML".into(),
            excerpt: String::new(),
            request_id: Some("req-2".into()),
            context: None,
        }))
    }

    fn context(operation: &'static str, attempt: u32) -> RequestContext {
        RequestContext {
            operation,
            method: "PUT".into(),
            key: "a/b".into(),
            attempt,
        }
    }

    #[test]
    fn what_is_retried() {
        assert!(service(503, "ServiceUnavailable").is_retryable());
        assert!(service(400, "RequestTimeout").is_retryable());
        assert!(service(429, "SlowDown").is_retryable());
        assert!(!service(404, "NoSuchUpload").is_retryable());
        assert!(!service(403, "AccessDenied").is_retryable());
        assert!(unexpected(429).is_retryable());
        assert!(unexpected(200).is_retryable());
        assert!(unexpected(502).is_retryable());
        assert!(!unexpected(404).is_retryable());
        assert!(!unexpected(300).is_retryable());
        assert!(
            Error::Transport(TransportError::new(TransportErrorKind::Reset, "x")).is_retryable()
        );
        assert!(
            !Error::Transport(TransportError::new(TransportErrorKind::ReplayMismatch, "x"))
                .is_retryable()
        );
        assert!(!Error::Cancelled.is_retryable());
        assert!(!Error::Source("gone".into()).is_retryable());
    }

    #[test]
    fn code_status_and_request_id_come_from_the_answer() {
        let s = service(404, "NoSuchKey");
        assert_eq!(
            (s.code(), s.status(), s.request_id()),
            (Some("NoSuchKey"), Some(404), Some("req-1"))
        );
        let u = unexpected(502);
        assert_eq!(
            (u.code(), u.status(), u.request_id()),
            (None, Some(502), Some("req-2"))
        );
        let t = Error::Transport(TransportError::new(TransportErrorKind::Timeout, "slow"));
        assert_eq!((t.code(), t.status(), t.request_id()), (None, None, None));
    }

    #[test]
    fn the_source_of_an_input_or_transport_error_is_kept() {
        use std::error::Error as _;
        let input = Error::InvalidInput(InvalidInput::NoParts);
        assert_eq!(
            input.source().map(|e| e.to_string()),
            Some(InvalidInput::NoParts.to_string())
        );
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let t =
            Error::Transport(TransportError::new(TransportErrorKind::Connect, "c").with_cause(io));
        let source = t.source().expect("the transport error");
        assert!(source.to_string().starts_with("transport error (Connect)"));
        assert_eq!(
            source.source().map(|e| e.to_string()),
            Some("refused".into())
        );
        assert!(service(500, "InternalError").source().is_none());
        assert!(Error::Cancelled.source().is_none());
    }

    #[test]
    fn an_error_says_which_request_it_came_from_and_keeps_the_first_context() {
        let first = context("UploadPart", 1);
        let second = context("CompleteMultipartUpload", 2);
        for e in [
            service(500, "InternalError"),
            unexpected(502),
            Error::Transport(TransportError::new(TransportErrorKind::Reset, "reset")),
        ] {
            assert_eq!(e.context(), None);
            let e = e.with_context(&first).with_context(&second);
            assert_eq!(e.context(), Some(&first), "{e:?}");
            assert!(
                e.to_string()
                    .contains("in UploadPart (PUT /a/b, attempt 1)"),
                "{e}"
            );
        }
        let c = Error::Cancelled.with_context(&first);
        assert_eq!(c.context(), None);
        assert_eq!(c, Error::Cancelled);
    }

    #[test]
    fn a_request_context_names_the_operation_method_key_and_attempt_and_escapes_the_key() {
        let req = http::Request::put("http://h/dir/a%20b?partNumber=1")
            .body(())
            .unwrap();
        let c = RequestContext::of("UploadPart", 3, &req);
        assert_eq!(c.to_string(), "UploadPart (PUT /dir/a b, attempt 3)");
        let mut c = context("PutObject", 1);
        c.key = "a\nb\u{1b}".into();
        assert_eq!(c.to_string(), "PutObject (PUT /a\\nb\\u{1b}, attempt 1)");
        assert_eq!(printable("plain ké"), "plain ké");
        assert_eq!(printable("tab\there"), "tab\\there");
    }

    #[test]
    fn secrets_are_redacted_wherever_they_stand() {
        let cases = [
            (
                "host=h&x-cos-security-token=TOKEN&x=1",
                "host=h&x-cos-security-token=<redacted>&x=1",
            ),
            ("q-signature=abc", "q-signature=<redacted>"),
            ("Q-Signature%3Dabc,next", "Q-Signature%3D<redacted>,next"),
            (
                "x-cos-security-token: \tTOK\nhost: h",
                "x-cos-security-token: \t<redacted>\nhost: h",
            ),
            // Empty values stay empty, whitespace included, and the text after them is kept.
            ("q-signature=&x=1", "q-signature=&x=1"),
            ("x-cos-security-token:  ", "x-cos-security-token:  "),
            (
                "x-cos-security-token:  \nq-signature=s;t",
                "x-cos-security-token:  \nq-signature=<redacted>;t",
            ),
            (
                "<SecurityToken>tok</SecurityToken><A>q-signature=z</A>",
                "<SecurityToken><redacted></SecurityToken><A>q-signature=<redacted></A>",
            ),
            ("nothing secret", "nothing secret"),
            ("", ""),
        ];
        for (text, want) in cases {
            assert_eq!(redact_secrets(text), want, "{text:?}");
        }
    }

    #[test]
    fn server_text_is_escaped_and_cut() {
        assert_eq!(Untrusted("a\r\n\tb", 10).to_string(), "a\\r\\n\\tb");
        assert_eq!(
            Untrusted("\u{202e}x\u{7f}", 10).to_string(),
            "\\u{202e}x\\u{7f}"
        );
        assert_eq!(Untrusted("ééé", 1).to_string(), "é…(4 more bytes)");
        assert_eq!(Untrusted("abc", 3).to_string(), "abc");
    }

    #[test]
    fn the_displays_show_what_users_need() {
        let s = Error::Service(Box::new(ServiceError {
            status: 403,
            code: "SignatureDoesNotMatch".into(),
            message: "bad\nsig".into(),
            request_id: Some("rid".into()),
            format_string: Some("put\n/a".into()),
            context: Some(context("PutObject", 2)),
            ..ServiceError::default()
        }));
        assert_eq!(
            s.to_string(),
            "COS error 403 SignatureDoesNotMatch: bad\\nsig in PutObject (PUT /a/b, attempt 2) \
             (request id rid); server FormatString \"put\\n/a\""
        );
        let u = Error::UnexpectedResponse(Box::new(UnexpectedResponse {
            status: 200,
            reason: "no ETag".into(),
            excerpt: "<html>".into(),
            request_id: None,
            context: None,
        }));
        assert_eq!(
            u.to_string(),
            "unexpected response 200: no ETag; body starts \"<html>\""
        );
        assert_eq!(
            unexpected(500).to_string(),
            "unexpected response 500: not XML"
        );
        assert_eq!(
            Error::InvalidInput(InvalidInput::PartNumber(0)).to_string(),
            "invalid input (nothing was sent): part number 0: must be in 1..=10000"
        );
        assert_eq!(
            Error::Source("changed".into()).to_string(),
            "upload source failed: changed"
        );
        assert_eq!(Error::Cancelled.to_string(), "cancelled");
        let crc = Error::Integrity(IntegrityError::Crc64 {
            part: Some(2),
            expected: 1,
            actual: 2,
        });
        assert_eq!(
            crc.to_string(),
            "integrity check failed: part 2 CRC-64 2 from COS differs from 1 computed locally"
        );
        let etag = IntegrityError::Etag {
            part: None,
            expected: "abc".into(),
            actual: "x\u{1b}".into(),
        };
        assert_eq!(
            etag.to_string(),
            "object ETag x\\u{1b} is not the MD5 abc of the bytes sent"
        );
        for (present, tail) in [
            (true, "x-cos-hash-crc64ecma cannot be compared"),
            (false, "there is no x-cos-hash-crc64ecma"),
        ] {
            let e = IntegrityError::Unverified {
                part: Some(7),
                etag: "e".into(),
                crc64_present: present,
            };
            assert_eq!(
                e.to_string(),
                format!("part 7 answer cannot be verified: ETag \"e\" is not an MD5 of the bytes sent and {tail}")
            );
        }
    }

    #[test]
    fn a_connect_failure_names_the_host_and_the_innermost_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let t = TransportError::new(TransportErrorKind::Connect, "tcp connect error")
            .with_cause(io)
            .for_request(context("PutObject", 1), "127.0.0.1:9");
        assert_eq!(t.message, "cannot connect to 127.0.0.1:9: refused");
        assert_eq!(t.context.as_deref(), Some(&context("PutObject", 1)));
        assert_eq!(
            t.to_string(),
            "transport error (Connect) in PutObject (PUT /a/b, attempt 1): cannot connect to \
             127.0.0.1:9: refused"
        );
        let bare = TransportError::new(TransportErrorKind::Connect, "no route")
            .for_request(context("PutObject", 1), "h:1");
        assert_eq!(bare.message, "cannot connect to h:1: no route");
        let reset = TransportError::new(TransportErrorKind::Reset, "reset by peer")
            .for_request(context("PutObject", 1), "h:1");
        assert_eq!(reset.message, "reset by peer");
        // Equality ignores the cause; Debug shows it.
        let shared: Arc<dyn std::error::Error + Send + Sync> =
            Arc::new(std::io::Error::other("inner"));
        let with = TransportError::new(TransportErrorKind::Other, "m").with_shared_cause(shared);
        assert_eq!(with, TransportError::new(TransportErrorKind::Other, "m"));
        assert_ne!(with, TransportError::new(TransportErrorKind::Tls, "m"));
        assert_ne!(with, TransportError::new(TransportErrorKind::Other, "n"));
        assert!(format!("{with:?}").contains("inner"), "{with:?}");
        assert!(format!("{with:?}").contains("kind: Other"), "{with:?}");
    }
}
