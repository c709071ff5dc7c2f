//! The only part of the simulator that knows the core's transfer task: it starts a
//! [`MultipartUpload`] (fresh, from checkpoint bytes, or by searching unfinished uploads), turns its outputs
//! into [`Out`]s and answers its requests. Switching the simulator to another core task means rewriting
//! this module only.

use std::time::Instant;

use bytes::Bytes;
use cos_core::checksum::{BodyDigest, SentDigest};
use cos_core::error::TransportError;
use cos_core::task::{Event, Input, Now, Output, RequestBody, RequestId, Task};
use cos_core::upload::{
    Checkpoint, MultipartUpload, SourceFingerprint, UploadConfig, UploadOutcome,
};
use cos_core::{Config, Error};

/// How a run starts.
#[derive(Clone, Debug)]
pub enum Start {
    /// A new upload.
    Fresh,
    /// From the checkpoint bytes the last run stored.
    Checkpoint(Vec<u8>),
    /// No checkpoint: continue the newest unfinished upload of the key, if any.
    FindUnfinished,
}

/// The source as the driver sees it now.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    /// The bytes.
    pub bytes: &'a [u8],
    /// Modification time (a fingerprint input), in nanoseconds.
    pub mtime_nanos: u64,
}

/// What the task wants from the simulated driver.
#[derive(Debug)]
pub enum Out {
    /// Send this request (body read from the source, if it was a range).
    Send {
        /// The request id.
        id: RequestId,
        /// Operation name.
        op: &'static str,
        /// The request with its body.
        request: http::Request<Bytes>,
        /// The digest of a source range body, to report with its answer.
        sent: Option<SentDigest>,
    },
    /// Bytes confirmed.
    Progress {
        /// Loaded.
        loaded: u64,
        /// Total.
        total: Option<u64>,
    },
    /// Store these checkpoint bytes atomically.
    StoreCheckpoint(Vec<u8>),
    /// The task paused: nothing is in flight.
    Paused,
    /// The upload was started over (a new upload id will be used).
    Restarted,
    /// Nothing to do until an answer arrives or `until`.
    Wait(Option<Instant>),
    /// The run ended.
    Done(Result<UploadOutcome, Error>),
}

/// One run of the transfer task.
#[derive(Debug)]
pub struct Upload {
    task: MultipartUpload,
}

impl Upload {
    /// Starts a run uploading `source` to `key`.
    pub fn start(
        config: Config,
        key: &str,
        source: Source<'_>,
        part_size: u64,
        max_in_flight: usize,
        start: Start,
    ) -> Result<Upload, Error> {
        let len = source.bytes.len() as u64;
        let fingerprint = SourceFingerprint {
            size: len,
            mtime_nanos: Some(source.mtime_nanos as i64),
        };
        let upload = UploadConfig {
            part_size: Some(part_size),
            max_in_flight,
            ..UploadConfig::default()
        };
        let task = match start {
            Start::Checkpoint(bytes) => {
                let cp: Checkpoint = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::from(cos_core::error::InvalidInput::Checkpoint(e.to_string()))
                })?;
                MultipartUpload::resume(config, cp, fingerprint, upload)?
            }
            Start::FindUnfinished => MultipartUpload::find_unfinished(config, key, len, upload)?
                .source_fingerprint(fingerprint)?,
            Start::Fresh => {
                MultipartUpload::new(config, key, len, upload)?.source_fingerprint(fingerprint)?
            }
        };
        Ok(Upload { task })
    }

    /// The next thing to do. Digests the task asks for are computed from `source` here.
    pub fn poll(
        &mut self,
        now: Now,
        source: Source<'_>,
        digest: &mut dyn FnMut(u64, u64) -> Option<SentDigest>,
    ) -> Out {
        loop {
            match self.task.poll_output(now) {
                Output::Transmit(t) => {
                    let (mut parts, body) = t.request.into_parts();
                    let (body, sent) = match body {
                        RequestBody::Empty => (Bytes::new(), None),
                        RequestBody::Bytes(b) => (b, None),
                        RequestBody::Source { offset, len, md5 } => {
                            let end = offset.saturating_add(len);
                            if end > source.bytes.len() as u64 {
                                // A short source: the body cannot be sent.
                                let bytes = source.bytes.get(offset as usize..).unwrap_or(&[]);
                                let d = BodyDigest::of_with_md5(bytes, md5);
                                (Bytes::copy_from_slice(bytes), Some(d))
                            } else {
                                let d = digest(offset, len).map(|mut d| {
                                    if !md5 {
                                        d.md5 = None;
                                    }
                                    d
                                });
                                (
                                    Bytes::copy_from_slice(
                                        &source.bytes[offset as usize..end as usize],
                                    ),
                                    d,
                                )
                            }
                        }
                    };
                    if !parts.headers.contains_key(http::header::CONTENT_LENGTH) {
                        parts
                            .headers
                            .insert(http::header::CONTENT_LENGTH, body.len().into());
                    }
                    return Out::Send {
                        id: t.id,
                        op: t.operation,
                        request: http::Request::from_parts(parts, body),
                        sent,
                    };
                }
                Output::Event(Event::Progress { loaded, total }) => {
                    return Out::Progress { loaded, total }
                }
                Output::Event(Event::CheckpointChanged) => {
                    if let Some(cp) = self.task.checkpoint() {
                        let bytes = serde_json::to_vec(&cp).expect("a checkpoint serializes");
                        return Out::StoreCheckpoint(bytes);
                    }
                }
                Output::Event(Event::PartDigestNeeded { part, offset, len }) => {
                    let d = if offset + len <= source.bytes.len() as u64 {
                        digest(offset, len)
                    } else {
                        None
                    };
                    self.task.part_digest(part, d);
                }
                Output::Event(Event::Paused) => return Out::Paused,
                Output::Event(Event::Restarted { .. }) => return Out::Restarted,
                Output::Event(_) => {}
                Output::Wait { until } => return Out::Wait(until),
                Output::Done(r) => return Out::Done(r),
            }
        }
    }

    /// Answers request `id`.
    pub fn answer(
        &mut self,
        now: Now,
        id: RequestId,
        answer: Result<http::Response<Bytes>, TransportError>,
        sent: Option<SentDigest>,
    ) {
        let input = match answer {
            Ok(response) => Input::Response { id, response, sent },
            Err(error) => Input::Failed { id, error },
        };
        self.task.handle_input(now, input);
    }

    /// Pauses.
    pub fn pause(&mut self) {
        self.task.pause();
    }

    /// Resumes after a pause.
    pub fn resume(&mut self) {
        self.task.resume_sending();
    }

    /// Cancels.
    pub fn cancel(&mut self) {
        self.task.cancel();
    }

    /// Progress total of the plan.
    pub fn total(&self) -> u64 {
        self.task.plan().map_or(0, |p| p.total_len())
    }
}
