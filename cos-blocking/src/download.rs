//! [`Client::get_object_reader`]: GET Object with the body streamed as a [`Read`], checked by the core as it
//! arrives, never held whole in memory.

use std::io::{self, Read};
use std::time::SystemTime;

use bytes::Bytes;
use cos_core::download::file_error;
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
        let config = self.state().signing_config(now)?;
        let request = stream.signed_request(&config, now)?;
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
        }
    }
}

pub use cos_core::download::DownloadOutcome;

/// What reaches a download loop: a fetch's report or the owner's command.
pub(crate) enum DownloadMsg {
    /// Fetch `id` ended.
    Fetched(usize, cos_core::download::FetchReport),
    /// Pause, resume or cancel.
    Command(cos_core::task::Command),
}

/// A download progress callback: bytes in the temporary file so far, and the object's size.
pub type DownloadProgress<'a> = &'a (dyn Fn(u64, u64) + Sync);

impl Client {
    /// Downloads `key` to `path` as [`cos_core::download::DownloadTask`] decides: one GET below
    /// `options.threshold`, ranged GETs (`options.concurrency` at a time, each with `If-Match` on the ETag)
    /// above it; a body cut part-way is continued with a ranged GET of the rest. The bytes go to a
    /// temporary file beside `path` ([`cos_core::download::temp_path`]), their CRC-64 is computed as they
    /// are written and checked against the object's; only then is the file renamed to `path`.
    ///
    /// With `options.checkpoint`, a checkpoint beside it ([`cos_core::download::checkpoint_path`]) names
    /// the ranges already written: a failed or killed download, run again, fetches only the missing ones.
    /// Without it, a failed download removes the temporary file. `path` is left as it was on any error.
    pub fn download_file(
        &self,
        key: &str,
        path: impl AsRef<std::path::Path>,
        options: &cos_core::download::DownloadOptions,
    ) -> Result<DownloadOutcome, Error> {
        self.download_file_with_progress(key, path, options, &|_, _| {})
    }

    /// [`Client::download_file`], calling `progress(done, total)` as ranges are written.
    pub fn download_file_with_progress(
        &self,
        key: &str,
        path: impl AsRef<std::path::Path>,
        options: &cos_core::download::DownloadOptions,
        progress: DownloadProgress<'_>,
    ) -> Result<DownloadOutcome, Error> {
        let channel = std::sync::mpsc::channel();
        self.download_file_inner(key, path.as_ref(), options, progress, channel, &|| {})
    }

    /// The download loop, taking [`Command`](cos_core::task::Command)s from `channel` beside the fetch
    /// reports and calling `on_paused` whenever the task is paused with nothing in flight.
    pub(crate) fn download_file_inner(
        &self,
        key: &str,
        path: &std::path::Path,
        options: &cos_core::download::DownloadOptions,
        progress: DownloadProgress<'_>,
        (tx, rx): (
            std::sync::mpsc::Sender<DownloadMsg>,
            std::sync::mpsc::Receiver<DownloadMsg>,
        ),
        on_paused: &(dyn Fn() + Sync),
    ) -> Result<DownloadOutcome, Error> {
        use cos_core::download::{checkpoint_path, temp_path, DownloadStep, DownloadTask};
        let info = self.head_object(key)?;
        let (tmp, cp_path) = (temp_path(path), checkpoint_path(path));
        let mut task = DownloadTask::for_client(&self.config(), key, &info, options)?;
        let mut file = None;
        let stop = std::sync::atomic::AtomicBool::new(false);
        let result = std::thread::scope(|scope| loop {
            match task.next_step() {
                DownloadStep::Fetch(fetch) => {
                    let (tx, tmp, stop) = (tx.clone(), &tmp, &stop);
                    scope.spawn(move || {
                        if !fetch.delay.is_zero() {
                            std::thread::sleep(fetch.delay);
                        }
                        let report = self.fetch_range(&fetch, tmp, stop);
                        let _ = tx.send(DownloadMsg::Fetched(fetch.id, report));
                    });
                }
                step @ (DownloadStep::Wait | DownloadStep::Paused) => {
                    // Paused: nothing in flight, the checkpoint stored; wait for a command.
                    if matches!(step, DownloadStep::Paused) {
                        on_paused();
                    }
                    match rx.recv() {
                        Ok(DownloadMsg::Fetched(id, report)) => task.fetched(id, report),
                        Ok(DownloadMsg::Command(c)) => task.command(c),
                        Err(_) => task
                            .local_failure(file_error(&tmp, io::Error::other("a fetch vanished"))),
                    }
                }
                DownloadStep::LoadCheckpoint => task.loaded(
                    std::fs::read(&cp_path).ok().as_deref(),
                    std::fs::metadata(&tmp).ok().map(|m| m.len()),
                ),
                DownloadStep::CheckKept { ranges } => task.kept(&crcs_of(&tmp, &ranges)),
                DownloadStep::PrepareTemp { create, size } => {
                    let mut open = std::fs::OpenOptions::new();
                    let opened = open.write(true).create(create).truncate(create).open(&tmp);
                    match opened.and_then(|f| f.set_len(size).map(|()| f)) {
                        Ok(f) => file = Some(f),
                        Err(e) => task.local_failure(file_error(&tmp, e)),
                    }
                }
                DownloadStep::StoreCheckpoint(bytes) => {
                    if let Err(e) = crate::transfer::store(&cp_path, &bytes) {
                        task.local_failure(file_error(&cp_path, e));
                    }
                }
                DownloadStep::Progress { done, total } => progress(done, total),
                DownloadStep::Finish => {
                    let synced = file.as_ref().map_or(Ok(()), std::fs::File::sync_all);
                    match synced.and_then(|()| std::fs::rename(&tmp, path)) {
                        Ok(()) => {
                            let _ = std::fs::remove_file(&cp_path);
                            break Ok(());
                        }
                        Err(e) => task.local_failure(file_error(path, e)),
                    }
                }
                DownloadStep::Fail {
                    error,
                    keep_partial,
                } => {
                    stop.store(true, std::sync::atomic::Ordering::SeqCst);
                    if !keep_partial {
                        let _ = std::fs::remove_file(&tmp);
                        let _ = std::fs::remove_file(&cp_path);
                    }
                    break Err(error);
                }
                _ => break Err(file_error(&tmp, io::Error::other("unknown download step"))),
            }
        });
        result.map(|()| task.outcome(&info))
    }

    /// One fetch: a streamed GET written at its offset through its own handle with a fixed buffer,
    /// CRC-64 on the way; stops early when `stop` is set.
    fn fetch_range(
        &self,
        fetch: &cos_core::download::Fetch,
        tmp: &std::path::Path,
        stop: &std::sync::atomic::AtomicBool,
    ) -> cos_core::download::FetchReport {
        use std::io::{Seek, SeekFrom, Write};
        let mut tally = fetch.tally();
        let mut out: Option<std::io::BufWriter<std::fs::File>> = None;
        let result = (|| {
            let mut reader = self.get_object_reader(fetch.request.clone())?;
            fetch.check_head(reader.info(), reader.range())?;
            // An own handle per fetch: a cloned handle would share the file position with the others.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(tmp)
                .map_err(|e| file_error(tmp, e))?;
            file.seek(SeekFrom::Start(fetch.offset))
                .map_err(|e| file_error(tmp, e))?;
            let file = out.insert(std::io::BufWriter::with_capacity(1 << 20, file));
            let mut buf = vec![0u8; 256 << 10];
            loop {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    return Err(Error::Cancelled);
                }
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => tally.room(n),
                    Err(e) => return Err(read_error(e)),
                };
                file.write_all(&buf[..n]).map_err(|e| file_error(tmp, e))?;
                tally.wrote(&buf[..n]);
            }
            Ok(())
        })();
        // The bytes reported are in the file (and, when a checkpoint will name them, on disk), also those of
        // a body cut part-way.
        let flushed = match out {
            Some(mut file) => file
                .flush()
                .and_then(|()| match tally.needs_sync() {
                    true => file.get_ref().sync_data(),
                    false => Ok(()),
                })
                .map_err(|e| file_error(tmp, e)),
            None => Ok(()),
        };
        tally.report(result, flushed)
    }
}

impl Client {
    /// Downloads every file of `files` with [`Client::download_file`], `file_parallel` files at a time
    /// (at least 1, in the order the core's queue starts them: oldest first), each with `options`. One result per file, in the order of `files`: a failed file does
    /// not stop the others.
    pub fn download_files(
        &self,
        files: &[cos_core::download::FileDownload],
        options: &cos_core::download::DownloadOptions,
        file_parallel: usize,
    ) -> Vec<Result<DownloadOutcome, Error>> {
        let run = |i: usize| self.download_file(&files[i].key, &files[i].path, options);
        crate::queue::run_batch(&vec![None; files.len()], file_parallel, &run, &|_, _| {})
    }
}

/// The CRC-64 of each `(offset, len)` range of the file at `path`, `None` for one that cannot be read.
fn crcs_of(path: &std::path::Path, ranges: &[(u64, u64)]) -> Vec<Option<u64>> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok();
    let mut buf = vec![0u8; 256 << 10];
    let mut crc_of = |(offset, len): (u64, u64)| -> io::Result<u64> {
        let f = file
            .as_mut()
            .ok_or_else(|| io::Error::other("cannot open"))?;
        f.seek(SeekFrom::Start(offset))?;
        let mut crc = cos_core::checksum::Crc64::new();
        let mut left = len;
        while left > 0 {
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            f.read_exact(&mut buf[..n])?;
            crc.update(&buf[..n]);
            left -= n as u64;
        }
        Ok(crc.finish())
    };
    ranges.iter().map(|&r| crc_of(r).ok()).collect()
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
