//! GET Object with a streamed body: the core decides from the response head whether a body is the object's
//! bytes, and checks those bytes (length, Content-Range, CRC-64) as the driver streams them; the driver
//! never holds the whole object.

use bytes::Bytes;

use super::get::GetObject;
use super::head::{content_length, object_error};
use super::{header, unexpected, ObjectInfo};
use crate::body::RequestBody;
use crate::checksum::Crc64;
use crate::config::Config;
use crate::error::{Error, IntegrityError};

/// The most bytes of an error body a driver reads before handing it to [`GetObjectStream::error`].
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// GET Object whose body is streamed (a `Read` / `AsyncRead` in the clients).
///
/// A driver sends [`to_request`](Self::to_request) (signed), then calls [`head`](Self::head) with the
/// response's status and headers:
/// - [`GetHead::Body`]: stream the body through the returned [`BodyCheck`], calling
///   [`BodyCheck::finish`] at its end (a short, long or corrupt body is an error there);
/// - [`GetHead::Error`]: read at most `max_body` bytes of the body and return
///   [`error`](Self::error) of the response.
///
/// ```
/// use cos_core::ops::{GetObject, GetObjectStream};
/// let get = GetObjectStream::new(GetObject::new("big.bin").range(0, Some(1 << 20)));
/// ```
#[derive(Clone, Debug)]
pub struct GetObjectStream {
    get: GetObject,
}

/// What the response head means for a streamed GET. Exhaustive: a driver handles each answer.
#[derive(Debug)]
pub enum GetHead {
    /// The body is the object's bytes (or the requested range's).
    Body {
        /// The object's headers (`content_length` is the body's length).
        info: Box<ObjectInfo>,
        /// For a 206: `(first, last, total)` from `Content-Range`.
        range: Option<(u64, u64, u64)>,
        /// The checks to run over the body as it streams.
        check: BodyCheck,
    },
    /// The answer is an error: read at most `max_body` bytes and call [`GetObjectStream::error`].
    Error {
        /// How many body bytes to read at most.
        max_body: usize,
    },
}

impl GetObjectStream {
    /// Streams the object (or range) `get` asks for.
    pub fn new(get: GetObject) -> Self {
        GetObjectStream { get }
    }

    /// The request (the same as [`GetObject`]'s).
    pub fn to_request(&self, config: &Config) -> Result<http::Request<RequestBody>, Error> {
        super::Operation::to_request(&self.get, config)
    }

    /// The request signed for sending at `now` with `config` (the credentials to sign with, the clock
    /// offset), without a body: what a driver sends to stream the answer.
    pub fn signed_request(
        &self,
        config: &Config,
        now: std::time::SystemTime,
    ) -> Result<http::Request<()>, Error> {
        let mut request = self.to_request(config)?;
        crate::auth::sign(config, &mut request, now)?;
        let (parts, _) = request.into_parts();
        Ok(http::Request::from_parts(parts, ()))
    }

    /// Interprets the status and headers of the response.
    pub fn head(&self, status: http::StatusCode, headers: &http::HeaderMap) -> GetHead {
        let code = status.as_u16();
        if code != 200 && code != 206 {
            return GetHead::Error {
                max_body: MAX_ERROR_BODY,
            };
        }
        let response = head_response(status, headers);
        let Some(len) = content_length(&response) else {
            // Without a length a cut connection could not be told from the end of the object.
            return GetHead::Error { max_body: 0 };
        };
        let range = if code == 206 {
            match header(&response, "content-range").and_then(|v| parse_content_range(&v)) {
                Some((first, last, total)) if last - first + 1 == len && last < total => {
                    Some((first, last, total))
                }
                _ => return GetHead::Error { max_body: 0 },
            }
        } else {
            None
        };
        let mut info = ObjectInfo::from_headers(&response);
        info.content_length = len;
        let transformed = info.content_encoding.is_some() || self.get.transforms_body();
        let expected_crc64 = if code == 200 && self.get.verifies_crc64() && !transformed {
            info.crc64
        } else {
            None
        };
        GetHead::Body {
            info: Box::new(info),
            range,
            check: BodyCheck {
                expected_len: len,
                got: 0,
                crc: Crc64::new(),
                expected_crc64,
            },
        }
    }

    /// The error a response stands for, when [`head`](Self::head) said [`GetHead::Error`] (`response` holds
    /// the head and the body bytes read, at most `max_body`).
    pub fn error(&self, response: &http::Response<Bytes>) -> Error {
        let code = response.status().as_u16();
        if code == 200 || code == 206 {
            return unexpected(
                response,
                "GET Object answered without a usable Content-Length or Content-Range",
            );
        }
        if response.status().is_success() {
            unexpected(response, "GET Object expects 200 or 206")
        } else {
            object_error(response)
        }
    }
}

fn head_response(status: http::StatusCode, headers: &http::HeaderMap) -> http::Response<Bytes> {
    let mut r = http::Response::new(Bytes::new());
    *r.status_mut() = status;
    *r.headers_mut() = headers.clone();
    r
}

/// `bytes first-last/total`.
fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    let (first, last, total): (u64, u64, u64) = (
        a.trim().parse().ok()?,
        b.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (first <= last).then_some((first, last, total))
}

/// Checks a streamed body: no more bytes than `Content-Length`, exactly that many at the end, and the
/// object's CRC-64 for a complete (200) body.
#[derive(Debug)]
pub struct BodyCheck {
    expected_len: u64,
    got: u64,
    crc: Crc64,
    expected_crc64: Option<u64>,
}

impl BodyCheck {
    /// Takes the next bytes of the body; more than `Content-Length` is an error.
    pub fn update(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.got += bytes.len() as u64;
        if self.got > self.expected_len {
            return Err(self.length_error());
        }
        if self.expected_crc64.is_some() {
            self.crc.update(bytes);
        }
        Ok(())
    }

    /// Bytes taken so far.
    pub fn received(&self) -> u64 {
        self.got
    }

    /// The body's length from `Content-Length`.
    pub fn expected_len(&self) -> u64 {
        self.expected_len
    }

    /// Ends the body: a short body (a connection cut) or a CRC-64 mismatch is an error.
    pub fn finish(&self) -> Result<(), Error> {
        if self.got != self.expected_len {
            return Err(self.length_error());
        }
        if let Some(expected) = self.expected_crc64 {
            let actual = self.crc.finish();
            if actual != expected {
                return Err(Error::Integrity(IntegrityError::Crc64 {
                    part: None,
                    expected,
                    actual,
                }));
            }
        }
        Ok(())
    }

    fn length_error(&self) -> Error {
        Error::UnexpectedResponse(Box::new(crate::error::UnexpectedResponse {
            status: 200,
            reason: format!(
                "body has {}{} bytes, Content-Length says {}",
                if self.got > self.expected_len {
                    "over "
                } else {
                    ""
                },
                self.got,
                self.expected_len
            ),
            excerpt: String::new(),
            request_id: None,
            context: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::response;

    fn head_of(get: &GetObjectStream, status: u16, headers: &[(&str, &str)]) -> GetHead {
        let r = response(status, headers, "");
        get.head(r.status(), r.headers())
    }

    #[test]
    fn the_signed_request_is_the_get_with_its_range_signed_at_now() {
        let get = GetObjectStream::new(GetObject::new("a b").range(0, Some(9)));
        let config = crate::ops::test_util::config();
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let r = get.signed_request(&config, now).unwrap();
        assert_eq!(r.method(), http::Method::GET);
        assert_eq!(r.uri().path(), "/a%20b");
        assert_eq!(r.headers()["range"], "bytes=0-9");
        let auth = r.headers()["authorization"].to_str().unwrap();
        assert!(auth.contains("q-key-time=1699999"), "{auth}");
    }

    #[test]
    fn complete_body_is_checked_while_streaming() {
        let crc = Crc64::checksum(b"123456789").to_string();
        let get = GetObjectStream::new(GetObject::new("a"));
        let h = [
            ("content-length", "9"),
            ("x-cos-hash-crc64ecma", crc.as_str()),
        ];
        let GetHead::Body {
            info,
            range,
            mut check,
        } = head_of(&get, 200, &h)
        else {
            panic!("a body")
        };
        assert_eq!(info.content_length, 9);
        assert_eq!(range, None);
        check.update(b"1234").unwrap();
        assert!(check.finish().is_err(), "short body");
        check.update(b"56789").unwrap();
        check.finish().unwrap();
        assert!(check.update(b"x").is_err(), "long body");

        let GetHead::Body { mut check, .. } = head_of(&get, 200, &h) else {
            panic!()
        };
        check.update(b"123456780").unwrap();
        assert!(matches!(
            check.finish(),
            Err(Error::Integrity(IntegrityError::Crc64 { .. }))
        ));
    }

    #[test]
    fn a_body_is_not_checked_when_skipped_or_transformed() {
        let crc = Crc64::checksum(b"123456789").to_string();
        let h = [
            ("content-length", "9"),
            ("x-cos-hash-crc64ecma", crc.as_str()),
        ];
        let wrong_body_passes = |get: GetObject| {
            assert_eq!(get.key(), "a");
            let GetHead::Body { mut check, .. } = head_of(&GetObjectStream::new(get), 200, &h)
            else {
                panic!("a body")
            };
            check.update(b"123456780").unwrap();
            check.finish().is_ok()
        };
        assert!(!wrong_body_passes(GetObject::new("a")));
        assert!(!wrong_body_passes(
            GetObject::new("a").response_content_type("text/plain")
        ));
        assert!(wrong_body_passes(GetObject::new("a").skip_crc64_check()));
        assert!(wrong_body_passes(
            GetObject::new("a").response_content_encoding("gzip")
        ));
        let gzip = [
            ("content-length", "9"),
            ("x-cos-hash-crc64ecma", crc.as_str()),
            ("content-encoding", "gzip"),
        ];
        let GetHead::Body { mut check, .. } =
            head_of(&GetObjectStream::new(GetObject::new("a")), 200, &gzip)
        else {
            panic!("a body")
        };
        assert_eq!((check.received(), check.expected_len()), (0, 9));
        check.update(b"123456780").unwrap();
        assert_eq!(check.received(), 9);
        check.finish().unwrap();
    }

    #[test]
    fn a_success_without_a_usable_length_is_named_as_such() {
        let get = GetObjectStream::new(GetObject::new("a"));
        for status in [200, 206] {
            let Error::UnexpectedResponse(u) = get.error(&response(status, &[], "")) else {
                panic!("unexpected response expected")
            };
            assert!(
                u.reason.contains("without a usable Content-Length"),
                "{}",
                u.reason
            );
        }
        let Error::UnexpectedResponse(u) = get.error(&response(204, &[], "")) else {
            panic!("unexpected response expected")
        };
        assert_eq!(u.reason, "GET Object expects 200 or 206");
    }

    #[test]
    fn ranges_need_a_consistent_content_range() {
        let get = GetObjectStream::new(GetObject::new("a").range(2, Some(4)));
        let ok = head_of(
            &get,
            206,
            &[
                ("content-length", "3"),
                ("content-range", "bytes 2-4/9"),
                ("x-cos-hash-crc64ecma", "1"),
            ],
        );
        let GetHead::Body {
            range, mut check, ..
        } = ok
        else {
            panic!()
        };
        assert_eq!(range, Some((2, 4, 9)));
        check.update(b"345").unwrap();
        check.finish().unwrap(); // the whole object's CRC does not apply to a range
        for cr in ["bytes 2-5/9", "bytes 2-4/4", "bytes */9", "junk"] {
            let h = head_of(&get, 206, &[("content-length", "3"), ("content-range", cr)]);
            assert!(matches!(h, GetHead::Error { .. }), "{cr}");
        }
        let h = head_of(&get, 200, &[]);
        assert!(matches!(h, GetHead::Error { max_body: 0 }));
    }

    #[test]
    fn errors_from_the_head() {
        let get = GetObjectStream::new(GetObject::new("a"));
        for (status, code) in [
            (304, "NotModified"),
            (412, "PreconditionFailed"),
            (404, "NoSuchKey"),
        ] {
            assert!(matches!(head_of(&get, status, &[]), GetHead::Error { .. }));
            let e = get.error(&response(status, &[], ""));
            assert_eq!(e.code(), Some(code));
        }
        let e = get.error(&response(
            416,
            &[],
            "<Error><Code>InvalidRange</Code><Message>m</Message></Error>",
        ));
        assert_eq!(e.code(), Some("InvalidRange"));
        assert!(matches!(
            get.error(&response(200, &[], "")),
            Error::UnexpectedResponse(_)
        ));
    }
}
