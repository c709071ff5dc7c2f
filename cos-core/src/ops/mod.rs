//! One request builder and one response parser per COS operation.
//!
//! Each operation is a plain value implementing [`Operation`]: `to_request` validates the input and builds the
//! unsigned [`http::Request`]; `parse_response` turns the answer into a typed output or an [`Error`].
//! [`crate::task::OneShot`] adds signing, retries and clock-skew correction to any of them.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use crate::body::RequestBody;
use crate::checksum::SentDigest;
use crate::config::Config;
use crate::error::{Error, InvalidInput, ServiceError, UnexpectedResponse};

mod acl;
mod append;
mod copy;
mod cors;
mod delete;
mod get;
mod get_stream;
mod head;
mod list_objects;
mod list_uploads;
mod multipart;
mod put;
mod tagging;
pub use acl::{
    GetObjectAcl, Grant, Grantee, ObjectAcl, Permission, PutObjectAcl, PutObjectAclOutput,
};
pub use append::{AppendObject, AppendObjectOutput, MAX_APPEND_OBJECT_SIZE};
pub use copy::{
    CopyObject, CopyObjectOutput, CopySource, MetadataDirective, UploadPartCopy,
    MAX_COPY_OBJECT_SIZE,
};
pub use cors::{
    BucketCorsOutput, CorsConfiguration, CorsRule, DeleteBucketCors, GetBucketCors,
    GetBucketCorsOutput, PutBucketCors, CORS_METHODS, MAX_CORS_RULES, MAX_CORS_XML_BYTES,
};
pub use delete::{
    DeleteError, DeleteObject, DeleteObjectOutput, DeleteObjects, DeleteObjectsOutput,
    DeletedObject, MAX_DELETE_KEYS,
};
pub use get::{GetObject, GetObjectOutput};
pub use get_stream::{BodyCheck, GetHead, GetObjectStream, MAX_ERROR_BODY};
pub use head::{HeadObject, ObjectInfo, ObjectType};
pub use list_objects::{
    ListObjects, ListObjectsOutput, ListObjectsPages, ObjectSummary, MAX_LIST_PAGES,
};
pub use list_uploads::{ListMultipartUploads, ListMultipartUploadsOutput, UploadInfo};
pub use multipart::{
    AbortMultipartUpload, AbortMultipartUploadOutput, CompleteMultipartUpload,
    CompleteMultipartUploadOutput, CompletedPart, InitiateMultipartUpload,
    InitiateMultipartUploadOutput, ListParts, ListPartsOutput, Owner, PartInfo, UploadPart,
    UploadPartOutput, MAX_PART_NUMBER, MAX_PART_SIZE,
};
pub use put::{PutObject, PutObjectOutput};
pub use tagging::{
    DeleteObjectTagging, GetObjectTagging, GetObjectTaggingOutput, ObjectTaggingOutput,
    PutObjectTagging, Tags, MAX_TAGS,
};

/// One COS request/response exchange.
pub trait Operation {
    /// The typed result.
    type Output;
    /// The operation's name, as in COS documentation (`PutObject`, `UploadPart`…).
    const NAME: &'static str;
    /// Validates the input and builds the unsigned request (with `Host` and, where a body may be sent,
    /// `Content-Length`). An error here means nothing was sent.
    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error>;
    /// Interprets the response. `sent` is the digest of a [`RequestBody::Source`] body as the driver sent it.
    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        sent: Option<&SentDigest>,
    ) -> Result<Self::Output, Error>;
}

/// Sets the largest 2xx body the core accepts for this request (see [`crate::body::ResponseLimits`]).
pub(crate) fn accept_success_body(req: &mut http::Request<RequestBody>, limit: u64) {
    let limits = crate::body::ResponseLimits {
        success: limit,
        ..Default::default()
    };
    req.extensions_mut().insert(limits);
}

/// The largest listing answer accepted (List Parts, List Multipart Uploads: at most 1000 entries of a few
/// hundred bytes each): 8 MiB.
pub const MAX_LISTING_BODY: u64 = 8 * 1024 * 1024;

/// Starts a request with `Host`, `User-Agent` and the body's `Content-Length` (for methods with bodies).
pub(crate) fn request(
    config: &Config,
    method: http::Method,
    key: &str,
    query: &[(&str, String)],
    body: RequestBody,
) -> Result<http::Request<RequestBody>, Error> {
    let uri = config.uri(key, query)?;
    let mut req = http::Request::builder().method(method.clone()).uri(uri);
    let headers = req.headers_mut().expect("builder is valid");
    headers.insert(http::header::HOST, header_value("host", &config.host())?);
    headers.insert(
        http::header::USER_AGENT,
        header_value("user-agent", &config.user_agent)?,
    );
    if method == http::Method::PUT || method == http::Method::POST {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    // Upload answers are empty or a few hundred bytes: the default limits; listings and GET raise them.
    req = req.extension(crate::body::ResponseLimits::default());
    req.body(body)
        .map_err(|e| Error::InvalidInput(InvalidInput::Uri(e.to_string())))
}

/// A request whose body is an XML document: [`request`] plus `Content-Type: application/xml` and the
/// document's `Content-MD5` (COS requires it on Delete Multiple Objects, tagging and CORS).
pub(crate) fn xml_request(
    config: &Config,
    method: http::Method,
    key: &str,
    query: &[(&str, String)],
    xml: String,
) -> Result<http::Request<RequestBody>, Error> {
    let md5 = crate::checksum::content_md5(xml.as_bytes());
    let mut req = request(
        config,
        method,
        key,
        query,
        RequestBody::Bytes(Bytes::from(xml)),
    )?;
    let h = req.headers_mut();
    h.insert("content-md5", header_value("content-md5", &md5)?);
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    Ok(req)
}

pub(crate) fn header_value(name: &str, value: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(value)
        .map_err(|_| Error::InvalidInput(InvalidInput::HeaderValue(name.to_string())))
}

/// Reads a response header as a string.
pub fn header(response: &http::Response<Bytes>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The `x-cos-request-id` of a response.
pub fn request_id(response: &http::Response<Bytes>) -> Option<String> {
    header(response, "x-cos-request-id")
}

/// Reads `x-cos-hash-crc64ecma` as a number.
pub fn crc64_header(response: &http::Response<Bytes>) -> Option<u64> {
    header(response, "x-cos-hash-crc64ecma").and_then(|v| v.trim().parse().ok())
}

/// `x-cos-version-id`, with `null` (unversioned) as `None`.
pub fn version_id(response: &http::Response<Bytes>) -> Option<String> {
    header(response, "x-cos-version-id").filter(|v| v != "null" && !v.is_empty())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorXml {
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "Message")]
    message: String,
    #[serde(rename = "Resource")]
    resource: Option<String>,
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
    #[serde(rename = "TraceId")]
    trace_id: Option<String>,
    #[serde(rename = "StringToSign")]
    string_to_sign: Option<String>,
    #[serde(rename = "FormatString")]
    format_string: Option<String>,
}

/// Deserializes an XML document from a server. Markup declarations (`<!DOCTYPE`, `<!ENTITY`, anything
/// `<!` but comments and CDATA) are refused: COS never sends them, and a DOCTYPE inside element text
/// makes quick-xml 0.37 panic (found by `cos-core/tests/fuzz.rs`). A panic of the parser on any other
/// input is turned into an error as well.
pub(crate) fn from_xml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let mut rest = text;
    while let Some(i) = rest.find("<!") {
        rest = &rest[i + 2..];
        if !(rest.starts_with("--") || rest.starts_with("[CDATA[")) {
            return Err("markup declarations (<!DOCTYPE, <!ENTITY…) are not accepted".into());
        }
    }
    std::panic::catch_unwind(|| quick_xml::de::from_str::<T>(text))
        .map_err(|_| "the XML parser failed on this document".to_string())?
        .map_err(|e| e.to_string())
}

/// Short, lossy excerpt of a body for error messages.
///
/// Secrets a server may echo (a security token in a `FormatString`) are redacted.
pub fn excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(256)];
    crate::error::redact_secrets(String::from_utf8_lossy(cut).trim())
}

/// The request a response answers, as the driver recorded it in the response's extensions.
pub fn response_context(response: &http::Response<Bytes>) -> Option<crate::error::RequestContext> {
    response
        .extensions()
        .get::<crate::error::RequestContext>()
        .cloned()
}

/// Parses an `<Error>` document, if the body is one.
pub fn parse_error_body(response: &http::Response<Bytes>) -> Option<ServiceError> {
    let text = std::str::from_utf8(response.body()).ok()?.trim();
    if !text.contains("<Error") {
        return None;
    }
    let x: ErrorXml = from_xml(text).ok()?;
    if x.code.is_empty() {
        return None;
    }
    Some(ServiceError {
        status: response.status().as_u16(),
        code: x.code,
        message: crate::error::redact_secrets(&x.message),
        request_id: x
            .request_id
            .filter(|s| !s.is_empty())
            .or_else(|| request_id(response)),
        trace_id: x
            .trace_id
            .filter(|s| !s.is_empty())
            .or_else(|| header(response, "x-cos-trace-id")),
        resource: x.resource,
        // The server echoes the signed headers, the security token among them: redacted here, at the
        // source, so that neither `Display` nor `Debug` of the error can show it.
        string_to_sign: x.string_to_sign.map(|s| crate::error::redact_secrets(&s)),
        format_string: x.format_string.map(|s| crate::error::redact_secrets(&s)),
        context: response_context(response),
    })
}

/// The error a failed response stands for: a COS error document, a body-less COS error (HEAD), or an
/// unexpected response (a proxy's HTML page, an empty 502).
pub fn error_from_response(response: &http::Response<Bytes>) -> Error {
    if let Some(e) = parse_error_body(response) {
        return Error::Service(Box::new(e));
    }
    let status = response.status();
    if response.body().is_empty() && request_id(response).is_some() && status.as_u16() >= 400 {
        let code = match status.as_u16() {
            404 => "NoSuchKey",
            403 => "AccessDenied",
            412 => "PreconditionFailed",
            _ => status.canonical_reason().unwrap_or("Unknown"),
        };
        return Error::Service(Box::new(ServiceError {
            status: status.as_u16(),
            code: code.replace(' ', ""),
            message: "no error body (HEAD or empty answer)".into(),
            request_id: request_id(response),
            trace_id: header(response, "x-cos-trace-id"),
            context: response_context(response),
            ..Default::default()
        }));
    }
    unexpected(response, "not a COS error document")
}

/// An [`Error::UnexpectedResponse`] for this response.
pub fn unexpected(response: &http::Response<Bytes>, reason: &str) -> Error {
    let reason = match response.extensions().get::<crate::body::BodyTruncated>() {
        Some(t) => format!("{reason} (body cut after {} bytes)", t.at),
        None => reason.to_string(),
    };
    Error::UnexpectedResponse(Box::new(UnexpectedResponse {
        status: response.status().as_u16(),
        reason,
        excerpt: excerpt(response.body()),
        request_id: request_id(response),
        context: response_context(response),
    }))
}

/// Succeeds for a 2xx status; otherwise returns the error the response stands for.
pub fn expect_success(response: &http::Response<Bytes>) -> Result<(), Error> {
    if response.status().is_success() {
        Ok(())
    } else {
        Err(error_from_response(response))
    }
}

/// Parses an XML body of a 2xx response into `T`; an `<Error>` body (COS can send one with 200) is an error.
pub fn parse_xml<T: serde::de::DeserializeOwned>(
    response: &http::Response<Bytes>,
    root: &str,
) -> Result<T, Error> {
    expect_success(response)?;
    if let Some(e) = parse_error_body(response) {
        return Err(Error::Service(Box::new(e)));
    }
    let text = std::str::from_utf8(response.body())
        .map_err(|_| unexpected(response, "body is not UTF-8"))?
        .trim();
    if !text.contains(&format!("<{root}")) {
        return Err(unexpected(
            response,
            &format!("expected an XML <{root}> document"),
        ));
    }
    from_xml(text).map_err(|e| unexpected(response, &format!("malformed <{root}>: {e}")))
}

/// Access control list values for `x-cos-acl`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Acl {
    /// Inherit the bucket's ACL.
    Default,
    /// Owner only.
    Private,
    /// Anyone may read.
    PublicRead,
}

impl Acl {
    /// The header value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Acl::Default => "default",
            Acl::Private => "private",
            Acl::PublicRead => "public-read",
        }
    }
}

/// Storage classes for `x-cos-storage-class`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageClass {
    /// `STANDARD`.
    Standard,
    /// `STANDARD_IA`.
    StandardIa,
    /// `ARCHIVE`.
    Archive,
    /// `DEEP_ARCHIVE`.
    DeepArchive,
    /// `INTELLIGENT_TIERING`.
    IntelligentTiering,
    /// `MAZ_STANDARD`.
    MazStandard,
    /// `MAZ_STANDARD_IA`.
    MazStandardIa,
    /// `MAZ_INTELLIGENT_TIERING`.
    MazIntelligentTiering,
    /// Any other class COS may add.
    Other(String),
}

impl StorageClass {
    /// The header value.
    pub fn as_str(&self) -> &str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::Archive => "ARCHIVE",
            StorageClass::DeepArchive => "DEEP_ARCHIVE",
            StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
            StorageClass::MazStandard => "MAZ_STANDARD",
            StorageClass::MazStandardIa => "MAZ_STANDARD_IA",
            StorageClass::MazIntelligentTiering => "MAZ_INTELLIGENT_TIERING",
            StorageClass::Other(s) => s,
        }
    }

    /// Parses a header value (unknown values become [`StorageClass::Other`]).
    pub fn parse(s: &str) -> StorageClass {
        match s {
            "STANDARD" => StorageClass::Standard,
            "STANDARD_IA" => StorageClass::StandardIa,
            "ARCHIVE" => StorageClass::Archive,
            "DEEP_ARCHIVE" => StorageClass::DeepArchive,
            "INTELLIGENT_TIERING" => StorageClass::IntelligentTiering,
            "MAZ_STANDARD" => StorageClass::MazStandard,
            "MAZ_STANDARD_IA" => StorageClass::MazStandardIa,
            "MAZ_INTELLIGENT_TIERING" => StorageClass::MazIntelligentTiering,
            other => StorageClass::Other(other.to_string()),
        }
    }
}

/// Server-side encryption for `x-cos-server-side-encryption`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerSideEncryption {
    /// `AES256` (SSE-COS).
    Aes256,
    /// `cos/kms`, optionally with a KMS key id.
    Kms {
        /// `x-cos-server-side-encryption-cos-kms-key-id`.
        key_id: Option<String>,
    },
}

/// The lowest and highest traffic limit COS accepts, in bit/s.
pub const TRAFFIC_LIMIT_RANGE: std::ops::RangeInclusive<u64> = 819_200..=838_860_800;

/// Largest total size of `x-cos-meta-*` names and values.
pub const MAX_METADATA_BYTES: usize = 2048;

/// Optional headers shared by PUT Object, Append Object and Initiate Multipart Upload (and part of them by
/// Upload Part). Set them through the operations' builder methods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectOptions {
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Expires`.
    pub expires: Option<String>,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
    /// `x-cos-acl`.
    pub acl: Option<Acl>,
    /// `x-cos-grant-read`.
    pub grant_read: Option<String>,
    /// `x-cos-grant-read-acp`.
    pub grant_read_acp: Option<String>,
    /// `x-cos-grant-write-acp`.
    pub grant_write_acp: Option<String>,
    /// `x-cos-grant-full-control`.
    pub grant_full_control: Option<String>,
    /// `x-cos-storage-class`.
    pub storage_class: Option<StorageClass>,
    /// `x-cos-meta-<name>: <value>`; names without the prefix.
    pub metadata: Vec<(String, String)>,
    /// `x-cos-traffic-limit`, bit/s.
    pub traffic_limit: Option<u64>,
    /// `x-cos-server-side-encryption`.
    pub server_side_encryption: Option<ServerSideEncryption>,
    /// `x-cos-forbid-overwrite: true`.
    pub forbid_overwrite: bool,
    /// `x-cos-tagging`: the object's tags.
    pub tagging: Option<Tags>,
    /// `Content-MD5` (base64).
    pub content_md5: Option<String>,
    /// Any other header (e.g. `x-cos-meta-md5` set by UploadAddMetaMd5, or a new COS header).
    pub extra_headers: Vec<(String, String)>,
}

impl ObjectOptions {
    /// Validates the options and writes them as headers.
    pub fn apply(&self, headers: &mut HeaderMap) -> Result<(), Error> {
        let mut set = |name: &str, value: &str| -> Result<(), Error> {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::InvalidInput(InvalidInput::HeaderValue(name.to_string())))?;
            headers.insert(n, header_value(name, value)?);
            Ok(())
        };
        let opt = [
            ("cache-control", &self.cache_control),
            ("content-disposition", &self.content_disposition),
            ("content-encoding", &self.content_encoding),
            ("content-type", &self.content_type),
            ("expires", &self.expires),
            ("x-cos-grant-read", &self.grant_read),
            ("x-cos-grant-read-acp", &self.grant_read_acp),
            ("x-cos-grant-write-acp", &self.grant_write_acp),
            ("x-cos-grant-full-control", &self.grant_full_control),
            ("content-md5", &self.content_md5),
        ];
        for (name, value) in opt {
            if let Some(v) = value {
                set(name, v)?;
            }
        }
        if self.expect_continue {
            set("expect", "100-continue")?;
        }
        if let Some(tags) = &self.tagging {
            set("x-cos-tagging", &tags.to_header()?)?;
        }
        if let Some(acl) = &self.acl {
            set("x-cos-acl", acl.as_str())?;
        }
        if let Some(class) = &self.storage_class {
            set("x-cos-storage-class", class.as_str())?;
        }
        if let Some(limit) = self.traffic_limit {
            validate_traffic_limit(limit)?;
            set("x-cos-traffic-limit", &limit.to_string())?;
        }
        match &self.server_side_encryption {
            Some(ServerSideEncryption::Aes256) => set("x-cos-server-side-encryption", "AES256")?,
            Some(ServerSideEncryption::Kms { key_id }) => {
                set("x-cos-server-side-encryption", "cos/kms")?;
                if let Some(id) = key_id {
                    set("x-cos-server-side-encryption-cos-kms-key-id", id)?;
                }
            }
            None => {}
        }
        if self.forbid_overwrite {
            set("x-cos-forbid-overwrite", "true")?;
        }
        let mut meta_bytes = 0;
        for (name, value) in &self.metadata {
            let name = name.strip_prefix("x-cos-meta-").unwrap_or(name);
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(InvalidInput::MetadataName(name.to_string()).into());
            }
            meta_bytes += "x-cos-meta-".len() + name.len() + value.len();
            set(&format!("x-cos-meta-{}", name.to_ascii_lowercase()), value)?;
        }
        if meta_bytes > MAX_METADATA_BYTES {
            return Err(InvalidInput::MetadataTooLarge(meta_bytes).into());
        }
        for (name, value) in &self.extra_headers {
            set(name, value)?;
        }
        Ok(())
    }
}

/// Checks a traffic limit against [`TRAFFIC_LIMIT_RANGE`].
pub fn validate_traffic_limit(limit: u64) -> Result<(), Error> {
    if TRAFFIC_LIMIT_RANGE.contains(&limit) {
        Ok(())
    } else {
        Err(InvalidInput::TrafficLimit(limit).into())
    }
}

/// Generates the [`ObjectOptions`] builder methods on an operation with an `options` field.
macro_rules! object_options {
    ($ty:ty) => {
        impl $ty {
            /// Sets all optional headers at once.
            pub fn options(mut self, options: $crate::ops::ObjectOptions) -> Self {
                self.options = options;
                self
            }
            /// `Content-Type`.
            pub fn content_type(mut self, v: impl Into<String>) -> Self {
                self.options.content_type = Some(v.into());
                self
            }
            /// `Cache-Control`.
            pub fn cache_control(mut self, v: impl Into<String>) -> Self {
                self.options.cache_control = Some(v.into());
                self
            }
            /// `Content-Disposition`.
            pub fn content_disposition(mut self, v: impl Into<String>) -> Self {
                self.options.content_disposition = Some(v.into());
                self
            }
            /// `Content-Encoding`.
            pub fn content_encoding(mut self, v: impl Into<String>) -> Self {
                self.options.content_encoding = Some(v.into());
                self
            }
            /// `Expires`.
            pub fn expires(mut self, v: impl Into<String>) -> Self {
                self.options.expires = Some(v.into());
                self
            }
            /// `Expect: 100-continue`.
            pub fn expect_continue(mut self) -> Self {
                self.options.expect_continue = true;
                self
            }
            /// `x-cos-acl`.
            pub fn acl(mut self, v: $crate::ops::Acl) -> Self {
                self.options.acl = Some(v);
                self
            }
            /// `x-cos-grant-read`, e.g. `id="qcs::cam::uin/100000000001:uin/100000000011"`.
            pub fn grant_read(mut self, v: impl Into<String>) -> Self {
                self.options.grant_read = Some(v.into());
                self
            }
            /// `x-cos-grant-read-acp`.
            pub fn grant_read_acp(mut self, v: impl Into<String>) -> Self {
                self.options.grant_read_acp = Some(v.into());
                self
            }
            /// `x-cos-grant-write-acp`.
            pub fn grant_write_acp(mut self, v: impl Into<String>) -> Self {
                self.options.grant_write_acp = Some(v.into());
                self
            }
            /// `x-cos-grant-full-control`.
            pub fn grant_full_control(mut self, v: impl Into<String>) -> Self {
                self.options.grant_full_control = Some(v.into());
                self
            }
            /// `x-cos-storage-class`.
            pub fn storage_class(mut self, v: $crate::ops::StorageClass) -> Self {
                self.options.storage_class = Some(v);
                self
            }
            /// Adds `x-cos-meta-<name>: <value>` (all metadata together at most 2 KB).
            pub fn metadata(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
                self.options.metadata.push((name.into(), value.into()));
                self
            }
            /// `x-cos-traffic-limit` in bit/s (819200..=838860800).
            pub fn traffic_limit(mut self, bits_per_second: u64) -> Self {
                self.options.traffic_limit = Some(bits_per_second);
                self
            }
            /// `x-cos-server-side-encryption`.
            pub fn server_side_encryption(mut self, v: $crate::ops::ServerSideEncryption) -> Self {
                self.options.server_side_encryption = Some(v);
                self
            }
            /// `x-cos-forbid-overwrite: true`: fail rather than replace an existing object.
            pub fn forbid_overwrite(mut self) -> Self {
                self.options.forbid_overwrite = true;
                self
            }
            /// `x-cos-tagging`: the object's tags (at most 10; checked when the request is built).
            pub fn tagging(mut self, tags: $crate::ops::Tags) -> Self {
                self.options.tagging = Some(tags);
                self
            }
            /// `Content-MD5` (base64 of the body's MD5); COS rejects a body that does not match.
            pub fn content_md5(mut self, v: impl Into<String>) -> Self {
                self.options.content_md5 = Some(v.into());
                self
            }
            /// Any other header.
            pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
                self.options.extra_headers.push((name.into(), value.into()));
                self
            }
        }
    };
}
pub(crate) use object_options;

/// Checks a response ETag against the MD5 of what was sent (skipped when no MD5 was computed, for
/// KMS-encrypted objects, whose ETag is not an MD5, and for ETags that are not 32 hex digits).
pub fn check_etag(part: Option<u32>, etag: &str, sent: Option<&SentDigest>) -> Result<(), Error> {
    let Some(expected) = sent.and_then(SentDigest::md5_hex) else {
        return Ok(());
    };
    let bare = etag.trim_matches('"');
    if bare.len() != 32 || !bare.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(());
    }
    if bare.eq_ignore_ascii_case(&expected) {
        Ok(())
    } else {
        Err(Error::Integrity(crate::error::IntegrityError::Etag {
            part,
            expected,
            actual: etag.to_string(),
        }))
    }
}

/// What an upload answer let the core check against the bytes sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verified {
    /// The ETag is the MD5 of the bytes sent and the CRC-64 matches.
    Both,
    /// The ETag is the MD5 of the bytes sent; no CRC-64 to compare.
    Md5,
    /// The CRC-64 matches; the ETag is not an MD5 (e.g. KMS encryption) or there was no digest of it.
    Crc64,
    /// Nothing could be compared (accepted only with `accept_unverified`).
    Nothing,
}

impl std::fmt::Display for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verified::Both => "ETag/MD5 and CRC-64 verified",
            Verified::Md5 => "ETag/MD5 verified",
            Verified::Crc64 => "CRC-64 verified",
            Verified::Nothing => "not verified",
        })
    }
}

/// Checks an upload answer's ETag and CRC-64 against what was sent and says what was verified. A mismatch
/// is an [`Error::Integrity`]; an answer that lets nothing be compared (no MD5 ETag or no MD5 computed —
/// the default, see `verify_md5` —, no parseable `x-cos-hash-crc64ecma`, or no digest of what was sent) is
/// [`crate::error::IntegrityError::Unverified`] unless `accept_unverified`.
pub fn verify_upload(
    part: Option<u32>,
    etag: &str,
    crc64: Option<u64>,
    expected_crc64: Option<u64>,
    sent: Option<&SentDigest>,
    accept_unverified: bool,
) -> Result<Verified, Error> {
    check_etag(part, etag, sent)?;
    check_crc64(part, crc64, expected_crc64)?;
    let bare = etag.trim_matches('"');
    let md5 = sent.is_some_and(|d| d.md5.is_some())
        && bare.len() == 32
        && bare.bytes().all(|b| b.is_ascii_hexdigit());
    let crc = crc64.is_some() && expected_crc64.is_some();
    match (md5, crc) {
        (true, true) => Ok(Verified::Both),
        (true, false) => Ok(Verified::Md5),
        (false, true) => Ok(Verified::Crc64),
        (false, false) if accept_unverified => Ok(Verified::Nothing),
        (false, false) => Err(Error::Integrity(crate::error::IntegrityError::Unverified {
            part,
            etag: etag.to_string(),
            crc64_present: crc64.is_some(),
        })),
    }
}

/// Checks a response CRC-64 against what was sent, when both are known.
pub fn check_crc64(
    part: Option<u32>,
    actual: Option<u64>,
    expected: Option<u64>,
) -> Result<(), Error> {
    match (actual, expected) {
        (Some(a), Some(e)) if a != e => {
            Err(Error::Integrity(crate::error::IntegrityError::Crc64 {
                part,
                expected: e,
                actual: a,
            }))
        }
        _ => Ok(()),
    }
}

/// An empty string as `None`.
pub(crate) fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

/// Parses an optional numeric XML field; a present but malformed value is an unexpected response.
pub(crate) fn parse_number<T: std::str::FromStr>(
    response: &http::Response<Bytes>,
    field: &str,
    value: Option<&str>,
) -> Result<Option<T>, Error> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| unexpected(response, &format!("{field} {v:?} is not a number"))),
    }
}

/// Parses an XML boolean (`true`/`false`, any case); absent or empty is `false`.
pub(crate) fn parse_bool(
    response: &http::Response<Bytes>,
    field: &str,
    value: Option<&str>,
) -> Result<bool, Error> {
    match value.map(str::trim).unwrap_or("") {
        "" => Ok(false),
        v if v.eq_ignore_ascii_case("true") => Ok(true),
        v if v.eq_ignore_ascii_case("false") => Ok(false),
        v => Err(unexpected(
            response,
            &format!("{field} {v:?} is not a boolean"),
        )),
    }
}

/// Undoes `encoding-type=url` on one field when `encoded` (a broken escape is an unexpected response).
pub(crate) fn url_decoded(
    response: &http::Response<Bytes>,
    encoded: bool,
    value: String,
) -> Result<String, Error> {
    if !encoded {
        return Ok(value);
    }
    crate::auth::decode(&value)
        .ok_or_else(|| unexpected(response, &format!("cannot url-decode {value:?}")))
}

/// Checks a `max-*` parameter against `1..=1000`.
pub(crate) fn validate_max(name: &'static str, value: u32) -> Result<(), Error> {
    if (1..=1000).contains(&value) {
        Ok(())
    } else {
        Err(InvalidInput::Parameter {
            name,
            reason: format!("{value} is outside 1..=1000"),
        }
        .into())
    }
}

/// Checks that an upload id is usable in a query.
pub(crate) fn validate_upload_id(upload_id: &str) -> Result<(), Error> {
    if upload_id.is_empty() || upload_id.chars().any(|c| c.is_control()) {
        Err(InvalidInput::Parameter {
            name: "uploadId",
            reason: "must be a non-empty upload id without control characters".into(),
        }
        .into())
    } else {
        Ok(())
    }
}

/// Inserts a header after validating its name and value.
pub(crate) fn set_header(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), Error> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Error::InvalidInput(InvalidInput::HeaderValue(name.to_string())))?;
    headers.insert(n, header_value(name, value)?);
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Shared fixtures for the operations' unit tests.
    use bytes::Bytes;

    use crate::auth::AuthorizationFields;
    use crate::body::RequestBody;
    use crate::config::Config;
    use crate::credentials::Credentials;

    pub fn config() -> Config {
        Config::new(
            "examplebucket-1250000000",
            "ap-guangzhou",
            Credentials::new("AKIDEXAMPLE", "secret"),
        )
        .unwrap()
    }

    pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response<Bytes> {
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Bytes::from(body.to_string())).unwrap()
    }

    pub fn header<'a>(req: &'a http::Request<RequestBody>, name: &str) -> Option<&'a str> {
        req.headers().get(name).map(|v| v.to_str().unwrap())
    }

    /// Signs the request and returns the parsed `Authorization` fields.
    pub fn signed(mut req: http::Request<RequestBody>) -> AuthorizationFields {
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        crate::auth::sign(&config(), &mut req, now).unwrap();
        AuthorizationFields::parse(req.headers()["authorization"].to_str().unwrap()).unwrap()
    }

    pub const HTML_502: &str =
        "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
