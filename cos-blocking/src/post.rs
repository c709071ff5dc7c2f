//! POST Object: a browser-style `multipart/form-data` upload with a signed [`PostForm`], streamed as
//! `head ++ file ++ tail` with an exact `Content-Length`; only the file bytes are digested (for the ETag
//! and CRC-64 checks). The form carries the authorisation: no `Authorization` header is sent.

use std::io::{self, Read};

use cos_core::post_policy::{
    FileDigester, PostForm, PostFraming, PostObject, PostObjectOutput, PostObjectTask,
};
use cos_core::Error;

use crate::body::{Body, BodySource, Source};
use crate::Client;

/// A random multipart boundary (the core has no randomness).
fn boundary() -> String {
    let random = crate::client::random_u64;
    PostForm::boundary((u128::from(random()) << 64) | u128::from(random()))
}

/// The framed body as a [`Source`]: `head`, the file (digested by the core's [`FileDigester`]), `tail`.
struct Framed {
    framing: PostFraming,
    file: BodySource,
}

impl Source for Framed {
    fn open(&self, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send + '_>> {
        let digester = self.framing.open(offset, len)?;
        let file = DigestFile {
            inner: self.file.open(0, self.framing.file_len)?,
            digester,
        };
        let head = io::Cursor::new(self.framing.head.clone());
        let tail = io::Cursor::new(self.framing.tail.clone());
        Ok(Box::new(head.chain(file).chain(tail)))
    }
}

/// The file's bytes, digested as they are read.
struct DigestFile<'a> {
    inner: Box<dyn Read + Send + 'a>,
    digester: FileDigester,
}

impl Read for DigestFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let max = self.digester.room(buf.len());
        let n = match max {
            0 => 0,
            max => self.inner.read(&mut buf[..max])?,
        };
        self.digester.update(&buf[..n]);
        Ok(n)
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
    /// use cos_blocking::{Client, Config, Credentials};
    /// use cos_core::post_policy::PostPolicy;
    /// let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
    /// let client = Client::new(config);
    /// let policy = PostPolicy::new(SystemTime::now() + Duration::from_secs(600)).key("notes/a.txt");
    /// let form = client.sign_post_policy(&policy)?;
    /// let out = client.post_object(&form, "hello", "a.txt", "text/plain")?;
    /// println!("{:?}", out.etag);
    /// # Ok::<(), cos_blocking::Error>(())
    /// ```
    pub fn post_object(
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
        self.run(task, &source)
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

    #[test]
    fn framed_source_serves_head_file_tail() {
        let post = PostObject::new(form(), boundary(), "a.txt", "text/plain").unwrap();
        let task = PostObjectTask::new(post, 5, &config()).unwrap();
        let f = Framed {
            framing: task.framing(5),
            file: BodySource::new(Body::from("hello")),
        };
        let total = f.framing.len();
        assert!(f.open(0, 5).is_err());
        let mut out = Vec::new();
        f.open(0, total).unwrap().read_to_end(&mut out).unwrap();
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
