//! [`PostObjectTask`]: one POST Object upload as a [`Task`], with retries.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;

use crate::checksum::{BodyDigest, SentDigest};
use crate::config::Config;
use crate::error::Error;
use crate::retry::{RetryDecision, RetryPolicy, Rng};
use crate::task::{Event, Input, Now, Output, RequestBody, RequestId, Task, Transmit};

use super::{PostObject, PostObjectOutput};

/// Where the driver reports the digest of the file bytes of a POST body (shared with the task).
///
/// The request body of a [`PostObjectTask`] is `head ++ file ++ tail`, but the ETag and CRC-64 COS answers
/// with are those of the file alone: the driver digests only the file bytes while streaming them and
/// [`set`](FileDigest::set)s the result once the last file byte has been read. Each attempt reads the
/// file again; [`clear`](FileDigest::clear) when an attempt starts.
#[derive(Clone, Debug, Default)]
pub struct FileDigest(Arc<Mutex<Option<SentDigest>>>);

impl FileDigest {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<SentDigest>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reports the digest of the whole file as it was sent.
    pub fn set(&self, digest: SentDigest) {
        *self.lock() = Some(digest);
    }

    /// Forgets a digest (a new attempt starts).
    pub fn clear(&self) {
        *self.lock() = None;
    }

    /// Takes the reported digest, if any.
    pub fn take(&self) -> Option<SentDigest> {
        self.lock().take()
    }
}

/// The framed body of a POST upload as a driver's source serves it: [`head`](Self::head), the file
/// (`file_len` bytes, digested with a [`FileDigester`] from [`open`](Self::open)), [`tail`](Self::tail).
#[derive(Clone, Debug)]
pub struct PostFraming {
    /// The form fields and the file part's header.
    pub head: Bytes,
    /// The closing boundary.
    pub tail: Bytes,
    /// The file's length.
    pub file_len: u64,
    digest: FileDigest,
}

impl PostFraming {
    /// The whole framed body's length.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.file_len + self.tail.len() as u64
    }

    /// True when the body has no byte at all (never: the framing has bytes).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A new attempt opens the body at `offset` for `len` bytes: it must be the whole body (a POST body is
    /// never sent in ranges). Forgets the last attempt's digest and returns the digester of this one.
    pub fn open(&self, offset: u64, len: u64) -> std::io::Result<FileDigester> {
        let total = self.len();
        if offset != 0 || len != total {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a POST body is sent whole ({total} bytes), not {offset}+{len}"),
            ));
        }
        self.digest.clear();
        Ok(FileDigester {
            digest: Some(BodyDigest::new()),
            remaining: self.file_len,
            slot: self.digest.clone(),
        })
    }
}

/// Digests the file bytes of one attempt as they are read and reports the digest once the last one has
/// been read (a file that ends short reports none: the transport notices the short body).
#[derive(Debug)]
pub struct FileDigester {
    digest: Option<BodyDigest>,
    remaining: u64,
    slot: FileDigest,
}

impl FileDigester {
    /// How many of `n` bytes to read from the file: never past its end.
    pub fn room(&self, n: usize) -> usize {
        usize::try_from(self.remaining).map_or(n, |r| n.min(r))
    }

    /// Takes the file bytes just read (none at the file's end); reports the digest when the last byte
    /// has been read.
    pub fn update(&mut self, bytes: &[u8]) {
        if let Some(d) = &mut self.digest {
            d.update(bytes);
        }
        self.remaining = self.remaining.saturating_sub(bytes.len() as u64);
        if self.remaining == 0 {
            if let Some(d) = self.digest.take() {
                self.slot.set(d.finish());
            }
        }
    }
}

/// One POST Object upload: emits the form request, interprets the answer with
/// [`PostObject::parse_response`], and retries failures the config's [`RetryPolicy`] retries (when the
/// body can be sent again).
///
/// Driver contract: the [`RequestBody::Source`] of the emitted request covers the whole framed body,
/// `offset` 0 and [`PostObject::content_length`] bytes; the driver's source yields
/// [`PostObject::head`], the file, then [`PostObject::tail`], and reports the digest of the file bytes
/// alone through [`PostObjectTask::file_digest`] (the `sent` digest of the [`Input`] is ignored). The
/// request carries no `Authorization`: the form is the authorisation, so
/// [`Task::set_credentials`] does nothing.
///
/// ```
/// use std::time::{Duration, Instant, SystemTime};
/// use cos_core::post_policy::{PostObject, PostObjectTask, PostPolicy};
/// use cos_core::task::{Now, Output, RequestBody, Task};
/// use cos_core::{Config, Credentials};
/// let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
/// let now = Now { instant: Instant::now(), system: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) };
/// let form = PostPolicy::new(now.system + Duration::from_secs(60)).key("a.txt").sign(&config, now.system)?;
/// let post = PostObject::new(form, "boundary-1", "a.txt", "text/plain")?;
/// let len = post.content_length(5);
/// let mut task = PostObjectTask::new(post, 5, &config)?;
/// let Output::Transmit(t) = task.poll_output(now) else { panic!() };
/// assert_eq!(*t.request.body(), RequestBody::Source { offset: 0, len, md5: true });
/// assert!(t.request.headers().get("authorization").is_none());
/// # Ok::<(), cos_core::Error>(())
/// ```
#[derive(Debug)]
pub struct PostObjectTask {
    post: PostObject,
    request: http::Request<()>,
    content_length: u64,
    retry: RetryPolicy,
    rng: Rng,
    replayable: bool,
    attempt: u32,
    in_flight: Option<RequestId>,
    not_before: Option<Instant>,
    event: Option<Event>,
    done: Option<Result<PostObjectOutput, Error>>,
    finished: bool,
    digest: FileDigest,
}

impl PostObjectTask {
    /// The upload of a file of `file_len` bytes, retried by `config.retry`. Errors as
    /// [`PostObject::request`] (too large, outside the policy's `content-length-range`).
    pub fn new(post: PostObject, file_len: u64, config: &Config) -> Result<Self, Error> {
        let request = post.request(file_len)?;
        Ok(PostObjectTask {
            content_length: post.content_length(file_len),
            post,
            request,
            retry: config.retry.clone(),
            rng: Rng::new(config.retry.seed ^ 0x706f_7374),
            replayable: true,
            attempt: 0,
            in_flight: None,
            not_before: None,
            event: None,
            done: None,
            finished: false,
            digest: FileDigest::default(),
        })
    }

    /// The body cannot be sent twice (a reader): no retries.
    pub fn not_replayable(mut self) -> Self {
        self.replayable = false;
        self
    }

    /// The framing and form.
    pub fn post(&self) -> &PostObject {
        &self.post
    }

    /// The framed body of a file of `file_len` bytes, for the driver's source.
    pub fn framing(&self, file_len: u64) -> PostFraming {
        PostFraming {
            head: self.post.head().clone(),
            tail: self.post.tail(),
            file_len,
            digest: self.digest.clone(),
        }
    }

    /// The handle through which the driver reports the file bytes' digest.
    pub fn file_digest(&self) -> FileDigest {
        self.digest.clone()
    }
}

impl Task for PostObjectTask {
    type Output = PostObjectOutput;

    fn poll_output(&mut self, now: Now) -> Output<PostObjectOutput> {
        if let Some(e) = self.event.take() {
            return Output::Event(e);
        }
        if let Some(done) = self.done.take() {
            self.finished = true;
            return Output::Done(done);
        }
        if self.finished || self.in_flight.is_some() {
            return Output::Wait { until: None };
        }
        if let Some(t) = self.not_before {
            if now.instant < t {
                return Output::Wait { until: Some(t) };
            }
            self.not_before = None;
        }
        self.attempt += 1;
        let id = RequestId(u64::from(self.attempt));
        self.in_flight = Some(id);
        let mut request = http::Request::new(RequestBody::Source {
            offset: 0,
            len: self.content_length,
            md5: true,
        });
        *request.method_mut() = self.request.method().clone();
        *request.uri_mut() = self.request.uri().clone();
        *request.headers_mut() = self.request.headers().clone();
        Output::Transmit(Transmit {
            id,
            operation: "PostObject",
            attempt: self.attempt,
            request,
        })
    }

    fn handle_input(&mut self, now: Now, input: Input) {
        if self.in_flight != Some(input.id()) {
            return;
        }
        self.in_flight = None;
        let file = self.digest.take();
        let error = match input {
            // Never emitted Io, so any Io answer is foreign.
            Input::Io { .. } => return,
            // `sent` covers the whole framed body; the ETag is the file's MD5.
            Input::Response { response, .. } => {
                match self.post.parse_response(&response, file.as_ref()) {
                    Ok(out) => {
                        self.done = Some(Ok(out));
                        return;
                    }
                    Err(e) => e,
                }
            }
            Input::Failed { error, .. } => Error::Transport(error),
        };
        let decision = if self.replayable {
            self.retry.decide(&error, self.attempt, &mut self.rng)
        } else {
            RetryDecision::GiveUp
        };
        match decision {
            RetryDecision::RetryAfter(delay) => {
                self.not_before = Some(now.instant + delay);
                self.event = Some(Event::RetryScheduled {
                    operation: "PostObject",
                    part: None,
                    attempt: self.attempt + 1,
                    delay,
                    error,
                });
            }
            RetryDecision::GiveUp => self.done = Some(Err(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::BodyDigest;
    use crate::post_policy::PostPolicy;
    use crate::Credentials;
    use bytes::Bytes;
    use std::time::{Duration, SystemTime};

    #[allow(clippy::disallowed_methods)] // the origin of virtual time
    fn start() -> Now {
        Now {
            instant: Instant::now(),
            system: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }

    fn task(now: Now) -> PostObjectTask {
        let config = Config::new(
            "b-1250000000",
            "ap-guangzhou",
            Credentials::new("id", "key"),
        )
        .unwrap();
        let form = PostPolicy::new(now.system + Duration::from_secs(60))
            .key("a.txt")
            .sign(&config, now.system)
            .unwrap();
        let post = PostObject::new(form, "b-1", "a.txt", "text/plain").unwrap();
        PostObjectTask::new(post, 5, &config).unwrap()
    }

    fn answer(status: u16, etag: &str) -> http::Response<Bytes> {
        http::Response::builder()
            .status(status)
            .header("etag", etag)
            .body(Bytes::new())
            .unwrap()
    }

    #[test]
    fn retries_a_503_then_checks_the_file_digest() {
        let now = start();
        let mut t = task(now);
        let digest = t.file_digest();
        let Output::Transmit(x) = t.poll_output(now) else {
            panic!()
        };
        assert!(matches!(t.poll_output(now), Output::Wait { until: None }));
        let response = answer(503, "");
        t.handle_input(
            now,
            Input::Response {
                id: x.id,
                response,
                sent: None,
            },
        );
        let Output::Event(Event::RetryScheduled {
            attempt: 2, delay, ..
        }) = t.poll_output(now)
        else {
            panic!()
        };
        assert!(matches!(
            t.poll_output(now),
            Output::Wait { until: Some(_) }
        ));
        let later = now.advance(delay);
        let Output::Transmit(x) = t.poll_output(later) else {
            panic!()
        };
        assert_eq!(x.attempt, 2);
        // The file's digest, not the framed body's, is compared with the ETag.
        let file = BodyDigest::of(b"hello");
        digest.set(file);
        let response = answer(204, &format!("\"{}\"", file.md5_hex().unwrap()));
        let whole = BodyDigest::of(b"head hello tail");
        t.handle_input(
            later,
            Input::Response {
                id: x.id,
                response,
                sent: Some(whole),
            },
        );
        let Output::Done(Ok(out)) = t.poll_output(later) else {
            panic!()
        };
        assert_eq!(out.status, 204);
    }

    #[test]
    fn a_wrong_etag_is_an_integrity_error_and_readers_are_not_retried() {
        let now = start();
        let mut t = task(now);
        let digest = t.file_digest();
        let Output::Transmit(x) = t.poll_output(now) else {
            panic!()
        };
        digest.set(BodyDigest::of(b"hello"));
        let response = answer(204, "\"00000000000000000000000000000000\"");
        t.handle_input(
            now,
            Input::Response {
                id: x.id,
                response,
                sent: None,
            },
        );
        assert!(matches!(
            t.poll_output(now),
            Output::Done(Err(Error::Integrity(_)))
        ));

        let mut t = task(now).not_replayable();
        let Output::Transmit(x) = t.poll_output(now) else {
            panic!()
        };
        let response = answer(503, "");
        t.handle_input(
            now,
            Input::Response {
                id: x.id,
                response,
                sent: None,
            },
        );
        assert!(matches!(t.poll_output(now), Output::Done(Err(_))));
    }
}

#[cfg(test)]
mod framing_tests {
    use super::*;

    fn framing() -> PostFraming {
        PostFraming {
            head: Bytes::from_static(b"HEAD"),
            tail: Bytes::from_static(b"TAIL"),
            file_len: 5,
            digest: FileDigest::default(),
        }
    }

    #[test]
    fn the_body_is_opened_whole_and_only_the_file_is_digested() {
        let f = framing();
        assert_eq!(f.len(), 13);
        assert!(!f.is_empty());
        let nothing = PostFraming {
            head: Bytes::new(),
            tail: Bytes::new(),
            file_len: 0,
            digest: FileDigest::default(),
        };
        assert!(nothing.is_empty());
        assert!(f.open(0, 5).is_err(), "never in ranges");
        assert!(f.open(1, 12).is_err());
        let mut d = f.open(0, 13).unwrap();
        assert_eq!(d.room(64), 5, "never past the file's end");
        d.update(b"hel");
        assert_eq!(f.digest.take(), None, "no digest before the last byte");
        assert_eq!(d.room(64), 2);
        d.update(b"lo");
        assert_eq!(d.room(64), 0);
        d.update(b"");
        assert_eq!(f.digest.take(), Some(BodyDigest::of(b"hello")));

        // A new attempt forgets the last one's digest; a file that ends short reports none.
        f.digest.set(BodyDigest::of(b"old"));
        let mut d = f.open(0, 13).unwrap();
        assert_eq!(f.digest.take(), None);
        d.update(b"he");
        d.update(b"");
        assert_eq!(f.digest.take(), None);
    }
}
