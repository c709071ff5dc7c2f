//! [`Client::get_object_reader`]: GET Object with the body streamed as a [`Read`], checked by the core as it
//! arrives, never held whole in memory.

use std::io::{self, Read};
use std::time::SystemTime;

use bytes::Bytes;
use cos_core::ops::{BodyCheck, GetHead, GetObject, GetObjectStream, ObjectInfo};
use cos_core::Error;

use crate::Client;

/// The body of a streamed GET Object, read with [`Read`].
///
/// Its bytes are checked while they are read: a body longer or shorter than `Content-Length` (a cut
/// connection) or, for a complete object, one whose CRC-64 differs from `x-cos-hash-crc64ecma`, makes the
/// read that detects it fail with an [`io::Error`] wrapping the [`Error`] (see [`Error`] via
/// [`io::Error::into_inner`]). Only a read that returned `Ok(0)` means the whole body arrived intact.
pub struct ObjectReader {
    info: ObjectInfo,
    range: Option<(u64, u64, u64)>,
    body: ureq::BodyReader<'static>,
    check: BodyCheck,
    failed: bool,
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("info", &self.info)
            .field("range", &self.range)
            .field("received", &self.check.received())
            .finish_non_exhaustive()
    }
}

impl ObjectReader {
    /// The object's headers (`content_length` is the length of this body).
    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }

    /// For a ranged GET: `(first, last, total)` from `Content-Range`.
    pub fn range(&self) -> Option<(u64, u64, u64)> {
        self.range
    }

    /// Bytes read so far.
    pub fn received(&self) -> u64 {
        self.check.received()
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("the object body already failed"));
        }
        let result = match self.body.read(buf) {
            Ok(0) => self.check.finish().map(|_| 0),
            Ok(n) => self.check.update(&buf[..n]).map(|_| n),
            Err(e) => {
                self.failed = true;
                return Err(e);
            }
        };
        result.map_err(|e| {
            self.failed = true;
            io::Error::other(e)
        })
    }
}

impl Client {
    /// GET Object with the body streamed: the op's range and conditions (`If-Match`, `If-None-Match`,
    /// `If-Modified-Since`, `If-Unmodified-Since`) apply, and the status is interpreted by the core
    /// ([`GetObjectStream`]): a failed condition is the service error `PreconditionFailed` (412) or
    /// `NotModified` (304), an unsatisfiable range `InvalidRange` (416).
    ///
    /// One attempt, without retries (a failure part-way through the body is the reader's error).
    ///
    /// ```no_run
    /// # fn f(client: cos_blocking::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use cos_blocking::ops::GetObject;
    /// let mut body = client.get_object_reader(GetObject::new("big.bin").range(0, Some(1 << 20)))?;
    /// std::io::copy(&mut body, &mut std::io::sink())?;
    /// # Ok(()) }
    /// ```
    pub fn get_object_reader(&self, op: GetObject) -> Result<ObjectReader, Error> {
        let stream = GetObjectStream::new(op);
        let now = SystemTime::now();
        let config = self.signing_config(now)?;
        let mut request = stream.to_request(&config)?;
        cos_core::task::sign(&config, &mut request, now)?;
        let (parts, _) = request.into_parts();
        let request = http::Request::from_parts(parts, ());
        let response = self.transport().open(request).map_err(Error::Transport)?;
        let (parts, mut body) = response.into_parts();
        match stream.head(parts.status, &parts.headers) {
            GetHead::Body { info, range, check } => Ok(ObjectReader {
                info: *info,
                range,
                body: body.into_reader(),
                check,
                failed: false,
            }),
            GetHead::Error { max_body } => {
                let mut bytes = Vec::new();
                let _ = body
                    .as_reader()
                    .take(max_body as u64)
                    .read_to_end(&mut bytes);
                Err(stream.error(&http::Response::from_parts(parts, Bytes::from(bytes))))
            }
            _ => Err(Error::UnexpectedResponse(Box::new(
                cos_core::error::UnexpectedResponse {
                    status: parts.status.as_u16(),
                    reason: "unknown GET decision".into(),
                    excerpt: String::new(),
                    request_id: None,
                },
            ))),
        }
    }
}
