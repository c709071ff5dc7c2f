//! The wire body of one exchange: what a request carries ([`RequestBody`]) and how much of the answer's
//! body a driver reads ([`ResponseLimits`], [`BodyLimit`], [`BodyTruncated`]). Operations build these and
//! tasks pass them on; they are re-exported from [`crate::task`] for the drivers.

use bytes::Bytes;

/// The body of an outgoing request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestBody {
    /// No body.
    Empty,
    /// These bytes.
    Bytes(Bytes),
    /// `len` bytes of the task's source starting at `offset`: the driver streams them (from a file range,
    /// a reader, …) and reports their [`SentDigest`](crate::checksum::SentDigest) with the response.
    Source {
        /// Offset in the source.
        offset: u64,
        /// Number of bytes.
        len: u64,
        /// Compute the body's MD5 too (CRC-64 is always computed): set when the upload verifies ETags
        /// as MD5s (`verify_md5`), off by default because MD5 costs about 16× the CPU of CRC-64.
        md5: bool,
    },
}

impl RequestBody {
    /// The body length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            RequestBody::Empty => 0,
            RequestBody::Bytes(b) => b.len() as u64,
            RequestBody::Source { len, .. } => *len,
        }
    }

    /// True for a zero-length body.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How many response body bytes the core accepts for a request, set by the core per operation as an
/// extension of [`Transmit::request`](crate::task::Transmit::request) (read it with [`ResponseLimits::of`]).
///
/// A driver reads at most `success` bytes of a 2xx body and at most `error` bytes of any other; a 2xx body
/// longer than its limit is a [`crate::error::TransportErrorKind::TooLarge`] failure, an error document
/// longer than its limit is cut there (the rest is not read: the connection is dropped) and handed over
/// with a [`BodyTruncated`] response extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Largest 2xx body accepted.
    pub success: u64,
    /// Largest error document read; longer ones are cut.
    pub error: u64,
}

impl ResponseLimits {
    /// The default limit of an answer: 64 KiB (upload answers are empty or a few hundred bytes).
    pub const DEFAULT_BODY: u64 = 64 * 1024;
    /// The largest error document read: 64 KiB.
    pub const ERROR_BODY: u64 = 64 * 1024;

    /// The limits a request carries, or the defaults when it carries none.
    pub fn of<B>(request: &http::Request<B>) -> ResponseLimits {
        request
            .extensions()
            .get::<ResponseLimits>()
            .copied()
            .unwrap_or_default()
    }

    /// What a driver does with the body of an answer with this status: 2xx bodies over `success` fail,
    /// other bodies are cut at `error`.
    pub fn for_status(&self, status: http::StatusCode) -> BodyLimit {
        if status.is_success() {
            BodyLimit {
                max: self.success,
                cut: false,
            }
        } else {
            BodyLimit {
                max: self.error,
                cut: true,
            }
        }
    }
}

/// The limit on one response body ([`ResponseLimits::for_status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit {
    /// The most bytes read.
    pub max: u64,
    /// Beyond `max`: `true` cuts the body there (and marks the response with [`BodyTruncated`]), `false`
    /// fails the exchange with [`BodyLimit::too_large`].
    pub cut: bool,
}

impl BodyLimit {
    /// The failure of a body longer than `max` when it is not cut.
    pub fn too_large(&self) -> crate::error::TransportError {
        crate::error::TransportError::new(
            crate::error::TransportErrorKind::TooLarge,
            format!(
                "the answer is larger than the {} bytes accepted for this request",
                self.max
            ),
        )
    }
}

impl Default for ResponseLimits {
    fn default() -> Self {
        ResponseLimits {
            success: Self::DEFAULT_BODY,
            error: Self::ERROR_BODY,
        }
    }
}

/// A response extension set by a driver: the body was cut at `at` bytes (see [`ResponseLimits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyTruncated {
    /// The number of bytes kept.
    pub at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_zero_length_body_is_empty() {
        assert!(RequestBody::Empty.is_empty());
        assert!(RequestBody::Bytes(Bytes::new()).is_empty());
        assert!(!RequestBody::Bytes(Bytes::from_static(b"x")).is_empty());
        let source = |len| RequestBody::Source {
            offset: 9,
            len,
            md5: false,
        };
        assert!(source(0).is_empty());
        assert!(!source(1).is_empty());
        assert_eq!(source(5).len(), 5);
    }

    #[test]
    fn a_request_without_limits_accepts_64_kib_answers_and_cuts_error_documents_there() {
        let request = http::Request::get("http://b.example/k").body(()).unwrap();
        let limits = ResponseLimits::of(&request);
        assert_eq!(
            limits.for_status(http::StatusCode::OK),
            BodyLimit {
                max: 65536,
                cut: false
            }
        );
        assert_eq!(
            limits.for_status(http::StatusCode::SERVICE_UNAVAILABLE),
            BodyLimit {
                max: 65536,
                cut: true
            }
        );
        assert_eq!(
            limits.for_status(http::StatusCode::OK).too_large().message,
            "the answer is larger than the 65536 bytes accepted for this request"
        );
        // Limits a request carries win over the defaults.
        let mut request = request;
        request.extensions_mut().insert(ResponseLimits {
            success: 1,
            error: 2,
        });
        assert_eq!(
            ResponseLimits::of(&request)
                .for_status(http::StatusCode::OK)
                .max,
            1
        );
    }
}
