//! Request bodies and the [`AsyncSource`] a task's `RequestBody::Source` ranges are read from.

use std::future::Future;
use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};

/// A reader over one range of a source.
pub type SourceReader<'a> = Box<dyn AsyncRead + Send + Unpin + 'a>;

/// The future [`AsyncSource::open`] returns.
pub type OpenFuture<'a> = Pin<Box<dyn Future<Output = io::Result<SourceReader<'a>>> + Send + 'a>>;

/// Where a task's streamed bodies come from: `RequestBody::Source { offset, len }` asks for `len` bytes
/// starting at `offset`. The async analogue of `cos_blocking::Source`.
///
/// The driver calls `open` once per request it sends (again for a retry), reads the returned reader to
/// the end while sending, and computes the body digest on the way.
pub trait AsyncSource: Send {
    /// A reader over `len` bytes from `offset`. It may yield fewer bytes only on error; the driver reports
    /// a short read as a body failure.
    fn open(&mut self, offset: u64, len: u64) -> OpenFuture<'_>;
}

/// A source that has no bytes: for operations whose body is carried inside the operation.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSource;

impl AsyncSource for NoSource {
    fn open(&mut self, offset: u64, len: u64) -> OpenFuture<'_> {
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
    /// `len` bytes of the file at `path` from `offset`, read while sending (each attempt reopens the file).
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

/// A body as an [`AsyncSource`]: offsets are relative to the body's first byte.
pub(crate) struct BodySource {
    body: Body,
    /// For a reader: how many bytes were handed out already.
    consumed: u64,
}

impl BodySource {
    pub(crate) fn new(body: Body) -> Self {
        BodySource { body, consumed: 0 }
    }
}

impl AsyncSource for BodySource {
    fn open(&mut self, offset: u64, len: u64) -> OpenFuture<'_> {
        Box::pin(async move {
            let size = self.body.len();
            if !matches!(offset.checked_add(len), Some(end) if end <= size) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("range {offset}+{len} is outside a body of {size} bytes"),
                ));
            }
            match &mut self.body {
                Body::Bytes(b) => {
                    let part = b.slice(offset as usize..(offset + len) as usize);
                    Ok(Box::new(io::Cursor::new(part)) as SourceReader<'_>)
                }
                Body::File {
                    path, offset: base, ..
                } => {
                    let mut f = tokio::fs::File::open(&*path).await?;
                    f.seek(SeekFrom::Start(*base + offset)).await?;
                    Ok(Box::new(f.take(len)) as SourceReader<'_>)
                }
                Body::Reader { reader, .. } => {
                    if offset != self.consumed {
                        return Err(io::Error::new(
                            io::ErrorKind::Unsupported,
                            "a reader body cannot be rewound or read out of order",
                        ));
                    }
                    self.consumed += len;
                    Ok(Box::new(reader.take(len)) as SourceReader<'_>)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(s: &mut dyn AsyncSource, off: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        s.open(off, len).await?.read_to_end(&mut v).await?;
        Ok(v)
    }

    #[tokio::test]
    async fn ranges_of_every_body_kind() {
        let mut s = BodySource::new(Body::from("hello world"));
        assert_eq!(read(&mut s, 6, 5).await.unwrap(), b"world");
        assert!(read(&mut s, 6, 6).await.is_err());

        let path = std::env::temp_dir().join(format!("cos-async-body-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let mut s = BodySource::new(Body::file_range(&path, 2, 6));
        assert_eq!(read(&mut s, 1, 3).await.unwrap(), b"345");
        assert_eq!(read(&mut s, 0, 6).await.unwrap(), b"234567");
        assert_eq!(Body::file(&path).unwrap().len(), 10);
        std::fs::remove_file(&path).unwrap();

        let mut s = BodySource::new(Body::reader(io::Cursor::new(b"abcdef".to_vec()), 6));
        assert_eq!(read(&mut s, 0, 3).await.unwrap(), b"abc");
        assert!(read(&mut s, 0, 3).await.is_err(), "a reader cannot rewind");
        assert_eq!(read(&mut s, 3, 3).await.unwrap(), b"def");
    }
}
