//! [`MultipartCopy`]: a server-side copy of an object of any size, decided here.
//!
//! The task HEADs the source (size, ETag, CRC-64), then copies it with one PUT Object - Copy at or below
//! [`CopyOptions::threshold`], or else with Initiate Multipart Upload, parallel Upload Part - Copy ranges
//! (each with `x-cos-copy-source-If-Match` on the source's ETag, so a source changed meanwhile fails the
//! copy instead of mixing two versions) and Complete. A failed multipart copy aborts its upload. The
//! result's CRC-64 is compared with the source's when both are known. Every request is retried as the
//! [`RetryPolicy`](crate::retry::RetryPolicy) says.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use crate::checksum::Crc64;
use crate::config::{validate_key, Bucket, Config, Region};
use crate::credentials::Credentials;
use crate::error::{Error, IntegrityError, InvalidInput};
use crate::ops::{
    AbortMultipartUpload, CompleteMultipartUpload, CompletedPart, CopyObject, CopySource,
    HeadObject, InitiateMultipartUpload, MetadataDirective, ObjectInfo, UploadPartCopy,
    MAX_COPY_OBJECT_SIZE,
};
use crate::task::{Command, Event, Input, Now, OneShot, Output, RequestId, Task, Transmit};

/// Smallest part of a multipart copy (COS's minimum for every part but the last): 1 MiB.
pub const MIN_COPY_PART_SIZE: u64 = 1024 * 1024;
/// Largest part of a multipart copy: 5 GiB.
pub const MAX_COPY_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Most parts of a multipart upload.
pub const MAX_COPY_PARTS: u64 = 10_000;

/// How [`MultipartCopy`] copies.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyOptions {
    /// Sources of at most this many bytes are copied with one PUT Object - Copy; larger ones part by part.
    /// Default and maximum: 5 GiB.
    pub threshold: u64,
    /// Bytes per Upload Part - Copy (1 MiB to 5 GiB; grown when the source would need more than 10,000
    /// parts). Default 64 MiB.
    pub part_size: u64,
    /// Parts copied at the same time (at least 1). Default 8.
    pub concurrency: usize,
    /// Metadata of the destination: [`MetadataDirective::Copy`] (default) keeps the source's content type
    /// and `x-cos-meta-*`; `Replaced` gives the destination none.
    pub metadata_directive: MetadataDirective,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            threshold: MAX_COPY_OBJECT_SIZE,
            part_size: 64 * 1024 * 1024,
            concurrency: 8,
            metadata_directive: MetadataDirective::Copy,
        }
    }
}

impl CopyOptions {
    /// Sets [`threshold`](Self::threshold).
    pub fn threshold(mut self, bytes: u64) -> Self {
        self.threshold = bytes;
        self
    }

    /// Sets [`part_size`](Self::part_size).
    pub fn part_size(mut self, bytes: u64) -> Self {
        self.part_size = bytes;
        self
    }

    /// Sets [`concurrency`](Self::concurrency).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Sets [`metadata_directive`](Self::metadata_directive).
    pub fn metadata_directive(mut self, d: MetadataDirective) -> Self {
        self.metadata_directive = d;
        self
    }

    fn validate(&self) -> Result<(), InvalidInput> {
        if self.threshold > MAX_COPY_OBJECT_SIZE {
            return Err(InvalidInput::Parameter {
                name: "threshold",
                reason: format!(
                    "{} is above the 5 GiB one PUT Object - Copy can copy",
                    self.threshold
                ),
            });
        }
        if !(MIN_COPY_PART_SIZE..=MAX_COPY_PART_SIZE).contains(&self.part_size) {
            return Err(InvalidInput::Size {
                what: "copy part size",
                size: self.part_size,
                limit: "1 MiB to 5 GiB",
            });
        }
        if self.concurrency == 0 {
            return Err(InvalidInput::Parameter {
                name: "concurrency",
                reason: "at least one part must be copied at a time".into(),
            });
        }
        Ok(())
    }
}

/// What a finished copy reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyOutcome {
    /// ETag of the new object.
    pub etag: String,
    /// Size of the object copied.
    pub size: u64,
    /// Parts copied: 0 for a single PUT Object - Copy.
    pub parts: u32,
    /// CRC-64 of the new object, when COS reported it (equal to the source's when both are known).
    pub crc64: Option<u64>,
    /// `x-cos-version-id` of the new object.
    pub version_id: Option<String>,
}

/// The byte ranges (`first`, `last` inclusive) a multipart copy of `size` bytes copies with parts of
/// `part_size` bytes, the part size grown (in whole MiB) so there are at most 10,000 of them.
///
/// ```
/// assert_eq!(cos_core::copy::plan_ranges(12, 5), vec![(0, 4), (5, 9), (10, 11)]);
/// ```
pub fn plan_ranges(size: u64, part_size: u64) -> Vec<(u64, u64)> {
    let mut part = part_size.max(1);
    if size.div_ceil(part) > MAX_COPY_PARTS {
        part = size
            .div_ceil(MAX_COPY_PARTS)
            .div_ceil(MIN_COPY_PART_SIZE)
            .saturating_mul(MIN_COPY_PART_SIZE);
    }
    (0..size.div_ceil(part))
        .map(|i| (i * part, ((i + 1) * part).min(size) - 1))
        .collect()
}

/// One request (with its retries) run inside the copy (boxed: each holds a config).
#[derive(Debug)]
enum Sub {
    Head(Box<OneShot<HeadObject>>),
    Single(Box<OneShot<CopyObject>>),
    Init(Box<OneShot<InitiateMultipartUpload>>),
    Part(usize, Box<OneShot<UploadPartCopy>>),
    Complete(Box<OneShot<CompleteMultipartUpload>>),
    Abort(Box<OneShot<AbortMultipartUpload>>),
}

/// What a [`Sub`] ended with.
enum Finished {
    Head(Result<ObjectInfo, Error>),
    Single(Result<crate::ops::CopyObjectOutput, Error>),
    Init(Result<crate::ops::InitiateMultipartUploadOutput, Error>),
    Part(usize, Result<crate::ops::CopyObjectOutput, Error>),
    Complete(Result<crate::ops::CompleteMultipartUploadOutput, Error>),
    Abort,
}

enum Step {
    Transmit(Transmit),
    Event(Event),
    Wait(Option<Instant>),
    Done(Finished),
}

fn step<T: Task>(
    t: &mut T,
    now: Now,
    done: impl FnOnce(Result<T::Output, Error>) -> Finished,
) -> Step {
    match t.poll_output(now) {
        Output::Transmit(x) => Step::Transmit(x),
        Output::Event(e) => Step::Event(e),
        Output::Wait { until } => Step::Wait(until),
        // A OneShot asks for no local I/O.
        Output::Io(_) => Step::Wait(None),
        Output::Done(r) => Step::Done(done(r)),
    }
}

impl Sub {
    fn poll(&mut self, now: Now) -> Step {
        match self {
            Sub::Head(t) => step(&mut **t, now, Finished::Head),
            Sub::Single(t) => step(&mut **t, now, Finished::Single),
            Sub::Init(t) => step(&mut **t, now, Finished::Init),
            Sub::Part(i, t) => {
                let i = *i;
                match step(&mut **t, now, |r| Finished::Part(i, r)) {
                    Step::Event(Event::RetryScheduled {
                        operation,
                        attempt,
                        delay,
                        error,
                        ..
                    }) => Step::Event(Event::RetryScheduled {
                        operation,
                        part: Some(i as u32 + 1),
                        attempt,
                        delay,
                        error,
                    }),
                    s => s,
                }
            }
            Sub::Complete(t) => step(&mut **t, now, Finished::Complete),
            Sub::Abort(t) => step(&mut **t, now, |_| Finished::Abort),
        }
    }

    fn handle_input(&mut self, now: Now, input: Input) {
        match self {
            Sub::Head(t) => t.handle_input(now, input),
            Sub::Single(t) => t.handle_input(now, input),
            Sub::Init(t) => t.handle_input(now, input),
            Sub::Part(_, t) => t.handle_input(now, input),
            Sub::Complete(t) => t.handle_input(now, input),
            Sub::Abort(t) => t.handle_input(now, input),
        }
    }

    fn set_credentials(&mut self, c: Credentials) {
        match self {
            Sub::Head(t) => t.set_credentials(c),
            Sub::Single(t) => t.set_credentials(c),
            Sub::Init(t) => t.set_credentials(c),
            Sub::Part(_, t) => t.set_credentials(c),
            Sub::Complete(t) => t.set_credentials(c),
            Sub::Abort(t) => t.set_credentials(c),
        }
    }
}

/// A server-side copy of `source` to `dest_key`, single or multipart as [`CopyOptions`] decide (see the
/// module docs). Its output is a [`CopyOutcome`].
///
/// ```
/// use cos_core::{copy::{CopyOptions, MultipartCopy}, ops::CopySource, Config, Credentials};
/// let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
/// let task = MultipartCopy::new(config, CopySource::key("big.bin"), "copy/big.bin", &CopyOptions::default())?;
/// # Ok::<(), cos_core::Error>(())
/// ```
#[derive(Debug)]
pub struct MultipartCopy {
    config: Config,
    source: CopySource,
    dest: String,
    options: CopyOptions,
    next_slot: u64,
    next_id: u64,
    subs: BTreeMap<u64, Sub>,
    routes: HashMap<RequestId, (u64, RequestId)>,
    events: VecDeque<Event>,
    // Learned from the HEAD.
    size: u64,
    etag: Option<String>,
    crc64: Option<u64>,
    // The multipart phase.
    upload_id: Option<String>,
    ranges: Vec<(u64, u64)>,
    next_part: usize,
    parts: Vec<Option<(String, Option<u64>)>>,
    loaded: u64,
    failure: Option<Error>,
    result: Option<Result<CopyOutcome, Error>>,
    finished: bool,
}

impl MultipartCopy {
    /// Prepares the copy; bad input (keys, buckets, options, a copy onto itself) fails here, before
    /// anything is sent.
    pub fn new(
        config: Config,
        source: CopySource,
        dest_key: impl Into<String>,
        options: &CopyOptions,
    ) -> Result<MultipartCopy, Error> {
        let dest = dest_key.into();
        options.validate()?;
        validate_key(&dest)?;
        source.header_value(&config)?;
        if source.is_same_object(&dest) {
            return Err(InvalidInput::Parameter {
                name: "x-cos-copy-source",
                reason: "the source is the destination".into(),
            }
            .into());
        }
        let mut task = MultipartCopy {
            config,
            source,
            dest,
            options: options.clone(),
            next_slot: 0,
            next_id: 0,
            subs: BTreeMap::new(),
            routes: HashMap::new(),
            events: VecDeque::new(),
            size: 0,
            etag: None,
            crc64: None,
            upload_id: None,
            ranges: Vec::new(),
            next_part: 0,
            parts: Vec::new(),
            loaded: 0,
            failure: None,
            result: None,
            finished: false,
        };
        let head = task.head()?;
        task.start(Sub::Head(Box::new(head)));
        Ok(task)
    }

    fn head(&self) -> Result<OneShot<HeadObject>, Error> {
        let mut config = self.config.clone();
        if let Some((bucket, region)) = self.source.source_bucket() {
            config.bucket = Bucket::new(bucket)?;
            config.region = Region::new(region)?;
        }
        let mut op = HeadObject::new(self.source.source_key());
        if let Some(v) = self.source.source_version_id() {
            op = op.version_id(v);
        }
        OneShot::new(op, config)
    }

    fn start(&mut self, sub: Sub) {
        self.subs.insert(self.next_slot, sub);
        self.next_slot += 1;
    }

    fn parts_in_flight(&self) -> usize {
        self.subs
            .values()
            .filter(|s| matches!(s, Sub::Part(..)))
            .count()
    }

    /// Stops everything and ends with `error`, aborting the upload first when there is one.
    fn fail(&mut self, error: Error) {
        if self.failure.is_some() || self.result.is_some() {
            return;
        }
        if self.upload_id.is_none() {
            let init = self.subs.iter().find_map(|(slot, s)| match s {
                Sub::Init(_) => Some(*slot),
                _ => None,
            });
            if let Some(slot) = init {
                // The upload id is still on its way: keep the Initiate, so that the upload it creates is
                // aborted once its answer names it (see `finished`).
                self.subs.retain(|s, _| *s == slot);
                self.routes.retain(|_, (s, _)| *s == slot);
                self.failure = Some(error);
                return;
            }
        }
        self.subs.clear();
        self.routes.clear();
        match self.upload_id.clone() {
            Some(id) => match OneShot::new(
                AbortMultipartUpload::new(&self.dest, id).missing_ok(),
                self.config.clone(),
            ) {
                Ok(abort) => {
                    self.failure = Some(error);
                    self.start(Sub::Abort(Box::new(abort)));
                }
                Err(_) => self.result = Some(Err(error)),
            },
            None => self.result = Some(Err(error)),
        }
    }

    fn try_start<F: FnOnce(&Self) -> Result<Sub, Error>>(&mut self, make: F) {
        match make(self) {
            Ok(sub) => self.start(sub),
            Err(e) => self.fail(e),
        }
    }

    fn finished(&mut self, f: Finished) {
        match f {
            // Failed while the Initiate was in flight (see `fail`): abort the upload it created, if any.
            Finished::Init(result) if self.failure.is_some() => {
                let error = self.failure.take().unwrap_or(Error::Cancelled);
                match result {
                    Ok(out) => {
                        self.upload_id = Some(out.upload_id);
                        self.fail(error);
                    }
                    Err(_) => self.result = Some(Err(error)),
                }
            }
            Finished::Head(Err(e))
            | Finished::Single(Err(e))
            | Finished::Init(Err(e))
            | Finished::Part(_, Err(e))
            | Finished::Complete(Err(e)) => self.fail(e),
            Finished::Abort => {
                let e = self.failure.take().unwrap_or(Error::Cancelled);
                self.result = Some(Err(e));
            }
            Finished::Head(Ok(info)) => self.headed(info),
            Finished::Single(Ok(out)) => {
                if let Err(e) = self.check_crc(out.crc64) {
                    return self.fail(e);
                }
                self.events.push_back(Event::Progress {
                    loaded: self.size,
                    total: Some(self.size),
                });
                self.result = Some(Ok(CopyOutcome {
                    etag: out.etag,
                    size: self.size,
                    parts: 0,
                    crc64: out.crc64,
                    version_id: out.version_id,
                }));
            }
            Finished::Init(Ok(out)) => {
                self.events.push_back(Event::Initiated {
                    upload_id: out.upload_id.clone(),
                });
                self.upload_id = Some(out.upload_id);
            }
            Finished::Part(i, Ok(out)) => {
                let (first, last) = self.ranges[i];
                let len = last - first + 1;
                self.loaded += len;
                self.events.push_back(Event::PartCompleted {
                    part: i as u32 + 1,
                    etag: out.etag.clone(),
                    len,
                });
                self.events.push_back(Event::Progress {
                    loaded: self.loaded,
                    total: Some(self.size),
                });
                self.parts[i] = Some((out.etag, out.crc64));
                if self.parts.iter().all(Option::is_some) {
                    self.complete();
                }
            }
            Finished::Complete(Ok(out)) => {
                if let Err(e) = self.check_crc(out.crc64) {
                    // The object is in place: there is no upload left to abort.
                    self.result = Some(Err(e));
                    return;
                }
                self.result = Some(Ok(CopyOutcome {
                    etag: out.etag,
                    size: self.size,
                    parts: self.ranges.len() as u32,
                    crc64: out.crc64,
                    version_id: out.version_id,
                }));
            }
        }
    }

    fn check_crc(&self, actual: Option<u64>) -> Result<(), Error> {
        match (self.crc64, actual) {
            (Some(expected), Some(actual)) if expected != actual => {
                Err(Error::Integrity(IntegrityError::Crc64 {
                    part: None,
                    expected,
                    actual,
                }))
            }
            _ => Ok(()),
        }
    }

    fn headed(&mut self, info: ObjectInfo) {
        self.size = info.content_length;
        self.etag = info.etag.clone().filter(|e| !e.is_empty());
        self.crc64 = info.crc64;
        let directive = self.options.metadata_directive;
        if self.size <= self.options.threshold {
            return self.try_start(|s| {
                let mut op =
                    CopyObject::new(&s.dest, s.source.clone()).metadata_directive(directive);
                if let Some(etag) = &s.etag {
                    op = op.source_if_match(etag);
                }
                Ok(Sub::Single(Box::new(OneShot::new(op, s.config.clone())?)))
            });
        }
        let Some(_) = &self.etag else {
            return self.fail(Error::Source(
                "the copy source has no ETag: a change during a multipart copy could not be detected"
                    .into(),
            ));
        };
        self.ranges = plan_ranges(self.size, self.options.part_size);
        if self
            .ranges
            .iter()
            .any(|(a, b)| b - a + 1 > MAX_COPY_PART_SIZE)
        {
            return self.fail(
                InvalidInput::Size {
                    what: "copy source",
                    size: self.size,
                    limit: "at most 10,000 parts of 5 GiB",
                }
                .into(),
            );
        }
        self.parts = vec![None; self.ranges.len()];
        self.try_start(|s| {
            let mut op = InitiateMultipartUpload::new(&s.dest);
            if directive == MetadataDirective::Copy {
                if let Some(t) = &info.content_type {
                    op = op.content_type(t);
                }
                if let Some(v) = &info.cache_control {
                    op = op.cache_control(v);
                }
                if let Some(v) = &info.content_disposition {
                    op = op.content_disposition(v);
                }
                if let Some(v) = &info.content_encoding {
                    op = op.content_encoding(v);
                }
                if let Some(v) = &info.expires {
                    op = op.expires(v);
                }
                for (k, v) in &info.metadata {
                    op = op.metadata(k, v);
                }
            }
            Ok(Sub::Init(Box::new(OneShot::new(op, s.config.clone())?)))
        });
    }

    /// Starts parts up to the concurrency asked.
    fn start_parts(&mut self) {
        let Some(upload_id) = self.upload_id.clone() else {
            return;
        };
        while self.failure.is_none()
            && self.result.is_none()
            && self.next_part < self.ranges.len()
            && self.parts_in_flight() < self.options.concurrency
        {
            let i = self.next_part;
            self.next_part += 1;
            let (first, last) = self.ranges[i];
            let etag = self.etag.clone().unwrap_or_default();
            let upload_id = upload_id.clone();
            self.try_start(|s| {
                let op = UploadPartCopy::new(&s.dest, upload_id, i as u32 + 1, s.source.clone())
                    .range(first, last)
                    .source_if_match(etag);
                Ok(Sub::Part(i, Box::new(OneShot::new(op, s.config.clone())?)))
            });
        }
    }

    fn complete(&mut self) {
        // Every part reported its CRC-64: their combination must be the source's before anything lands.
        if let Some(expected) = self.crc64 {
            let mut combined = Some(0u64);
            for (p, (a, b)) in self.parts.iter().zip(&self.ranges) {
                combined = match (combined, p.as_ref().and_then(|p| p.1)) {
                    (Some(c), Some(crc)) => Some(Crc64::combine(c, crc, b - a + 1)),
                    _ => None,
                };
            }
            if let Some(actual) = combined.filter(|c| *c != expected) {
                return self.fail(Error::Integrity(IntegrityError::Crc64 {
                    part: None,
                    expected,
                    actual,
                }));
            }
        }
        let parts = self
            .parts
            .iter()
            .enumerate()
            .map(|(i, p)| CompletedPart {
                part_number: i as u32 + 1,
                etag: p.as_ref().map(|p| p.0.clone()).unwrap_or_default(),
            })
            .collect();
        let upload_id = self.upload_id.clone().unwrap_or_default();
        self.try_start(|s| {
            let op = CompleteMultipartUpload::new(&s.dest, upload_id, parts);
            Ok(Sub::Complete(Box::new(OneShot::new(op, s.config.clone())?)))
        });
    }
}

impl Task for MultipartCopy {
    type Output = CopyOutcome;

    fn poll_output(&mut self, now: Now) -> Output<CopyOutcome> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Output::Event(e);
            }
            if let Some(r) = self.result.take() {
                self.finished = true;
                self.subs.clear();
                return Output::Done(r);
            }
            if self.finished {
                return Output::Wait { until: None };
            }
            self.start_parts();
            let mut until: Option<Instant> = None;
            let mut progressed = false;
            let slots: Vec<u64> = self.subs.keys().copied().collect();
            for slot in slots {
                let Some(sub) = self.subs.get_mut(&slot) else {
                    continue;
                };
                match sub.poll(now) {
                    Step::Transmit(t) => {
                        let id = RequestId(self.next_id);
                        self.next_id += 1;
                        self.routes.insert(id, (slot, t.id));
                        return Output::Transmit(Transmit { id, ..t });
                    }
                    Step::Event(e) => {
                        if let Event::ClockSkewAdjusted { offset_secs } = e {
                            self.config.clock_offset_secs = offset_secs;
                        }
                        return Output::Event(e);
                    }
                    Step::Wait(w) => {
                        if let Some(w) = w {
                            until = Some(until.map_or(w, |u| u.min(w)));
                        }
                    }
                    Step::Done(f) => {
                        self.subs.remove(&slot);
                        self.routes.retain(|_, (s, _)| *s != slot);
                        self.finished(f);
                        progressed = true;
                        break;
                    }
                }
            }
            if !progressed {
                return Output::Wait { until };
            }
        }
    }

    fn handle_input(&mut self, now: Now, input: Input) {
        let Some((slot, inner)) = self.routes.remove(&input.id()) else {
            return; // stale (a part dropped on failure) or foreign
        };
        let input = match input {
            Input::Response { response, sent, .. } => Input::Response {
                id: inner,
                response,
                sent,
            },
            Input::Failed { error, .. } => Input::Failed { id: inner, error },
            Input::Io { result, .. } => Input::Io { id: inner, result },
        };
        if let Some(sub) = self.subs.get_mut(&slot) {
            sub.handle_input(now, input);
        }
    }

    fn handle_command(&mut self, _now: Now, command: Command) {
        if command == Command::Cancel {
            self.fail(Error::Cancelled);
        }
    }

    fn set_credentials(&mut self, credentials: Credentials) {
        for sub in self.subs.values_mut() {
            sub.set_credentials(credentials.clone());
        }
        self.config.credentials = credentials;
    }
}

#[cfg(test)]
mod tests;
