//! The only part of the simulator that knows the core's transfer task: it starts an [`UploadTask`] (the
//! whole file upload, checkpoint loading and cleanup included), turns its outputs into [`Out`]s and
//! performs the local I/O it asks for, as a real driver would. Switching the simulator to another core
//! task means rewriting this module only.

use std::time::Instant;

use bytes::Bytes;
use cos_core::checksum::{BodyDigest, SentDigest};
use cos_core::error::TransportError;
use cos_core::task::{
    Command, Event, Input, IoRequest, IoResult, Now, Output, RequestBody, RequestId, Task,
};
use cos_core::upload::{SourceFingerprint, UploadOptions, UploadOutcome, UploadTask};
use cos_core::{Config, Error};

/// How a run starts.
#[derive(Clone, Debug)]
pub enum Start {
    /// A new upload (no checkpoint file, no search).
    Fresh,
    /// From the checkpoint bytes the last run stored.
    Checkpoint(Vec<u8>),
    /// No checkpoint: continue the newest unfinished upload of the key, if any.
    FindUnfinished,
    /// The source as a stream of unknown length, read from its start ([`UploadTask::stream`]: no
    /// checkpoint, no search; a stream that fails is aborted).
    Stream,
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
    /// Store these checkpoint bytes atomically (answered "done" already).
    StoreCheckpoint(Vec<u8>),
    /// Remove the checkpoint (answered "done" already).
    RemoveCheckpoint,
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
    task: UploadTask,
    /// What the checkpoint file holds for this run's first read.
    checkpoint: Option<Vec<u8>>,
    /// A stream upload: the bytes of the source read so far.
    stream_read: Option<u64>,
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
        let (checkpoint, search) = match start {
            Start::Checkpoint(bytes) => (Some(bytes), false),
            Start::FindUnfinished => (None, true),
            Start::Fresh => (None, false),
            Start::Stream => {
                let options = UploadOptions {
                    part_size: Some(part_size),
                    concurrency: max_in_flight,
                    ..UploadOptions::default()
                };
                let task = UploadTask::stream(config, key, &options)?;
                let stream_read = Some(0);
                return Ok(Upload {
                    task,
                    checkpoint: None,
                    stream_read,
                });
            }
        };
        let options = UploadOptions {
            threshold: 0, // every simulated source is a multipart upload
            part_size: Some(part_size),
            concurrency: max_in_flight,
            // The file name means nothing here: the simulator answers the task's checkpoint I/O itself.
            checkpoint: Some("sim.cos-checkpoint".into()),
            resume_unfinished: search,
            ..UploadOptions::default()
        };
        let task = UploadTask::file(config, key, &options, fingerprint, "sim")?;
        Ok(Upload {
            task,
            checkpoint,
            stream_read: None,
        })
    }

    /// A stream upload: how many bytes of the stream the task has read.
    pub fn stream_read(&self) -> Option<u64> {
        self.stream_read
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
                Output::Io(io) => {
                    let (result, out) = match io.request {
                        IoRequest::LoadCheckpoint => (
                            IoResult::Data(self.checkpoint.clone().map(Bytes::from)),
                            None,
                        ),
                        IoRequest::StoreCheckpoint(bytes) => {
                            self.checkpoint = Some(bytes.to_vec());
                            (IoResult::Done, Some(Out::StoreCheckpoint(bytes.to_vec())))
                        }
                        IoRequest::RemoveCheckpoint => {
                            self.checkpoint = None;
                            (IoResult::Done, Some(Out::RemoveCheckpoint))
                        }
                        IoRequest::Digest { offset, len } => {
                            let d = (offset + len <= source.bytes.len() as u64)
                                .then(|| digest(offset, len))
                                .flatten();
                            let r =
                                d.map_or(IoResult::Failed("short source".into()), IoResult::Digest);
                            (r, None)
                        }
                        IoRequest::ReadStream { len } if self.stream_read.is_some() => {
                            let at = self.stream_read.unwrap_or(0) as usize;
                            let end = at.saturating_add(len as usize).min(source.bytes.len());
                            let bytes = source.bytes.get(at..end).unwrap_or(&[]);
                            self.stream_read = Some(end.max(at) as u64);
                            (IoResult::Data(Some(Bytes::copy_from_slice(bytes))), None)
                        }
                        other => (IoResult::Failed(format!("not simulated: {other:?}")), None),
                    };
                    self.task.handle_input(now, Input::Io { id: io.id, result });
                    if let Some(out) = out {
                        return out;
                    }
                }
                Output::Event(Event::Progress { loaded, total }) => {
                    return Out::Progress { loaded, total }
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
    pub fn pause(&mut self, now: Now) {
        self.task.handle_command(now, Command::Pause);
    }

    /// Resumes after a pause.
    pub fn resume(&mut self, now: Now) {
        self.task.handle_command(now, Command::Resume);
    }

    /// Cancels.
    pub fn cancel(&mut self, now: Now) {
        self.task.handle_command(now, Command::Cancel);
    }
}
