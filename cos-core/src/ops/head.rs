//! HEAD Object: `HEAD /<key>`, the object's metadata without its body.

use bytes::Bytes;

use super::{crc64_header, header, set_header, unexpected, version_id, Operation, StorageClass};
use crate::body::RequestBody;
use crate::checksum::SentDigest;
use crate::config::{validate_key, Config};
use crate::error::{Error, ServiceError};

/// `x-cos-object-type`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectType {
    /// `normal` (also when the header is absent): written by PUT or a multipart upload.
    Normal,
    /// `appendable`: created by Append Object; more appends may follow.
    Appendable,
    /// Any other type COS may report.
    Other(String),
}

impl ObjectType {
    /// Parses the header value (absent means [`ObjectType::Normal`]).
    pub fn parse(v: Option<&str>) -> ObjectType {
        match v.map(str::trim) {
            None | Some("") => ObjectType::Normal,
            Some(v) if v.eq_ignore_ascii_case("normal") => ObjectType::Normal,
            Some(v) if v.eq_ignore_ascii_case("appendable") => ObjectType::Appendable,
            Some(v) => ObjectType::Other(v.to_string()),
        }
    }
}

/// What HEAD (and GET) Object report about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// `Content-Length` (for a ranged GET, the length of the range); the body length when the header is absent.
    pub content_length: u64,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `ETag`, quoted as COS sends it (`"<md5>"`, or `"<hex>-<parts>"` after a multipart upload).
    pub etag: Option<String>,
    /// `Last-Modified` (an HTTP date).
    pub last_modified: Option<String>,
    /// `x-cos-object-type`.
    pub object_type: ObjectType,
    /// `x-cos-storage-class` ([`StorageClass::Standard`] when absent).
    pub storage_class: StorageClass,
    /// `x-cos-hash-crc64ecma` of the whole object.
    pub crc64: Option<u64>,
    /// `x-cos-meta-*` headers, names without the prefix (lower case), sorted by name.
    pub metadata: Vec<(String, String)>,
    /// `x-cos-version-id` (`None` when unversioned).
    pub version_id: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Expires`.
    pub expires: Option<String>,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
}

impl ObjectInfo {
    /// Reads the object's headers from a HEAD or GET response (no status check).
    ///
    /// ```
    /// let r = http::Response::builder()
    ///     .header("content-length", "5")
    ///     .header("x-cos-object-type", "appendable")
    ///     .header("x-cos-meta-owner", "me")
    ///     .body(bytes::Bytes::new()).unwrap();
    /// let info = cos_core::ops::ObjectInfo::from_headers(&r);
    /// assert_eq!(info.next_append_position(), Some(5));
    /// assert_eq!(info.metadata, vec![("owner".to_string(), "me".to_string())]);
    /// ```
    pub fn from_headers(response: &http::Response<Bytes>) -> ObjectInfo {
        let mut metadata: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                let n = name.as_str().strip_prefix("x-cos-meta-")?;
                Some((
                    n.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                ))
            })
            .collect();
        metadata.sort();
        ObjectInfo {
            content_length: content_length(response).unwrap_or(response.body().len() as u64),
            content_type: header(response, "content-type"),
            etag: header(response, "etag"),
            last_modified: header(response, "last-modified"),
            object_type: ObjectType::parse(header(response, "x-cos-object-type").as_deref()),
            storage_class: header(response, "x-cos-storage-class")
                .filter(|s| !s.trim().is_empty())
                .map(|s| StorageClass::parse(s.trim()))
                .unwrap_or(StorageClass::Standard),
            crc64: crc64_header(response),
            metadata,
            version_id: version_id(response),
            cache_control: header(response, "cache-control"),
            content_disposition: header(response, "content-disposition"),
            content_encoding: header(response, "content-encoding"),
            expires: header(response, "expires"),
            request_id: super::request_id(response),
        }
    }

    /// Where the next append must start: the length, for an appendable object; `None` otherwise.
    pub fn next_append_position(&self) -> Option<u64> {
        (self.object_type == ObjectType::Appendable).then_some(self.content_length)
    }

    /// True for an object created by a multipart upload (its ETag is `"<hex>-<parts>"`).
    pub fn is_multipart(&self) -> bool {
        self.etag
            .as_deref()
            .is_some_and(|e| e.trim_matches('"').contains('-'))
    }
}

/// `Content-Length` as a number, when present and valid.
pub(crate) fn content_length(response: &http::Response<Bytes>) -> Option<u64> {
    header(response, "content-length").and_then(|v| v.trim().parse().ok())
}

/// Conditional request headers shared by HEAD and GET.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Conditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub if_unmodified_since: Option<String>,
}

impl Conditions {
    pub(crate) fn apply(&self, headers: &mut http::HeaderMap) -> Result<(), Error> {
        let all = [
            ("if-match", &self.if_match),
            ("if-none-match", &self.if_none_match),
            ("if-modified-since", &self.if_modified_since),
            ("if-unmodified-since", &self.if_unmodified_since),
        ];
        for (name, value) in all {
            if let Some(v) = value {
                set_header(headers, name, v)?;
            }
        }
        Ok(())
    }
}

/// The error for a HEAD/GET response that is not a success. Body-less answers (HEAD never has a body) are
/// mapped from their status: 404 `NoSuchKey`, 304 `NotModified`, 412 `PreconditionFailed`, 403
/// `AccessDenied`; a body-less 5xx without a COS request id is an unexpected response (retryable).
pub(crate) fn object_error(response: &http::Response<Bytes>) -> Error {
    let status = response.status().as_u16();
    if response.body().is_empty() {
        let code = match status {
            304 => Some("NotModified"),
            403 => Some("AccessDenied"),
            404 => Some("NoSuchKey"),
            412 => Some("PreconditionFailed"),
            _ => None,
        };
        if let Some(code) = code {
            return Error::Service(Box::new(ServiceError {
                status,
                code: code.to_string(),
                message: "no error body (HEAD or empty answer)".into(),
                request_id: super::request_id(response),
                trace_id: header(response, "x-cos-trace-id"),
                context: super::response_context(response),
                ..Default::default()
            }));
        }
    }
    super::error_from_response(response)
}

/// HEAD Object.
///
/// ```
/// let head = cos_core::ops::HeadObject::new("docs/a.txt").if_none_match("\"5d41402abc4b2a76b9719d911017c592\"");
/// ```
#[derive(Clone, Debug)]
pub struct HeadObject {
    key: String,
    conditions: Conditions,
    version_id: Option<String>,
}

impl HeadObject {
    /// A HEAD of `key`.
    pub fn new(key: impl Into<String>) -> Self {
        HeadObject {
            key: key.into(),
            conditions: Conditions::default(),
            version_id: None,
        }
    }

    /// `If-Match`: answer 412 `PreconditionFailed` unless the ETag matches.
    pub fn if_match(mut self, etag: impl Into<String>) -> Self {
        self.conditions.if_match = Some(etag.into());
        self
    }

    /// `If-None-Match`: answer 304 `NotModified` when the ETag matches.
    pub fn if_none_match(mut self, etag: impl Into<String>) -> Self {
        self.conditions.if_none_match = Some(etag.into());
        self
    }

    /// `If-Modified-Since` (an HTTP date): answer 304 `NotModified` unless modified since.
    pub fn if_modified_since(mut self, http_date: impl Into<String>) -> Self {
        self.conditions.if_modified_since = Some(http_date.into());
        self
    }

    /// `If-Unmodified-Since` (an HTTP date): answer 412 `PreconditionFailed` when modified since.
    pub fn if_unmodified_since(mut self, http_date: impl Into<String>) -> Self {
        self.conditions.if_unmodified_since = Some(http_date.into());
        self
    }

    /// `?versionId=`: a specific version of a versioned object.
    pub fn version_id(mut self, version_id: impl Into<String>) -> Self {
        self.version_id = Some(version_id.into());
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl Operation for HeadObject {
    type Output = ObjectInfo;
    const NAME: &'static str = "HeadObject";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        let mut query = Vec::new();
        if let Some(v) = self.version_id.as_ref().filter(|v| !v.is_empty()) {
            query.push(("versionId", v.clone()));
        }
        let mut req = super::request(
            config,
            http::Method::HEAD,
            &self.key,
            &query,
            RequestBody::Empty,
        )?;
        self.conditions.apply(req.headers_mut())?;
        Ok(req)
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<ObjectInfo, Error> {
        if !response.status().is_success() {
            return Err(object_error(response));
        }
        if content_length(response).is_none() {
            return Err(unexpected(
                response,
                "HEAD answer without a valid Content-Length",
            ));
        }
        Ok(ObjectInfo::from_headers(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::{config, header as req_header, response, signed};

    #[test]
    fn request_shape() {
        let req = HeadObject::new("dir/a b.txt")
            .if_match("\"abc\"")
            .if_none_match("\"def\"")
            .if_modified_since("Sun, 06 Nov 1994 08:49:37 GMT")
            .to_request(&config())
            .unwrap();
        assert_eq!(req.method(), http::Method::HEAD);
        assert_eq!(
            req.uri().to_string(),
            "https://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/dir/a%20b.txt"
        );
        assert_eq!(req_header(&req, "if-match"), Some("\"abc\""));
        assert_eq!(req_header(&req, "if-none-match"), Some("\"def\""));
        assert_eq!(
            req_header(&req, "if-modified-since"),
            Some("Sun, 06 Nov 1994 08:49:37 GMT")
        );
        assert_eq!(req_header(&req, "content-length"), None);
        let auth = signed(req);
        assert!(auth.header_list.contains(&"if-match".to_string()));
        assert!(auth.param_list.is_empty());
    }

    #[test]
    fn version_query() {
        let req = HeadObject::new("a")
            .version_id("v1")
            .to_request(&config())
            .unwrap();
        assert_eq!(req.uri().query(), Some("versionId=v1"));
    }

    #[test]
    fn parses_headers() {
        let r = response(
            200,
            &[
                ("content-length", "1234"),
                ("content-type", "text/plain"),
                ("etag", "\"5d41402abc4b2a76b9719d911017c592\""),
                ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
                ("x-cos-object-type", "appendable"),
                ("x-cos-storage-class", "STANDARD_IA"),
                ("x-cos-hash-crc64ecma", "11051210869376104954"),
                ("x-cos-meta-zeta", "z"),
                ("x-cos-meta-alpha", "a"),
                ("x-cos-version-id", "null"),
                ("cache-control", "no-cache"),
                ("content-disposition", "attachment"),
                ("content-encoding", "gzip"),
                ("expires", "Mon, 07 Nov 1994 08:49:37 GMT"),
                ("x-cos-request-id", "req-1"),
            ],
            "",
        );
        let info = HeadObject::new("a").parse_response(&r, None).unwrap();
        assert_eq!(info.content_length, 1234);
        assert_eq!(info.content_type.as_deref(), Some("text/plain"));
        assert_eq!(info.object_type, ObjectType::Appendable);
        assert_eq!(info.next_append_position(), Some(1234));
        assert_eq!(info.storage_class, StorageClass::StandardIa);
        assert_eq!(info.crc64, Some(11051210869376104954));
        assert_eq!(
            info.metadata,
            vec![("alpha".into(), "a".into()), ("zeta".into(), "z".into())]
        );
        assert_eq!(info.version_id, None);
        assert_eq!(info.cache_control.as_deref(), Some("no-cache"));
        assert_eq!(info.content_disposition.as_deref(), Some("attachment"));
        assert_eq!(info.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(
            info.expires.as_deref(),
            Some("Mon, 07 Nov 1994 08:49:37 GMT")
        );
        assert_eq!(info.request_id.as_deref(), Some("req-1"));
        assert!(!info.is_multipart());
    }

    #[test]
    fn defaults_when_headers_absent() {
        let r = response(200, &[("content-length", "0"), ("etag", "\"abc-3\"")], "");
        let info = HeadObject::new("a").parse_response(&r, None).unwrap();
        assert_eq!(info.object_type, ObjectType::Normal);
        assert_eq!(info.storage_class, StorageClass::Standard);
        assert_eq!(info.next_append_position(), None);
        assert_eq!(info.crc64, None);
        assert!(info.is_multipart());
        let r = response(
            200,
            &[("content-length", "0"), ("x-cos-object-type", "weird")],
            "",
        );
        let info = HeadObject::new("a").parse_response(&r, None).unwrap();
        assert_eq!(info.object_type, ObjectType::Other("weird".into()));
    }

    #[test]
    fn missing_is_no_such_key() {
        for headers in [&[("x-cos-request-id", "r")][..], &[][..]] {
            let r = response(404, headers, "");
            let e = HeadObject::new("a").parse_response(&r, None).unwrap_err();
            assert_eq!(e.code(), Some("NoSuchKey"));
            assert_eq!(e.status(), Some(404));
            assert!(!e.is_retryable());
        }
        // The request the answer came from is named in the error, as for every other operation.
        let context = crate::error::RequestContext {
            operation: "HeadObject",
            method: "HEAD".into(),
            key: "a".into(),
            attempt: 2,
        };
        let mut r = response(404, &[], "");
        r.extensions_mut().insert(context.clone());
        let e = HeadObject::new("a").parse_response(&r, None).unwrap_err();
        assert_eq!(e.code(), Some("NoSuchKey"));
        assert_eq!(e.context(), Some(&context));
    }

    #[test]
    fn conditional_answers() {
        let e = HeadObject::new("a")
            .parse_response(&response(304, &[], ""), None)
            .unwrap_err();
        assert_eq!(e.code(), Some("NotModified"));
        let e = HeadObject::new("a")
            .parse_response(&response(412, &[], ""), None)
            .unwrap_err();
        assert_eq!(e.code(), Some("PreconditionFailed"));
    }

    #[test]
    fn gateway_errors_are_unexpected_and_retryable() {
        let e = HeadObject::new("a")
            .parse_response(&response(502, &[], crate::ops::test_util::HTML_502), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)), "{e:?}");
        assert!(e.is_retryable());
        let e = HeadObject::new("a")
            .parse_response(&response(200, &[], ""), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)), "{e:?}");
    }

    #[test]
    fn bad_key_rejected() {
        let e = HeadObject::new("/a").to_request(&config()).unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidInput(crate::InvalidInput::Key { .. })
        ));
    }
}
