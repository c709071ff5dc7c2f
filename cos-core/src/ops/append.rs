//! Append Object: `POST /<key>?append&position=<n>`, adding bytes at the end of an appendable object.

use bytes::Bytes;

use super::{crc64_header, header, object_options, request, unexpected, ObjectOptions, Operation};
use crate::body::RequestBody;
use crate::checksum::{BodyDigest, Crc64, SentDigest};
use crate::config::{validate_key, Config};
use crate::error::{Error, InvalidInput};

/// Largest appendable object (5 GB).
pub const MAX_APPEND_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// Append Object. The first append, at position 0, creates an appendable object; each later one must
/// start at the current length (else 409 `PositionNotEqualToLength`).
///
/// ```
/// let first = cos_core::ops::AppendObject::new("log.txt", 0).with_bytes("line 1\n").content_type("text/plain");
/// ```
#[derive(Clone, Debug)]
pub struct AppendObject {
    key: String,
    position: u64,
    body: RequestBody,
    bytes_digest: Option<SentDigest>,
    previous_crc64: Option<u64>,
    options: ObjectOptions,
    accept_unverified: bool,
}

object_options!(AppendObject);

impl AppendObject {
    /// Accepts an answer that lets nothing be verified (neither an MD5 ETag nor a CRC-64 to compare with
    /// the bytes sent) as a success with [`super::Verified::Nothing`]; by default it is an
    /// [`crate::error::IntegrityError::Unverified`] error.
    pub fn accept_unverified(mut self) -> Self {
        self.accept_unverified = true;
        self
    }

    /// An append to `key` at `position` (the object's current length; 0 to create it), with an empty body.
    pub fn new(key: impl Into<String>, position: u64) -> Self {
        AppendObject {
            key: key.into(),
            position,
            body: RequestBody::Empty,
            bytes_digest: None,
            accept_unverified: false,
            previous_crc64: None,
            options: ObjectOptions::default(),
        }
    }

    /// The body: these bytes (their MD5 is checked against the response ETag).
    pub fn with_bytes(mut self, bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        self.bytes_digest = Some(BodyDigest::of(&bytes));
        self.body = RequestBody::Bytes(bytes);
        self
    }

    /// The body: `len` bytes the driver streams from the start of its source.
    pub fn with_source(mut self, len: u64) -> Self {
        self.bytes_digest = None;
        // An append's CRC-64 answer is the whole object's, checkable only with `previous_crc64`, so the
        // ETag/MD5 check stays on for appends.
        self.body = RequestBody::Source {
            offset: 0,
            len,
            md5: true,
        };
        self
    }

    /// The CRC-64 of the object before this append (0 for the first append): the response's whole-object
    /// `x-cos-hash-crc64ecma` is then checked against it combined with the CRC-64 of the bytes sent.
    pub fn previous_crc64(mut self, crc64: u64) -> Self {
        self.previous_crc64 = Some(crc64);
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The position.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The body.
    pub fn body(&self) -> &RequestBody {
        &self.body
    }
}

/// What Append Object returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendObjectOutput {
    /// `x-cos-next-append-position`: where the next append starts (position + length sent when absent).
    pub next_position: u64,
    /// `x-cos-hash-crc64ecma` of the whole object after this append.
    pub crc64: Option<u64>,
    /// `ETag` (the MD5 of this append's body), quoted as COS sends it.
    pub etag: String,
    /// `x-cos-request-id`.
    pub request_id: Option<String>,
    /// What the answer let the core check against the bytes sent.
    pub verified: super::Verified,
}

impl Operation for AppendObject {
    type Output = AppendObjectOutput;
    const NAME: &'static str = "AppendObject";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        let end = self.position.checked_add(self.body.len());
        if end.map_or(true, |end| end > MAX_APPEND_OBJECT_SIZE) {
            return Err(InvalidInput::Size {
                what: "appendable object (position + append)",
                size: end.unwrap_or(u64::MAX),
                limit: "an appendable object holds at most 5 GB",
            }
            .into());
        }
        let query = [
            ("append", String::new()),
            ("position", self.position.to_string()),
        ];
        let mut req = request(
            config,
            http::Method::POST,
            &self.key,
            &query,
            self.body.clone(),
        )?;
        self.options.apply(req.headers_mut())?;
        Ok(req)
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        sent: Option<&SentDigest>,
    ) -> Result<AppendObjectOutput, Error> {
        super::expect_success(response)?;
        let etag = header(response, "etag").unwrap_or_default();
        let sent = sent.or(self.bytes_digest.as_ref());
        let crc64 = crc64_header(response);
        let expected_crc64 = match (self.previous_crc64, sent) {
            (Some(prev), Some(sent)) => Some(Crc64::combine(prev, sent.crc64, sent.len)),
            _ => None,
        };
        let verified = super::verify_upload(
            None,
            &etag,
            crc64,
            expected_crc64,
            sent,
            self.accept_unverified,
        )?;
        let next_position = match header(response, "x-cos-next-append-position") {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| unexpected(response, "x-cos-next-append-position is not a number"))?,
            None => self.position + sent.map_or(self.body.len(), |d| d.len),
        };
        Ok(AppendObjectOutput {
            verified,
            next_position,
            crc64,
            etag,
            request_id: super::request_id(response),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::IntegrityError;
    use crate::ops::test_util::{config, header as req_header, response, signed, HTML_502};

    const HELLO_MD5: &str = "\"5d41402abc4b2a76b9719d911017c592\"";

    #[test]
    fn request_shape_and_signature() {
        let req = AppendObject::new("logs/a.log", 5)
            .with_bytes("hello")
            .content_type("text/plain")
            .metadata("origin", "test")
            .to_request(&config())
            .unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(
            req.uri().to_string(),
            "https://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/logs/a.log?append&position=5"
        );
        assert_eq!(req_header(&req, "content-length"), Some("5"));
        assert_eq!(req_header(&req, "content-type"), Some("text/plain"));
        assert_eq!(req_header(&req, "x-cos-meta-origin"), Some("test"));
        assert_eq!(
            req.body(),
            &RequestBody::Bytes(Bytes::from_static(b"hello"))
        );
        let auth = signed(req);
        assert_eq!(auth.param_list, vec!["append", "position"]);
        assert!(auth.header_list.contains(&"content-length".to_string()));
    }

    #[test]
    fn first_append_and_source_body() {
        let req = AppendObject::new("a", 0)
            .with_source(1024)
            .to_request(&config())
            .unwrap();
        assert_eq!(req.uri().query(), Some("append&position=0"));
        assert_eq!(
            req.body(),
            &RequestBody::Source {
                offset: 0,
                len: 1024,
                md5: true
            }
        );
        assert_eq!(req_header(&req, "content-length"), Some("1024"));
        let empty = AppendObject::new("a", 0).to_request(&config()).unwrap();
        assert_eq!(req_header(&empty, "content-length"), Some("0"));
    }

    #[test]
    fn parses_response() {
        let crc = Crc64::checksum(b"hello").to_string();
        let r = response(
            200,
            &[
                ("etag", HELLO_MD5),
                ("x-cos-next-append-position", "5"),
                ("x-cos-hash-crc64ecma", &crc),
                ("x-cos-request-id", "rid"),
            ],
            "",
        );
        let out = AppendObject::new("a", 0)
            .with_bytes("hello")
            .previous_crc64(0)
            .parse_response(&r, None)
            .unwrap();
        assert_eq!(
            out,
            AppendObjectOutput {
                next_position: 5,
                crc64: Some(Crc64::checksum(b"hello")),
                etag: HELLO_MD5.into(),
                request_id: Some("rid".into()),
                verified: crate::ops::Verified::Both,
            }
        );
    }

    #[test]
    fn whole_object_crc_is_checked_when_previous_is_known() {
        let whole = Crc64::checksum(b"hello world").to_string();
        let prev = Crc64::checksum(b"hello ");
        let etag = format!("\"{}\"", crate::checksum::md5_hex(b"world"));
        let r = response(
            200,
            &[("etag", &etag), ("x-cos-hash-crc64ecma", &whole)],
            "",
        );
        let op = AppendObject::new("a", 6).with_bytes("world");
        let out = op
            .clone()
            .previous_crc64(prev)
            .parse_response(&r, None)
            .unwrap();
        assert_eq!(out.next_position, 11, "falls back to position + length");
        let e = op
            .previous_crc64(prev ^ 1)
            .parse_response(&r, None)
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Integrity(IntegrityError::Crc64 { part: None, .. })
            ),
            "{e:?}"
        );
    }

    #[test]
    fn etag_mismatch_is_integrity_error() {
        let r = response(200, &[("etag", "\"00000000000000000000000000000000\"")], "");
        let e = AppendObject::new("a", 0)
            .with_bytes("hello")
            .parse_response(&r, None)
            .unwrap_err();
        assert!(
            matches!(e, Error::Integrity(IntegrityError::Etag { part: None, .. })),
            "{e:?}"
        );
        // A streamed body is checked against the driver's digest.
        let sent = BodyDigest::of(b"other");
        let r = response(200, &[("etag", HELLO_MD5)], "");
        let e = AppendObject::new("a", 0)
            .with_source(5)
            .parse_response(&r, Some(&sent))
            .unwrap_err();
        assert!(matches!(e, Error::Integrity(_)));
    }

    #[test]
    fn conflicts_and_gateway_errors() {
        let xml = "<Error><Code>PositionNotEqualToLength</Code><Message>pos</Message></Error>";
        let e = AppendObject::new("a", 3)
            .parse_response(&response(409, &[], xml), None)
            .unwrap_err();
        assert_eq!(e.code(), Some("PositionNotEqualToLength"));
        assert_eq!(e.status(), Some(409));
        assert!(!e.is_retryable());
        let e = AppendObject::new("a", 3)
            .parse_response(&response(502, &[], HTML_502), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
    }

    #[test]
    fn size_limit() {
        let e = AppendObject::new("a", MAX_APPEND_OBJECT_SIZE)
            .with_source(1)
            .to_request(&config())
            .unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput(InvalidInput::Size { .. })),
            "{e:?}"
        );
        let e = AppendObject::new("a", u64::MAX)
            .with_source(2)
            .to_request(&config())
            .unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput(InvalidInput::Size { .. })),
            "{e:?}"
        );
        assert!(AppendObject::new("a", MAX_APPEND_OBJECT_SIZE - 1)
            .with_source(1)
            .to_request(&config())
            .is_ok());
        // 5 GiB exactly, as COS documents.
        let five_gib = 5 * 1024 * 1024 * 1024;
        assert!(AppendObject::new("a", five_gib - 2)
            .with_source(2)
            .to_request(&config())
            .is_ok());
        assert!(AppendObject::new("a", five_gib - 2)
            .with_source(3)
            .to_request(&config())
            .is_err());
    }
}
