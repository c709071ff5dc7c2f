//! One exchange as a driver performs it, less the I/O: what happens to a [`Transmit`] before it is sent
//! and to its outcome after ([`Exchange`]: the recorder's copy, the request named in errors, the
//! [`Input`] fed back), how much of the answer's body is kept ([`ResponseBody`]), and the transport
//! errors every driver words alike (a body source that fails, an `io::ErrorKind`).

use bytes::{Bytes, BytesMut};

use crate::body::{BodyLimit, BodyTruncated, RequestBody, ResponseLimits};
use crate::checksum::SentDigest;
use crate::client::ExchangeHooks;
use crate::error::{RequestContext, TransportError, TransportErrorKind};
use crate::fixture::body_record;
use crate::task::{Input, RequestId, Transmit};

/// What a driver sent and got back: the response (its body read within the limits) and, for a body
/// streamed from a source, the digest of the bytes sent.
pub type Outcome = Result<(http::Response<Bytes>, Option<SentDigest>), TransportError>;

/// One request on its way: made with [`Exchange::start`], ended with [`Exchange::finish`].
#[derive(Debug)]
pub struct Exchange {
    id: RequestId,
    context: RequestContext,
    authority: String,
    /// The request head and body description, kept for the recorder.
    copy: Option<http::Request<RequestBody>>,
}

impl Exchange {
    /// Takes the request to send out of `t`; a copy of it is kept when `hooks` record exchanges.
    pub fn start(t: Transmit, hooks: &ExchangeHooks) -> (Exchange, http::Request<RequestBody>) {
        let exchange = Exchange {
            id: t.id,
            context: RequestContext::of(t.operation, t.attempt, &t.request),
            authority: authority_of(&t.request),
            copy: hooks.recorder.as_ref().map(|_| copy_request(&t.request)),
        };
        (exchange, t.request)
    }

    /// The answer for the task: the response, named (for errors read from it) and recorded, or the
    /// failure, named and with a connection failure worded as on every transport.
    pub fn finish(self, outcome: Outcome, hooks: &ExchangeHooks) -> Input {
        match outcome {
            Ok((mut response, sent)) => {
                if let (Some(recorder), Some(request)) = (&hooks.recorder, self.copy) {
                    let body = body_record(request.body(), sent.as_ref());
                    recorder.record(&request, body, &response);
                }
                response.extensions_mut().insert(self.context);
                Input::Response {
                    id: self.id,
                    response,
                    sent,
                }
            }
            Err(error) => Input::Failed {
                id: self.id,
                error: error.for_request(self.context, &self.authority),
            },
        }
    }
}

/// The `x-cos-request-id` of a response, for logs.
pub fn request_id<B>(response: &http::Response<B>) -> Option<&str> {
    response
        .headers()
        .get("x-cos-request-id")
        .and_then(|v| v.to_str().ok())
}

/// `host[:port]` of the request, for messages.
pub fn authority_of<B>(request: &http::Request<B>) -> String {
    request
        .uri()
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// A copy of a request head and body description, for the recorder.
fn copy_request(r: &http::Request<RequestBody>) -> http::Request<RequestBody> {
    let mut c = http::Request::new(r.body().clone());
    *c.method_mut() = r.method().clone();
    *c.uri_mut() = r.uri().clone();
    *c.version_mut() = r.version();
    *c.headers_mut() = r.headers().clone();
    c
}

/// The body of an answer as a driver reads it, within the limit the request carries for its status: a
/// 2xx body over its limit fails the exchange ([`BodyLimit::too_large`]), an error document over its
/// limit is cut there and marked with [`BodyTruncated`].
#[derive(Debug)]
pub struct ResponseBody {
    limit: BodyLimit,
    buf: BytesMut,
    truncated: bool,
}

impl ResponseBody {
    /// Before reading: the limit for `status`; a body whose `declared` length (`Content-Length`) is over
    /// a limit that does not cut fails at once.
    pub fn new(
        limits: &ResponseLimits,
        status: http::StatusCode,
        declared: Option<u64>,
    ) -> Result<ResponseBody, TransportError> {
        let limit = limits.for_status(status);
        if !limit.cut && declared.is_some_and(|n| n > limit.max) {
            return Err(limit.too_large());
        }
        Ok(ResponseBody {
            limit,
            buf: BytesMut::new(),
            truncated: false,
        })
    }

    /// Takes the next bytes read. `Ok(false)`: the body was cut at its limit, read no more of it (the
    /// connection is dropped with the rest).
    pub fn push(&mut self, data: &[u8]) -> Result<bool, TransportError> {
        if self.truncated {
            return Ok(false);
        }
        let room = usize::try_from(self.limit.max - self.buf.len() as u64).unwrap_or(usize::MAX);
        if data.len() > room {
            if !self.limit.cut {
                return Err(self.limit.too_large());
            }
            self.buf.extend_from_slice(&data[..room]);
            self.truncated = true;
            return Ok(false);
        }
        self.buf.extend_from_slice(data);
        Ok(true)
    }

    /// Bytes kept so far.
    pub fn len(&self) -> u64 {
        self.buf.len() as u64
    }

    /// True when no byte was kept.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The response with the bytes kept (and [`BodyTruncated`] when it was cut).
    pub fn finish(self, mut parts: http::response::Parts) -> http::Response<Bytes> {
        if self.truncated {
            parts
                .extensions
                .insert(BodyTruncated { at: self.limit.max });
        }
        http::Response::from_parts(parts, self.buf.freeze())
    }
}

/// The transport error kind of an I/O failure.
pub fn io_kind(kind: std::io::ErrorKind) -> TransportErrorKind {
    use std::io::ErrorKind as K;
    match kind {
        K::ConnectionRefused | K::NotConnected | K::AddrNotAvailable => TransportErrorKind::Connect,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            TransportErrorKind::Reset
        }
        K::TimedOut | K::WouldBlock => TransportErrorKind::Timeout,
        _ => TransportErrorKind::Other,
    }
}

/// The body source could not be opened at `offset` for `len` bytes.
pub fn source_open_error(offset: u64, len: u64, e: std::io::Error) -> TransportError {
    TransportError::new(
        TransportErrorKind::Body,
        format!("cannot open the body source at {offset}+{len}: {e}"),
    )
    .with_cause(e)
}

/// The message of a body source that ended after `done` of its `len` bytes.
pub fn source_ended(done: u64, len: u64) -> String {
    format!("the body source ended after {done} of {len} bytes")
}

/// The message of a failed read of a body source.
pub fn source_read_failed(e: &dyn std::fmt::Display) -> String {
    format!("reading the body source failed: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{BodyRecord, ExchangeRecorder};
    use std::sync::{Arc, Mutex};

    fn status(code: u16) -> http::response::Parts {
        http::Response::builder()
            .status(code)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn a_success_body_over_its_limit_fails_and_an_error_document_is_cut() {
        let limits = ResponseLimits {
            success: 4,
            error: 3,
        };
        let ok = http::StatusCode::OK;
        let e = ResponseBody::new(&limits, ok, Some(5)).unwrap_err();
        assert_eq!(e.kind, TransportErrorKind::TooLarge);
        let mut b = ResponseBody::new(&limits, ok, None).unwrap();
        assert!(b.push(b"ab").unwrap());
        assert!(b.push(b"cd").unwrap());
        assert_eq!(b.push(b"e").unwrap_err().kind, TransportErrorKind::TooLarge);
        let mut b = ResponseBody::new(&limits, ok, Some(4)).unwrap();
        b.push(b"abcd").unwrap();
        let r = b.finish(status(200));
        assert_eq!(
            (&r.body()[..], r.extensions().get::<BodyTruncated>()),
            (&b"abcd"[..], None)
        );

        // An error document is read up to its limit whatever it declares, then cut.
        let mut b = ResponseBody::new(&limits, http::StatusCode::NOT_FOUND, Some(100)).unwrap();
        assert!(b.push(b"<E").unwrap());
        assert!(!b.push(b"rror>").unwrap());
        assert!(!b.push(b"more").unwrap());
        assert_eq!(b.len(), 3);
        let r = b.finish(status(404));
        assert_eq!(&r.body()[..], b"<Er");
        assert_eq!(
            r.extensions().get::<BodyTruncated>(),
            Some(&BodyTruncated { at: 3 })
        );
    }

    #[derive(Default)]
    struct Recorded(Mutex<Vec<(String, BodyRecord, u16)>>);

    impl ExchangeRecorder for Recorded {
        fn record(
            &self,
            request: &http::Request<RequestBody>,
            body: BodyRecord,
            response: &http::Response<Bytes>,
        ) {
            let head = format!("{} {}", request.method(), request.uri());
            self.0
                .lock()
                .unwrap()
                .push((head, body, response.status().as_u16()));
        }
    }

    fn transmit() -> Transmit {
        Transmit {
            id: RequestId(7),
            operation: "PutObject",
            attempt: 2,
            request: http::Request::put("http://b.example:8080/k")
                .body(RequestBody::Bytes(Bytes::from_static(b"hi")))
                .unwrap(),
        }
    }

    #[test]
    fn an_answer_is_named_and_recorded_and_a_failure_names_the_request() {
        let recorded = Arc::new(Recorded::default());
        let hooks = ExchangeHooks {
            recorder: Some(recorded.clone()),
            responder: None,
        };
        let (exchange, request) = Exchange::start(transmit(), &hooks);
        assert_eq!(request.uri(), "http://b.example:8080/k");
        let response = http::Response::builder()
            .status(200)
            .header("x-cos-request-id", "rid-1")
            .body(Bytes::new())
            .unwrap();
        assert_eq!(request_id(&response), Some("rid-1"));
        match exchange.finish(Ok((response, None)), &hooks) {
            Input::Response { id, response, .. } => {
                assert_eq!(id, RequestId(7));
                let context = response.extensions().get::<RequestContext>().unwrap();
                assert_eq!((context.operation, context.attempt), ("PutObject", 2));
            }
            other => panic!("{other:?}"),
        }
        let recorded = recorded.0.lock().unwrap();
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].0, "PUT http://b.example:8080/k");
        assert_eq!(recorded[0].2, 200);

        let (exchange, _) = Exchange::start(transmit(), &ExchangeHooks::default());
        let refused = TransportError::new(TransportErrorKind::Connect, "refused");
        match exchange.finish(Err(refused), &ExchangeHooks::default()) {
            Input::Failed { id, error } => {
                assert_eq!(id, RequestId(7));
                assert_eq!(error.message, "cannot connect to b.example:8080: refused");
                assert_eq!(error.context.unwrap().operation, "PutObject");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn io_failures_map_to_transport_kinds() {
        use std::io::ErrorKind as K;
        assert_eq!(io_kind(K::ConnectionRefused), TransportErrorKind::Connect);
        assert_eq!(io_kind(K::BrokenPipe), TransportErrorKind::Reset);
        assert_eq!(io_kind(K::TimedOut), TransportErrorKind::Timeout);
        assert_eq!(io_kind(K::InvalidData), TransportErrorKind::Other);
        let e = source_open_error(5, 10, std::io::Error::from(K::NotFound));
        assert_eq!(e.kind, TransportErrorKind::Body);
        assert!(e
            .message
            .starts_with("cannot open the body source at 5+10: "));
        assert_eq!(
            source_ended(3, 5),
            "the body source ended after 3 of 5 bytes"
        );
        assert_eq!(
            source_read_failed(&std::io::Error::other("disk gone")),
            "reading the body source failed: disk gone"
        );
    }

    #[test]
    fn a_response_body_is_empty_until_a_byte_is_kept() {
        let limits = ResponseLimits::default();
        let mut b = ResponseBody::new(&limits, http::StatusCode::OK, None).unwrap();
        assert!(b.is_empty());
        b.push(b"").unwrap();
        assert!(b.is_empty());
        b.push(b"x").unwrap();
        assert!(!b.is_empty());
        assert_eq!(b.len(), 1);
    }
}
