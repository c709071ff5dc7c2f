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
                    context: None,
                },
            ))),
        }
    }
}

/// What [`Client::download_file`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadOutcome {
    /// Bytes written (the object's size).
    pub size: u64,
    /// The ETag of the object downloaded.
    pub etag: Option<String>,
    /// GET requests sent.
    pub requests: usize,
}

impl Client {
    /// Downloads `key` to `path` as [`cos_core::download::DownloadPlan`] decides: one GET below
    /// `options.threshold`, ranged GETs (`options.concurrency` at a time, each with `If-Match` on the ETag)
    /// above it. The bytes go to a temporary file beside `path` (`<name>.cos-download`), their CRC-64 is
    /// computed as they are written and checked against the object's; only then is the file renamed to
    /// `path`. On any error the temporary file is removed and `path` is left as it was.
    pub fn download_file(
        &self,
        key: &str,
        path: impl AsRef<std::path::Path>,
        options: &cos_core::download::DownloadOptions,
    ) -> Result<DownloadOutcome, Error> {
        let path = path.as_ref();
        let info = self.head_object(key)?;
        let plan = cos_core::download::DownloadPlan::new(key, &info, options)?;
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".cos-download");
        let tmp = path.with_file_name(tmp_name);
        let result = self.download_to(&plan, &tmp).and_then(|crcs| {
            plan.verify(&crcs)?;
            std::fs::rename(&tmp, path).map_err(|e| file_error(path, e))
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map(|()| DownloadOutcome {
            size: plan.size(),
            etag: info.etag.clone(),
            requests: plan.pieces(),
        })
    }

    /// Fetches every piece into `tmp`; returns each piece's CRC-64.
    fn download_to(
        &self,
        plan: &cos_core::download::DownloadPlan,
        tmp: &std::path::Path,
    ) -> Result<Vec<u64>, Error> {
        let file = std::fs::File::create(tmp).map_err(|e| file_error(tmp, e))?;
        file.set_len(plan.size()).map_err(|e| file_error(tmp, e))?;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let crcs = std::sync::Mutex::new(vec![0u64; plan.pieces()]);
        let failed = std::sync::Mutex::new(None::<Error>);
        std::thread::scope(|scope| {
            for _ in 0..plan.concurrency() {
                scope.spawn(|| loop {
                    if failed.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
                        return;
                    }
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= plan.pieces() {
                        return;
                    }
                    match self.fetch_piece(plan, i, tmp) {
                        Ok(crc) => crcs.lock().unwrap_or_else(|e| e.into_inner())[i] = crc,
                        Err(e) => {
                            failed
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e);
                            return;
                        }
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        file.sync_all().map_err(|e| file_error(tmp, e))?;
        Ok(crcs.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// One piece: a streamed GET written at its offset with a fixed buffer, CRC-64 on the way.
    fn fetch_piece(
        &self,
        plan: &cos_core::download::DownloadPlan,
        i: usize,
        tmp: &std::path::Path,
    ) -> Result<u64, Error> {
        use std::io::{Seek, SeekFrom, Write};
        let (offset, _) = plan.piece(i);
        let mut reader = self.get_object_reader(plan.request(i))?;
        // An own handle per piece: a cloned handle would share the file position with the other workers.
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .open(tmp)
            .map_err(|e| file_error(tmp, e))?;
        out.seek(SeekFrom::Start(offset))
            .map_err(|e| file_error(tmp, e))?;
        let mut crc = cos_core::checksum::Crc64::new();
        let mut buf = vec![0u8; 256 << 10];
        let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(read_error(e)),
            };
            crc.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(|e| file_error(tmp, e))?;
        }
        out.flush().map_err(|e| file_error(tmp, e))?;
        Ok(crc.finish())
    }
}

fn file_error(path: &std::path::Path, e: io::Error) -> Error {
    Error::Transport(cos_core::error::TransportError::new(
        cos_core::error::TransportErrorKind::Body,
        format!("{}: {e}", path.display()),
    ))
}

/// The core's error inside a reader's `io::Error`, or the I/O error as a transport error.
fn read_error(e: io::Error) -> Error {
    let message = e.to_string();
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(err)) => *err,
        _ => Error::Transport(cos_core::error::TransportError::new(
            cos_core::error::TransportErrorKind::Body,
            message,
        )),
    }
}
