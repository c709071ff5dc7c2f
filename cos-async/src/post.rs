//! POST Object: a browser-style `multipart/form-data` upload with a signed [`PostForm`], streamed as
//! `head ++ file ++ tail` with an exact `Content-Length`; only the file bytes are digested (for the ETag
//! and CRC-64 checks). The form carries the authorisation: no `Authorization` header is sent.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use cos_core::post_policy::{
    FileDigester, PostForm, PostFraming, PostObject, PostObjectOutput, PostObjectTask,
};
use cos_core::Error;

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::body::{AsyncSource, Body, BodySource, OpenFuture, SourceReader};
use crate::Client;

/// A random multipart boundary (the core has no randomness).
fn boundary() -> String {
    let random = crate::client::random_u64;
    PostForm::boundary((u128::from(random()) << 64) | u128::from(random()))
}

/// The framed body as an [`AsyncSource`]: `head`, the file (digested by the core's [`FileDigester`]),
/// `tail`.
struct Framed {
    framing: PostFraming,
    file: BodySource,
}

impl AsyncSource for Framed {
    fn open(&self, offset: u64, len: u64) -> OpenFuture<'_> {
        Box::pin(async move {
            let digester = self.framing.open(offset, len)?;
            let file = DigestFile {
                inner: self.file.open(0, self.framing.file_len).await?,
                digester,
            };
            let head = io::Cursor::new(self.framing.head.clone());
            let tail = io::Cursor::new(self.framing.tail.clone());
            Ok(Box::new(head.chain(file).chain(tail)) as SourceReader)
        })
    }
}

/// The file's bytes, digested as they are read.
struct DigestFile {
    inner: SourceReader,
    digester: FileDigester,
}

impl AsyncRead for DigestFile {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let max = this.digester.room(buf.remaining());
        if max == 0 {
            this.digester.update(&[]);
            return Poll::Ready(Ok(()));
        }
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(max));
        match Pin::new(&mut this.inner).poll_read(cx, &mut limited) {
            Poll::Ready(Ok(())) => {
                let n = limited.filled().len();
                this.digester.update(limited.filled());
                buf.advance(n);
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
            framing: task.framing(file_len),
            file: BodySource::new(body),
        };
        self.run(task, &source).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cos_core::checksum::BodyDigest;
    use cos_core::post_policy::PostPolicy;
    use cos_core::{Config, Credentials};
    use std::time::{Duration, SystemTime};

    fn config() -> Config {
        let credentials = Credentials::new("AKID", "KEY");
        Config::new("examplebucket-1250000000", "ap-guangzhou", credentials).unwrap()
    }

    fn form() -> PostForm {
        let now = SystemTime::now();
        let policy = PostPolicy::new(now + Duration::from_secs(60)).key("a.txt");
        policy.sign(&config(), now).unwrap()
    }

    #[tokio::test]
    async fn framed_source_serves_head_file_tail() {
        let post = PostObject::new(form(), boundary(), "a.txt", "text/plain").unwrap();
        let task = PostObjectTask::new(post, 5, &config()).unwrap();
        let f = Framed {
            framing: task.framing(5),
            file: BodySource::new(Body::from("hello")),
        };
        let total = f.framing.len();
        assert!(f.open(0, 5).await.is_err());
        let mut out = Vec::new();
        let mut r = f.open(0, total).await.unwrap();
        r.read_to_end(&mut out).await.unwrap();
        let head = &f.framing.head[..];
        assert_eq!(&out[..head.len()], head);
        assert_eq!(&out[head.len()..head.len() + 5], b"hello");
        assert_eq!(&out[head.len() + 5..], &f.framing.tail[..]);
        assert_eq!(task.file_digest().take(), Some(BodyDigest::of(b"hello")));
    }

    #[test]
    fn boundaries_differ() {
        assert_ne!(boundary(), boundary());
        assert!(boundary().len() <= 70);
    }
}
