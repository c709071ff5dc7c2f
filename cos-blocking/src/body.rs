//! Request bodies and the [`Source`] a task's `RequestBody::Source` ranges are read from.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

/// Where a task's streamed bodies come from: `RequestBody::Source { offset, len }` asks for `len` bytes
/// starting at `offset`.
///
/// The driver calls `open` once per request it sends (again for a retry), reads the returned reader to
/// the end while sending, and computes the body digest on the way. Requests run in parallel (the parts of a
/// multipart upload), so `open` takes `&self` and may be called from several threads at once: each call
/// should return an independent reader (e.g. a file opened for that range).
///
/// ```
/// use std::io::{self, Read};
/// use cos_blocking::Source;
/// struct Zeros;
/// impl Source for Zeros {
///     fn open(&self, _offset: u64, len: u64) -> io::Result<Box<dyn Read + Send + '_>> {
///         Ok(Box::new(io::repeat(0).take(len)))
///     }
/// }
/// let mut v = Vec::new();
/// Zeros.open(10, 4)?.read_to_end(&mut v)?;
/// assert_eq!(v, [0; 4]);
/// # Ok::<(), io::Error>(())
/// ```
pub trait Source: Sync {
    /// A reader over `len` bytes from `offset`. It may yield fewer bytes only on error; the driver reports
    /// a short read as a body failure.
    fn open(&self, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send + '_>>;
}

/// A file as a [`Source`]: the file is opened once, when the first range is asked for, and every range is
/// read from that one handle with positional reads (`pread`), so ranges can be read in parallel without
/// seeking or reopening. Clones share the handle.
#[derive(Clone, Debug)]
pub struct FileSource {
    path: PathBuf,
    file: SharedFile,
}

impl FileSource {
    /// The file at `path` (opened on first use, then kept open while the source lives).
    pub fn new(path: impl Into<PathBuf>) -> FileSource {
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

impl Source for FileSource {
    fn open(&self, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(self.file.range(&self.path, offset, len)?))
    }
}

/// A file opened once, on first use, and shared by every range read from it.
#[derive(Clone, Debug, Default)]
pub(crate) struct SharedFile(Arc<OnceLock<File>>);

impl SharedFile {
    /// The open file (opening it now if no range was read yet).
    fn get(&self, path: &Path) -> io::Result<&File> {
        if let Some(f) = self.0.get() {
            return Ok(f);
        }
        let f = File::open(path)?;
        // Two first readers may race: one handle wins, the other is closed.
        Ok(self.0.get_or_init(|| f))
    }

    /// A reader over `len` bytes from `offset`.
    pub(crate) fn range(&self, path: &Path, offset: u64, len: u64) -> io::Result<FileRange<'_>> {
        Ok(FileRange {
            file: self.get(path)?,
            pos: offset,
            remaining: len,
        })
    }
}

/// `remaining` bytes of a shared file from `pos`, read with positional reads straight into the caller's
/// buffer (no seek, no intermediate copy).
pub(crate) struct FileRange<'a> {
    file: &'a File,
    pos: u64,
    remaining: u64,
}

impl Read for FileRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if max == 0 {
            return Ok(0);
        }
        let n = read_at(self.file, &mut buf[..max], self.pos)?;
        self.pos += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// One positional read (`pread` on Unix, `ReadFile` with an offset on Windows).
pub(crate) fn read_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_at(file, buf, pos)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::FileExt::seek_read(file, buf, pos)
    }
}

/// A source that has no bytes: for operations whose body is carried inside the operation.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSource;

impl Source for NoSource {
    fn open(&self, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send + '_>> {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("this request has no body source (asked for {len} bytes at {offset})"),
        ))
    }
}

/// The body of an upload: bytes in memory, a range of a file (streamed, never read whole), or a reader.
///
/// ```
/// use cos_blocking::Body;
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
        reader: Box<dyn Read + Send>,
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
    pub fn reader(reader: impl Read + Send + 'static, len: u64) -> Body {
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

fn out_of_range(offset: u64, len: u64, size: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("range {offset}+{len} is outside a body of {size} bytes"),
    )
}

/// A body as a [`Source`]: offsets are relative to the body's first byte.
pub(crate) struct BodySource {
    body: SharedBody,
    len: u64,
}

enum SharedBody {
    Bytes(Bytes),
    File {
        path: PathBuf,
        offset: u64,
        file: SharedFile,
    },
    /// A reader and how many bytes were handed out already; ranges must be asked for in order.
    Reader(Mutex<(Box<dyn Read + Send>, u64)>),
}

impl BodySource {
    pub(crate) fn new(body: Body) -> Self {
        let len = body.len();
        let body = match body {
            Body::Bytes(b) => SharedBody::Bytes(b),
            Body::File { path, offset, .. } => SharedBody::File {
                path,
                offset,
                file: SharedFile::default(),
            },
            Body::Reader { reader, .. } => SharedBody::Reader(Mutex::new((reader, 0))),
        };
        BodySource { body, len }
    }
}

/// A range of a shared reader: each read takes the lock, so the range can be read on another thread.
struct ReaderRange<'a> {
    shared: &'a Mutex<(Box<dyn Read + Send>, u64)>,
    remaining: u64,
}

impl Read for ReaderRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let mut guard = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let n = guard.0.read(&mut buf[..max])?;
        guard.1 += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl Source for BodySource {
    fn open(&self, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send + '_>> {
        let size = self.len;
        if !matches!(offset.checked_add(len), Some(end) if end <= size) {
            return Err(out_of_range(offset, len, size));
        }
        match &self.body {
            SharedBody::Bytes(b) => {
                let part = b.slice(offset as usize..(offset + len) as usize);
                Ok(Box::new(io::Cursor::new(part)))
            }
            SharedBody::File {
                path,
                offset: base,
                file,
            } => Ok(Box::new(file.range(path, *base + offset, len)?)),
            SharedBody::Reader(shared) => {
                let consumed = shared.lock().unwrap_or_else(|e| e.into_inner()).1;
                if offset != consumed {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        "a reader body cannot be rewound or read out of order",
                    ));
                }
                Ok(Box::new(ReaderRange {
                    shared,
                    remaining: len,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &dyn Source, off: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        s.open(off, len)?.read_to_end(&mut v)?;
        Ok(v)
    }

    #[test]
    fn ranges_of_every_body_kind() {
        let s = BodySource::new(Body::from("hello world"));
        assert_eq!(read(&s, 6, 5).unwrap(), b"world");
        assert!(read(&s, 6, 6).is_err());

        let dir = std::env::temp_dir().join(format!("cos-blocking-body-{}", std::process::id()));
        std::fs::write(&dir, b"0123456789").unwrap();
        let s = BodySource::new(Body::file_range(&dir, 2, 6));
        assert_eq!(read(&s, 1, 3).unwrap(), b"345");
        assert_eq!(read(&s, 0, 6).unwrap(), b"234567");
        assert_eq!(Body::file(&dir).unwrap().len(), 10);
        std::fs::remove_file(&dir).unwrap();

        let s = BodySource::new(Body::reader(io::Cursor::new(b"abcdef".to_vec()), 6));
        assert_eq!(read(&s, 0, 3).unwrap(), b"abc");
        assert!(read(&s, 0, 3).is_err(), "a reader cannot rewind");
        assert_eq!(read(&s, 3, 3).unwrap(), b"def");
    }

    #[test]
    fn a_file_source_opens_the_file_once_and_reads_ranges_in_parallel() {
        let path = std::env::temp_dir().join(format!("cos-blocking-fs-{}", std::process::id()));
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let src = FileSource::new(&path);
        assert_eq!(read(&src, 10, 5).unwrap(), &data[10..15]);
        // The handle stays open: the ranges still read after the name is gone (Unix semantics).
        #[cfg(unix)]
        std::fs::remove_file(&path).unwrap();
        std::thread::scope(|s| {
            for i in 0..4u64 {
                let (src, data) = (&src, &data);
                s.spawn(move || {
                    let (off, len) = (i * 250_000, 250_000);
                    let got = read(src, off, len).unwrap();
                    assert!(got == data[off as usize..(off + len) as usize], "range {i}");
                });
            }
        });
        #[cfg(not(unix))]
        std::fs::remove_file(&path).unwrap();
        assert!(FileSource::new("/nonexistent/cos-rs").open(0, 1).is_err());
    }
}
