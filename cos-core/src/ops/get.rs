//! GET Object: `GET /<key>`, the whole object or a byte range.

use bytes::Bytes;

use super::head::{content_length, object_error, Conditions};
use super::{header, set_header, unexpected, validate_traffic_limit, ObjectInfo, Operation};
use crate::body::RequestBody;
use crate::checksum::{Crc64, SentDigest};
use crate::config::{validate_key, Config};
use crate::error::{Error, IntegrityError, InvalidInput};

/// GET Object. The body is returned whole, so use ranges for large objects.
///
/// A complete (status 200) body is checked against `Content-Length` and, when COS reports it, against
/// `x-cos-hash-crc64ecma`.
///
/// ```
/// let get = cos_core::ops::GetObject::new("docs/a.txt").range(0, Some(1023));
/// ```
#[derive(Clone, Debug)]
pub struct GetObject {
    key: String,
    range: Option<(u64, Option<u64>)>,
    conditions: Conditions,
    version_id: Option<String>,
    response_overrides: Vec<(&'static str, String)>,
    traffic_limit: Option<u64>,
    verify_crc64: bool,
    max_len: Option<u64>,
}

impl GetObject {
    /// A GET of the whole of `key`.
    pub fn new(key: impl Into<String>) -> Self {
        GetObject {
            key: key.into(),
            range: None,
            conditions: Conditions::default(),
            version_id: None,
            response_overrides: Vec::new(),
            traffic_limit: None,
            verify_crc64: true,
            max_len: None,
        }
    }

    /// `Range: bytes=start-end` (inclusive), or `bytes=start-` to the end when `end_inclusive` is `None`.
    /// `start > end` is rejected as invalid input.
    pub fn range(mut self, start: u64, end_inclusive: Option<u64>) -> Self {
        self.range = Some((start, end_inclusive));
        self
    }

    /// The largest body accepted: a longer answer is a [`crate::error::TransportErrorKind::TooLarge`]
    /// failure and reading stops there. Default: the range's length for a closed range, otherwise no limit
    /// (the body is held in memory whole, so set one when the object size is not known).
    pub fn max_len(mut self, bytes: u64) -> Self {
        self.max_len = Some(bytes);
        self
    }

    /// `If-Match`.
    pub fn if_match(mut self, etag: impl Into<String>) -> Self {
        self.conditions.if_match = Some(etag.into());
        self
    }

    /// `If-None-Match` (a match answers 304 `NotModified`).
    pub fn if_none_match(mut self, etag: impl Into<String>) -> Self {
        self.conditions.if_none_match = Some(etag.into());
        self
    }

    /// `If-Modified-Since` (an HTTP date).
    pub fn if_modified_since(mut self, http_date: impl Into<String>) -> Self {
        self.conditions.if_modified_since = Some(http_date.into());
        self
    }

    /// `If-Unmodified-Since` (an HTTP date).
    pub fn if_unmodified_since(mut self, http_date: impl Into<String>) -> Self {
        self.conditions.if_unmodified_since = Some(http_date.into());
        self
    }

    /// `?versionId=`.
    pub fn version_id(mut self, version_id: impl Into<String>) -> Self {
        self.version_id = Some(version_id.into());
        self
    }

    /// `?response-content-type=`: the `Content-Type` COS should answer with.
    pub fn response_content_type(self, v: impl Into<String>) -> Self {
        self.response_override("response-content-type", v)
    }

    /// `?response-content-language=`.
    pub fn response_content_language(self, v: impl Into<String>) -> Self {
        self.response_override("response-content-language", v)
    }

    /// `?response-expires=`.
    pub fn response_expires(self, v: impl Into<String>) -> Self {
        self.response_override("response-expires", v)
    }

    /// `?response-cache-control=`.
    pub fn response_cache_control(self, v: impl Into<String>) -> Self {
        self.response_override("response-cache-control", v)
    }

    /// `?response-content-disposition=`.
    pub fn response_content_disposition(self, v: impl Into<String>) -> Self {
        self.response_override("response-content-disposition", v)
    }

    /// `?response-content-encoding=`.
    pub fn response_content_encoding(self, v: impl Into<String>) -> Self {
        self.response_override("response-content-encoding", v)
    }

    fn response_override(mut self, name: &'static str, v: impl Into<String>) -> Self {
        self.response_overrides.retain(|(n, _)| *n != name);
        self.response_overrides.push((name, v.into()));
        self
    }

    /// `x-cos-traffic-limit` in bit/s (819200..=838860800).
    pub fn traffic_limit(mut self, bits_per_second: u64) -> Self {
        self.traffic_limit = Some(bits_per_second);
        self
    }

    /// Skips the CRC-64 check of a complete body (e.g. when `response-content-encoding` transforms it).
    pub fn skip_crc64_check(mut self) -> Self {
        self.verify_crc64 = false;
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether `response-content-encoding` asks COS to transform the body (so its CRC-64 does not apply).
    pub(crate) fn transforms_body(&self) -> bool {
        self.response_overrides
            .iter()
            .any(|(n, _)| *n == "response-content-encoding")
    }

    /// The range set with [`range`](Self::range), as `(start, end_inclusive)`.
    pub fn range_value(&self) -> Option<(u64, Option<u64>)> {
        self.range
    }

    /// Whether a complete body is checked against the object's CRC-64.
    pub(crate) fn verifies_crc64(&self) -> bool {
        self.verify_crc64
    }
}

/// What GET Object returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetObjectOutput {
    /// The object's headers (for a ranged GET, `content_length` is the range's length).
    pub info: ObjectInfo,
    /// The body (the requested range for a 206).
    pub body: Bytes,
}

impl Operation for GetObject {
    type Output = GetObjectOutput;
    const NAME: &'static str = "GetObject";

    fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        validate_key(&self.key)?;
        let mut query: Vec<(&str, String)> = Vec::new();
        for (name, value) in &self.response_overrides {
            query.push((name, value.clone()));
        }
        if let Some(v) = self.version_id.as_ref().filter(|v| !v.is_empty()) {
            query.push(("versionId", v.clone()));
        }
        query.sort();
        let mut req = super::request(
            config,
            http::Method::GET,
            &self.key,
            &query,
            RequestBody::Empty,
        )?;
        let headers = req.headers_mut();
        if let Some((start, end)) = self.range {
            let value = match end {
                Some(end) if end < start => {
                    return Err(InvalidInput::Parameter {
                        name: "range",
                        reason: format!("start {start} is after end {end}"),
                    }
                    .into())
                }
                Some(end) => format!("bytes={start}-{end}"),
                None => format!("bytes={start}-"),
            };
            set_header(headers, "range", &value)?;
        }
        self.conditions.apply(headers)?;
        if let Some(limit) = self.traffic_limit {
            validate_traffic_limit(limit)?;
            set_header(headers, "x-cos-traffic-limit", &limit.to_string())?;
        }
        let range_len = match self.range {
            Some((start, Some(end))) => end.checked_sub(start).and_then(|d| d.checked_add(1)),
            _ => None,
        };
        super::accept_success_body(&mut req, self.max_len.or(range_len).unwrap_or(u64::MAX));
        Ok(req)
    }

    fn parse_response(
        &self,
        response: &http::Response<Bytes>,
        _sent: Option<&SentDigest>,
    ) -> Result<GetObjectOutput, Error> {
        let status = response.status().as_u16();
        if status != 200 && status != 206 {
            return Err(if response.status().is_success() {
                unexpected(response, "GET Object expects 200 or 206")
            } else {
                object_error(response)
            });
        }
        let body = response.body().clone();
        if let Some(len) = content_length(response) {
            if len != body.len() as u64 {
                return Err(unexpected(
                    response,
                    &format!("body has {} bytes, Content-Length says {len}", body.len()),
                ));
            }
        }
        if status == 206 && header(response, "content-range").is_none() {
            return Err(unexpected(response, "206 without Content-Range"));
        }
        let info = ObjectInfo::from_headers(response);
        let transformed = info.content_encoding.is_some()
            || self
                .response_overrides
                .iter()
                .any(|(n, _)| *n == "response-content-encoding");
        if status == 200 && self.verify_crc64 && !transformed {
            if let Some(expected) = info.crc64 {
                let actual = Crc64::checksum(&body);
                if actual != expected {
                    return Err(Error::Integrity(IntegrityError::Crc64 {
                        part: None,
                        expected,
                        actual,
                    }));
                }
            }
        }
        Ok(GetObjectOutput { info, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::{config, header as req_header, response, signed, HTML_502};

    #[test]
    fn range_request() {
        let req = GetObject::new("a.bin")
            .range(5, Some(9))
            .to_request(&config())
            .unwrap();
        assert_eq!(req.method(), http::Method::GET);
        assert_eq!(req.uri().path(), "/a.bin");
        assert_eq!(req.uri().query(), None);
        assert_eq!(req_header(&req, "range"), Some("bytes=5-9"));
        assert!(signed(req).header_list.contains(&"range".to_string()));
        let req = GetObject::new("a.bin")
            .range(7, None)
            .to_request(&config())
            .unwrap();
        assert_eq!(req_header(&req, "range"), Some("bytes=7-"));
        let req = GetObject::new("a.bin")
            .range(7, Some(7))
            .to_request(&config())
            .unwrap();
        assert_eq!(req_header(&req, "range"), Some("bytes=7-7"));
    }

    #[test]
    fn range_start_after_end_is_invalid() {
        let e = GetObject::new("a")
            .range(10, Some(9))
            .to_request(&config())
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidInput(InvalidInput::Parameter { name: "range", .. })
            ),
            "{e:?}"
        );
    }

    #[test]
    fn optional_parameters() {
        let req = GetObject::new("a")
            .response_content_type("text/plain")
            .response_content_disposition("attachment; filename=\"x y\"")
            .version_id("v2")
            .if_match("\"e\"")
            .traffic_limit(819200)
            .to_request(&config())
            .unwrap();
        assert_eq!(
            req.uri().query(),
            Some("response-content-disposition=attachment%3B%20filename%3D%22x%20y%22&response-content-type=text%2Fplain&versionId=v2")
        );
        assert_eq!(req_header(&req, "if-match"), Some("\"e\""));
        assert_eq!(req_header(&req, "x-cos-traffic-limit"), Some("819200"));
        let auth = signed(req);
        assert_eq!(
            auth.param_list,
            vec![
                "response-content-disposition",
                "response-content-type",
                "versionid"
            ]
        );
        let e = GetObject::new("a")
            .traffic_limit(1)
            .to_request(&config())
            .unwrap_err();
        assert_eq!(e, Error::InvalidInput(InvalidInput::TrafficLimit(1)));
    }

    #[test]
    fn parses_full_and_partial_bodies() {
        let crc = Crc64::checksum(b"123456789").to_string();
        let r = response(
            200,
            &[("content-length", "9"), ("x-cos-hash-crc64ecma", &crc)],
            "123456789",
        );
        let out = GetObject::new("a").parse_response(&r, None).unwrap();
        assert_eq!(out.body, Bytes::from_static(b"123456789"));
        assert_eq!(out.info.content_length, 9);

        let r = response(
            206,
            &[
                ("content-length", "3"),
                ("content-range", "bytes 2-4/9"),
                ("x-cos-hash-crc64ecma", &crc),
            ],
            "345",
        );
        let out = GetObject::new("a")
            .range(2, Some(4))
            .parse_response(&r, None)
            .unwrap();
        assert_eq!(out.body, Bytes::from_static(b"345"));
    }

    #[test]
    fn corrupt_or_truncated_bodies() {
        let crc = Crc64::checksum(b"123456789").to_string();
        let r = response(200, &[("x-cos-hash-crc64ecma", &crc)], "123456780");
        let e = GetObject::new("a").parse_response(&r, None).unwrap_err();
        assert!(
            matches!(e, Error::Integrity(IntegrityError::Crc64 { .. })),
            "{e:?}"
        );
        assert!(GetObject::new("a")
            .skip_crc64_check()
            .parse_response(&r, None)
            .is_ok());

        let r = response(200, &[("content-length", "9")], "1234");
        let e = GetObject::new("a").parse_response(&r, None).unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
        assert!(e.is_retryable());
    }

    #[test]
    fn errors() {
        let xml = "<?xml version='1.0' encoding='utf-8' ?><Error><Code>NoSuchKey</Code><Message>gone</Message>\
                   <RequestId>rid</RequestId></Error>";
        let e = GetObject::new("a")
            .parse_response(&response(404, &[], xml), None)
            .unwrap_err();
        assert_eq!(e.code(), Some("NoSuchKey"));
        assert_eq!(e.request_id(), Some("rid"));
        let e = GetObject::new("a")
            .parse_response(&response(502, &[], HTML_502), None)
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
        assert!(e.is_retryable());
        let e = GetObject::new("a")
            .parse_response(&response(304, &[], ""), None)
            .unwrap_err();
        assert_eq!(e.code(), Some("NotModified"));
    }
}
