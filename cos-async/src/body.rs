//! Request bodies and the [`AsyncSource`] a task's `RequestBody::Source` ranges are read from.

use std::fs::File;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// An owned reader over one range of a source.
pub type SourceReader = Box<dyn AsyncRead + Send + Unpin>;

/// The future [`AsyncSource::open`] returns.
pub type OpenFuture<'a> = Pin<Box<dyn Future<Output = io::Result<SourceReader>> + Send + 'a>>;

/// Where a task's streamed bodies come from: `RequestBody::Source { offset, len }` asks for `len` bytes
/// starting at `offset`. The async analogue of `cos_blocking::Source`.
///
/// The driver calls `open` once per request it sends (again for a retry), reads the returned reader to
/// the end while sending, and computes the body digest on the way. Several ranges may be open at once
/// (parts sent in parallel), so `open` takes `&self` and each reader is independent.
pub trait AsyncSource: Send + Sync {
    /// A reader over `len` bytes from `offset`. It may yield fewer bytes only on error; the driver reports
    /// a short read as a body failure.
    fn open(&self, offset: u64, len: u64) -> OpenFuture<'_>;
}

/// A file as an [`AsyncSource`]: the file is opened once, when the first range is asked for, and every
/// range is read from that handle with positional reads (`pread`) straight into the
/// sender's buffer, so ranges can be read in parallel. Clones share the handle.
///
/// The reads run on the runtime's worker thread, not through `tokio::fs`: for a file in the page cache a
/// read of a chunk takes microseconds, far less than a hop to the blocking pool and back (measured with
/// `cargo run --release -p cos-examples --example bench_read`).
///
/// ```no_run
/// use cos_async::{AsyncSource, FileSource};
/// use tokio::io::AsyncReadExt;
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let source = FileSource::new("big.bin");
/// let mut part = Vec::new();
/// source.open(1 << 20, 1 << 20).await?.read_to_end(&mut part).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct FileSource {
    path: PathBuf,
    file: SharedFile,
}

impl FileSource {
    /// The file at `path` (opened on first use, then kept open while the source lives).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSource {
            path: path.into(),
            file: SharedFile::default(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsyncSource for FileSource {
    fn open(&self, offset: u64, len: u64) -> OpenFuture<'_> {
        Box::pin(self.file.range(&self.path, offset, len))
    }
}

/// A file opened once, on first use, and shared by every range read from it.
#[derive(Clone, Debug, Default)]
pub(crate) struct SharedFile(Arc<OnceLock<Arc<File>>>);

impl SharedFile {
    /// A reader over `len` bytes from `offset` (opening the file the first time).
    ///
    /// The file is opened on the calling worker thread, like the positional reads: opening a local file
    /// takes microseconds, less than a hop to the blocking pool and back, which a batch of small files
    /// paid once per file (`bench_batch`).
    async fn range(&self, path: &Path, offset: u64, len: u64) -> io::Result<SourceReader> {
        let file = match self.0.get() {
            Some(f) => f.clone(),
            None => {
                let f = File::open(path)?;
                // Two first readers may race: one handle wins, the other is closed.
                self.0.get_or_init(|| Arc::new(f)).clone()
            }
        };
        Ok(Box::new(FileRange {
            file,
            pos: offset,
            remaining: len,
        }))
    }
}

/// `remaining` bytes of a shared file from `pos`, read with positional reads straight into the caller's
/// buffer (no seek, no `tokio::fs` thread hop, no intermediate copy).
struct FileRange {
    file: Arc<File>,
    pos: u64,
    remaining: u64,
}

impl AsyncRead for FileRange {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let max = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.remaining());
        if max == 0 {
            return Poll::Ready(Ok(()));
        }
        // Free when the caller's buffer is already initialised (the driver's pooled chunks are).
        let slice = buf.initialize_unfilled_to(max);
        let n = read_at(&self.file, slice, self.pos)?;
        buf.advance(n);
        self.pos += n as u64;
        self.remaining -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// One positional read (`pread` on Unix, `ReadFile` with an offset on Windows).
fn read_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_at(file, buf, pos)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::FileExt::seek_read(file, buf, pos)
    }
}

/// Reusable, initialised chunk buffers for request bodies: a chunk handed to the HTTP client returns its
/// buffer here when the client drops it, so a body is read without allocating or zeroing per chunk. The
/// async client keeps one pool for all its requests.
#[derive(Clone, Default)]
pub(crate) struct ChunkPool(Arc<Mutex<Vec<Vec<u8>>>>);

/// The most idle buffers a pool keeps: 8 chunks of 256 KiB, 2 MiB (a request holds at most 3 at once).
const POOL_MAX: usize = 8;

/// A pooled buffer's first `len` bytes, given back to the pool on drop.
struct PooledChunk {
    buf: Vec<u8>,
    len: usize,
    pool: ChunkPool,
}

impl AsRef<[u8]> for PooledChunk {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for PooledChunk {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let mut pool = self.pool.0.lock().unwrap_or_else(|e| e.into_inner());
        // At most POOL_MAX idle buffers are kept (a client's pool is shared by all its requests).
        if pool.len() < POOL_MAX {
            pool.push(buf);
        }
    }
}

impl ChunkPool {
    /// Reads up to `want` bytes of `reader` into a pooled buffer; `Ok` with an empty chunk at the end.
    pub(crate) async fn read(&self, reader: &mut SourceReader, want: usize) -> io::Result<Bytes> {
        let mut buf = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        if buf.len() < want {
            buf.resize(want, 0);
        }
        let n = reader.read(&mut buf[..want]).await?;
        Ok(Bytes::from_owner(PooledChunk {
            buf,
            len: n,
            pool: self.clone(),
        }))
    }
}

/// A source that has no bytes: for operations whose body is carried inside the operation.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSource;

impl AsyncSource for NoSource {
    fn open(&self, offset: u64, len: u64) -> OpenFuture<'_> {
        Box::pin(async move {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("this request has no body source (asked for {len} bytes at {offset})"),
            ))
        })
    }
}

/// The body of an upload: bytes in memory, a range of a file (streamed, never read whole), or a reader.
///
/// ```
/// use cos_async::Body;
/// let b: Body = "hello".to_string().into();
/// assert_eq!(b.len(), 5);
/// ```
pub enum Body {
    /// Bytes in memory.
    Bytes(Bytes),
    /// `len` bytes of the file at `path` from `offset`, read while sending (the file is opened once per
    /// request and read with positional reads; a retry reads it again).
    File {
        /// The file.
        path: PathBuf,
        /// First byte sent.
        offset: u64,
        /// Number of bytes sent.
        len: u64,
    },
    /// `len` bytes of a reader. A reader cannot be rewound, so a request with this body is never retried.
    Reader {
        /// The reader.
        reader: Box<dyn AsyncRead + Send + Unpin>,
        /// Number of bytes it yields (sent as `Content-Length`).
        len: u64,
    },
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Bytes(b) => f.debug_tuple("Bytes").field(&b.len()).finish(),
            Body::File { path, offset, len } => f
                .debug_struct("File")
                .field("path", path)
                .field("offset", offset)
                .field("len", len)
                .finish(),
            Body::Reader { len, .. } => f
                .debug_struct("Reader")
                .field("len", len)
                .finish_non_exhaustive(),
        }
    }
}

impl Body {
    /// The whole file at `path` (its length is read from the file's metadata now).
    pub fn file(path: impl AsRef<Path>) -> io::Result<Body> {
        let path = path.as_ref().to_path_buf();
        let len = std::fs::metadata(&path)?.len();
        Ok(Body::File {
            path,
            offset: 0,
            len,
        })
    }

    /// `len` bytes of the file at `path` from `offset`.
    pub fn file_range(path: impl AsRef<Path>, offset: u64, len: u64) -> Body {
        Body::File {
            path: path.as_ref().to_path_buf(),
            offset,
            len,
        }
    }

    /// `len` bytes of a reader (not retried: a reader cannot be rewound).
    pub fn reader(reader: impl AsyncRead + Send + Unpin + 'static, len: u64) -> Body {
        Body::Reader {
            reader: Box::new(reader),
            len,
        }
    }

    /// The body length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } | Body::Reader { len, .. } => *len,
        }
    }

    /// True for an empty body.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the body can be sent again (everything but a reader).
    pub fn is_replayable(&self) -> bool {
        !matches!(self, Body::Reader { .. })
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body::Bytes(b)
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Body::Bytes(b.into())
    }
}

impl From<&'static [u8]> for Body {
    fn from(b: &'static [u8]) -> Self {
        Body::Bytes(Bytes::from_static(b))
    }
}

impl From<&'static str> for Body {
    fn from(b: &'static str) -> Self {
        Body::Bytes(Bytes::from_static(b.as_bytes()))
    }
}

impl From<String> for Body {
    fn from(b: String) -> Self {
        Body::Bytes(b.into())
    }
}

/// A shared reader handed out range by range, in order.
type SharedReader = Arc<Mutex<Box<dyn AsyncRead + Send + Unpin>>>;

/// A body as an [`AsyncSource`]: offsets are relative to the body's first byte.
pub(crate) struct BodySource {
    len: u64,
    kind: BodyKind,
}

enum BodyKind {
    Bytes(Bytes),
    File {
        path: PathBuf,
        base: u64,
        file: SharedFile,
    },
    /// A reader, and how many bytes were handed out already.
    Reader {
        reader: SharedReader,
        consumed: Mutex<u64>,
    },
}

impl BodySource {
    pub(crate) fn new(body: Body) -> Self {
        let len = body.len();
        let kind = match body {
            Body::Bytes(b) => BodyKind::Bytes(b),
            Body::File { path, offset, .. } => BodyKind::File {
                path,
                base: offset,
                file: SharedFile::default(),
            },
            Body::Reader { reader, .. } => BodyKind::Reader {
                reader: Arc::new(Mutex::new(reader)),
                consumed: Mutex::new(0),
            },
        };
        BodySource { len, kind }
    }
}

/// `remaining` bytes of a shared reader (the lock is taken only inside each poll).
struct SharedTake {
    reader: SharedReader,
    remaining: u64,
}

impl AsyncRead for SharedTake {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.remaining == 0 {
            return Poll::Ready(Ok(()));
        }
        let max = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.remaining());
        let (poll, n) = {
            let slice = buf.initialize_unfilled_to(max);
            let mut limited = ReadBuf::new(slice);
            let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
            let poll = Pin::new(&mut **reader).poll_read(cx, &mut limited);
            (poll, limited.filled().len())
        };
        if let Poll::Ready(Ok(())) = poll {
            buf.advance(n);
            self.remaining -= n as u64;
        }
        poll
    }
}

impl AsyncSource for BodySource {
    fn open(&self, offset: u64, len: u64) -> OpenFuture<'_> {
        Box::pin(async move {
            let size = self.len;
            if !matches!(offset.checked_add(len), Some(end) if end <= size) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("range {offset}+{len} is outside a body of {size} bytes"),
                ));
            }
            match &self.kind {
                BodyKind::Bytes(b) => {
                    let part = b.slice(offset as usize..(offset + len) as usize);
                    Ok(Box::new(io::Cursor::new(part)) as SourceReader)
                }
                BodyKind::File { path, base, file } => file.range(path, *base + offset, len).await,
                BodyKind::Reader { reader, consumed } => {
                    let mut consumed = consumed.lock().unwrap_or_else(|e| e.into_inner());
                    if offset != *consumed {
                        return Err(io::Error::new(
                            io::ErrorKind::Unsupported,
                            "a reader body cannot be rewound or read out of order",
                        ));
                    }
                    *consumed += len;
                    Ok(Box::new(SharedTake {
                        reader: reader.clone(),
                        remaining: len,
                    }) as SourceReader)
                }
            }
        })
    }
}

/// Fills part buffers from a reader or a stream of chunks.
pub(crate) trait Fill: Send + Unpin {
    /// Reads into `buf[*filled..]` until it is full (`Ok(false)`) or the source ended (`Ok(true)`).
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        filled: &mut usize,
    ) -> Poll<io::Result<bool>>;
}

pub(crate) struct ReaderFill<R>(pub(crate) R);

impl<R: AsyncRead + Unpin + Send> Fill for ReaderFill<R> {
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        filled: &mut usize,
    ) -> Poll<io::Result<bool>> {
        while *filled < buf.len() {
            let mut rb = ReadBuf::new(&mut buf[*filled..]);
            match Pin::new(&mut self.0).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        return Poll::Ready(Ok(true));
                    }
                    *filled += n;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(false))
    }
}

pub(crate) struct StreamFill<S> {
    pub(crate) stream: S,
    pub(crate) leftover: Bytes,
}

impl<S: futures_core::Stream<Item = io::Result<Bytes>> + Unpin + Send> Fill for StreamFill<S> {
    fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        filled: &mut usize,
    ) -> Poll<io::Result<bool>> {
        loop {
            if !self.leftover.is_empty() {
                let n = self.leftover.len().min(buf.len() - *filled);
                buf[*filled..*filled + n].copy_from_slice(&self.leftover.split_to(n));
                *filled += n;
            }
            if *filled == buf.len() {
                return Poll::Ready(Ok(false));
            }
            match Pin::new(&mut self.stream).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => self.leftover = chunk,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(true)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(s: &dyn AsyncSource, off: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        s.open(off, len).await?.read_to_end(&mut v).await?;
        Ok(v)
    }

    #[tokio::test]
    async fn ranges_of_every_body_kind() {
        let s = BodySource::new(Body::from("hello world"));
        assert_eq!(read(&s, 6, 5).await.unwrap(), b"world");
        assert!(read(&s, 6, 6).await.is_err());

        let path = std::env::temp_dir().join(format!("cos-async-body-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let s = BodySource::new(Body::file_range(&path, 2, 6));
        assert_eq!(read(&s, 1, 3).await.unwrap(), b"345");
        assert_eq!(read(&s, 0, 6).await.unwrap(), b"234567");
        assert_eq!(Body::file(&path).unwrap().len(), 10);
        std::fs::remove_file(&path).unwrap();

        let s = BodySource::new(Body::reader(io::Cursor::new(b"abcdef".to_vec()), 6));
        assert_eq!(read(&s, 0, 3).await.unwrap(), b"abc");
        assert!(read(&s, 0, 3).await.is_err(), "a reader cannot rewind");
        assert_eq!(read(&s, 3, 3).await.unwrap(), b"def");
    }

    #[tokio::test]
    async fn a_file_source_opens_the_file_once_and_pooled_chunks_are_reused() {
        let path = std::env::temp_dir().join(format!("cos-async-fs-{}", std::process::id()));
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let src = FileSource::new(&path);
        assert_eq!(read(&src, 10, 5).await.unwrap(), &data[10..15]);
        // The handle stays open: the ranges still read after the name is gone (Unix semantics).
        #[cfg(unix)]
        std::fs::remove_file(&path).unwrap();
        let pool = ChunkPool::default();
        let mut reader = src.open(250_000, 500_000).await.unwrap();
        let mut got = Vec::new();
        let mut first_ptr = None;
        loop {
            let chunk = pool.read(&mut reader, 65_536).await.unwrap();
            if chunk.is_empty() {
                break;
            }
            // Each chunk is dropped before the next read, so the same buffer comes back every time.
            assert_eq!(*first_ptr.get_or_insert(chunk.as_ptr()), chunk.as_ptr());
            got.extend_from_slice(&chunk);
        }
        assert!(got == data[250_000..750_000]);
        #[cfg(not(unix))]
        std::fs::remove_file(&path).unwrap();
        assert!(FileSource::new("/nonexistent/cos-rs")
            .open(0, 1)
            .await
            .is_err());
    }
}
