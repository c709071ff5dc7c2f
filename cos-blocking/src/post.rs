//! POST Object: a browser-style `multipart/form-data` upload with a signed [`PostForm`], streamed as
//! `head ++ file ++ tail` with an exact `Content-Length`; only the file bytes are digested (for the ETag
//! and CRC-64 checks). The form carries the authorisation: no `Authorization` header is sent.

use std::io::{self, Read};

use bytes::Bytes;
use cos_core::checksum::BodyDigest;
use cos_core::post_policy::{FileDigest, PostForm, PostObject, PostObjectOutput, PostObjectTask};
use cos_core::Error;

use crate::body::{Body, BodySource, Source};
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

/// The framed body as a [`Source`]: `head`, the file (digested into `slot` once read to its end), `tail`.
struct Framed {
    head: Bytes,
    tail: Bytes,
    file: BodySource,
    file_len: u64,
    slot: FileDigest,
}

impl Source for Framed {
    fn open(&self, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send + '_>> {
        let total = self.head.len() as u64 + self.file_len + self.tail.len() as u64;
        if offset != 0 || len != total {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a POST body is sent whole ({total} bytes), not {offset}+{len}"),
            ));
        }
        self.slot.clear();
        let file = DigestFile {
            inner: self.file.open(0, self.file_len)?,
            digest: Some(BodyDigest::new()),
            remaining: self.file_len,
            slot: self.slot.clone(),
        };
        let head = io::Cursor::new(self.head.clone());
        let tail = io::Cursor::new(self.tail.clone());
        Ok(Box::new(head.chain(file).chain(tail)))
    }
}

/// The file's bytes, digested; the digest is published when the last byte has been read.
struct DigestFile<'a> {
    inner: Box<dyn Read + Send + 'a>,
    digest: Option<BodyDigest>,
    remaining: u64,
    slot: FileDigest,
}

impl DigestFile<'_> {
    fn publish(&mut self) {
        if self.remaining == 0 {
            if let Some(d) = self.digest.take() {
                self.slot.set(d.finish());
            }
        }
    }
}

impl Read for DigestFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            self.publish();
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            // The transport notices the short body; no digest is published.
            return Ok(0);
        }
        if let Some(d) = &mut self.digest {
            d.update(&buf[..n]);
        }
        self.remaining -= n as u64;
        self.publish();
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
            head: task.post().head().clone(),
            tail: task.post().tail(),
            file: BodySource::new(body),
            file_len,
            slot: task.file_digest(),
        };
        self.run(task, &source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_source_digests_only_the_file() {
        let slot = FileDigest::default();
        let f = Framed {
            head: Bytes::from_static(b"HEAD"),
            tail: Bytes::from_static(b"TAIL"),
            file: BodySource::new(Body::from("hello")),
            file_len: 5,
            slot: slot.clone(),
        };
        assert!(f.open(0, 5).is_err());
        let mut out = Vec::new();
        f.open(0, 13).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, b"HEADhelloTAIL");
        assert_eq!(slot.take(), Some(BodyDigest::of(b"hello")));
        // A second attempt reads (and digests) again.
        let mut r = f.open(0, 13).unwrap();
        let mut four = [0u8; 4];
        r.read_exact(&mut four).unwrap();
        assert_eq!(slot.take(), None, "no digest before the file is read");
        r.read_to_end(&mut out).unwrap();
        drop(r);
        assert_eq!(slot.take(), Some(BodyDigest::of(b"hello")));
    }

    #[test]
    fn boundaries_differ() {
        assert_ne!(boundary(), boundary());
        assert!(boundary().len() <= 70);
    }
}
