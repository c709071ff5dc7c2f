//! POST Object: a browser-style `multipart/form-data` upload with a signed [`PostForm`], streamed as
//! `head ++ file ++ tail` with an exact `Content-Length`; only the file bytes are digested (for the ETag
//! and CRC-64 checks). The form carries the authorisation: no `Authorization` header is sent.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use cos_core::checksum::BodyDigest;
use cos_core::post_policy::{FileDigest, PostForm, PostObject, PostObjectOutput, PostObjectTask};
use cos_core::Error;

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::body::{AsyncSource, Body, BodySource, OpenFuture, SourceReader};
use crate::Client;

/// A random multipart boundary (the core has no randomness: the seed comes from std's hasher keys).
fn boundary() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let a = h.finish();
    h.write_u64(a);
    PostForm::boundary((u128::from(a) << 64) | u128::from(h.finish()))
}

/// The framed body as an [`AsyncSource`]: `head`, the file (digested into `slot` once read to its end),
/// `tail`.
struct Framed {
    head: Bytes,
    tail: Bytes,
    file: BodySource,
    file_len: u64,
    slot: FileDigest,
}

impl AsyncSource for Framed {
    fn open(&self, offset: u64, len: u64) -> OpenFuture<'_> {
        Box::pin(async move {
            let total = self.head.len() as u64 + self.file_len + self.tail.len() as u64;
            if offset != 0 || len != total {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a POST body is sent whole ({total} bytes), not {offset}+{len}"),
                ));
            }
            self.slot.clear();
            let file = DigestFile {
                inner: self.file.open(0, self.file_len).await?,
                digest: Some(BodyDigest::new()),
                remaining: self.file_len,
                slot: self.slot.clone(),
            };
            let head = io::Cursor::new(self.head.clone());
            let tail = io::Cursor::new(self.tail.clone());
            Ok(Box::new(head.chain(file).chain(tail)) as SourceReader)
        })
    }
}

/// The file's bytes, digested; the digest is published when the last byte has been read.
struct DigestFile {
    inner: SourceReader,
    digest: Option<BodyDigest>,
    remaining: u64,
    slot: FileDigest,
}

impl DigestFile {
    fn publish(&mut self) {
        if self.remaining == 0 {
            if let Some(d) = self.digest.take() {
                self.slot.set(d.finish());
            }
        }
    }
}

impl AsyncRead for DigestFile {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            this.publish();
            return Poll::Ready(Ok(()));
        }
        let max = buf
            .remaining()
            .min(usize::try_from(this.remaining).unwrap_or(usize::MAX));
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(max));
        match Pin::new(&mut this.inner).poll_read(cx, &mut limited) {
            Poll::Ready(Ok(())) => {
                let n = limited.filled().len();
                if n == 0 {
                    // The transport notices the short body; no digest is published.
                    return Poll::Ready(Ok(()));
                }
                if let Some(d) = &mut this.digest {
                    d.update(limited.filled());
                }
                buf.advance(n);
                this.remaining -= n as u64;
                this.publish();
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl Client {
    /// POST Object: uploads `body` with a signed form (from [`Client::sign_post_policy`],
    /// [`PostPolicy::sign`](cos_core::post_policy::PostPolicy::sign), or a server that holds the
    /// credentials), as a browser would, to the form's URL.
    ///
    /// The body is streamed between the form fields and the closing boundary with an exact
    /// `Content-Length`; its MD5 and CRC-64 are checked against the answer. `filename` names the file part
    /// (it replaces `${filename}` in the key), `content_type` is the file part's type. Every
    /// [`PostForm::starts_with`] field must have been set with [`PostForm::set`]. A file outside the
    /// policy's `content-length-range` is refused before anything is sent; the server's refusals
    /// (expired policy, a violated condition, a bad signature) are [`Error::Service`] errors.
    ///
    /// ```no_run
    /// use std::time::{Duration, SystemTime};
    /// use cos_async::{Client, Config, Credentials};
    /// use cos_core::post_policy::PostPolicy;
    /// # #[tokio::main] async fn main() -> Result<(), cos_async::Error> {
    /// let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
    /// let client = Client::new(config);
    /// let policy = PostPolicy::new(SystemTime::now() + Duration::from_secs(600)).key("notes/a.txt");
    /// let form = client.sign_post_policy(&policy)?;
    /// let out = client.post_object(&form, "hello", "a.txt", "text/plain").await?;
    /// println!("{:?}", out.etag);
    /// # Ok(()) }
    /// ```
    pub async fn post_object(
        &self,
        form: &PostForm,
        body: impl Into<Body>,
        filename: &str,
        content_type: &str,
    ) -> Result<PostObjectOutput, Error> {
        let body = body.into();
        let file_len = body.len();
        let replayable = body.is_replayable();
        let post = PostObject::new(form.clone(), boundary(), filename, content_type)?;
        let mut task = PostObjectTask::new(post, file_len, &self.config())?;
        if !replayable {
            task = task.not_replayable();
        }
        let source = Framed {
            head: task.post().head().clone(),
            tail: task.post().tail(),
            file: BodySource::new(body),
            file_len,
            slot: task.file_digest(),
        };
        self.run(task, &source).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn framed_source_digests_only_the_file() {
        let slot = FileDigest::default();
        let f = Framed {
            head: Bytes::from_static(b"HEAD"),
            tail: Bytes::from_static(b"TAIL"),
            file: BodySource::new(Body::from("hello")),
            file_len: 5,
            slot: slot.clone(),
        };
        assert!(f.open(0, 5).await.is_err());
        let mut out = Vec::new();
        f.open(0, 13)
            .await
            .unwrap()
            .read_to_end(&mut out)
            .await
            .unwrap();
        assert_eq!(out, b"HEADhelloTAIL");
        assert_eq!(slot.take(), Some(BodyDigest::of(b"hello")));
        let mut r = f.open(0, 13).await.unwrap();
        let mut four = [0u8; 4];
        r.read_exact(&mut four).await.unwrap();
        assert_eq!(slot.take(), None, "no digest before the file is read");
        r.read_to_end(&mut out).await.unwrap();
        drop(r);
        assert_eq!(slot.take(), Some(BodyDigest::of(b"hello")));
    }

    #[test]
    fn boundaries_differ() {
        assert_ne!(boundary(), boundary());
        assert!(boundary().len() <= 70);
    }
}
