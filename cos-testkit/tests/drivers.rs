//! The driver conformance suite (`tests/conformance`) run against both clients: `cos_blocking::Client` and
//! `cos_async::Client` (driven from a runtime of its own), over loopback TCP to the testkit server. Each
//! scenario is one test per driver: `blocking::<scenario>` and `async_::<scenario>`.

mod conformance;

use std::io::{self, Read};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use conformance::{ChunkReader, Driver, Info, OnEvent, Queue};
use cos_core::upload::{BatchOptions, FileUpload, TaskId, UploadOptions, UploadOutcome};
use cos_core::{Config, Error};

/// The blocking client.
struct Blocking(cos_blocking::Client);

impl Driver for Blocking {
    type Queue = cos_blocking::TaskQueue;
    const NAME: &'static str = "blocking";

    fn build(config: Config, on_event: Option<OnEvent>) -> Self {
        let mut b = cos_blocking::Client::builder(config);
        if let Some(f) = on_event {
            b = b.on_event(move |e| f(e));
        }
        Blocking(b.build())
    }

    fn upload_file(
        &self,
        path: &Path,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error> {
        self.0.upload_file(path, key, options)
    }

    fn upload_stream(
        &self,
        reader: Box<dyn Read + Send + '_>,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error> {
        self.0.upload_stream(reader, key, options)
    }

    fn upload_chunks(
        &self,
        chunks: Vec<Bytes>,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error> {
        self.0.upload_stream(ChunkReader(chunks), key, options)
    }

    fn upload_files(
        &self,
        files: Vec<FileUpload>,
        options: &BatchOptions,
    ) -> Vec<Result<UploadOutcome, Error>> {
        self.0.upload_files(files, options)
    }

    fn task_queue(&self, file_parallel: usize) -> Self::Queue {
        self.0.task_queue(file_parallel)
    }
}

impl Queue for cos_blocking::TaskQueue {
    fn add(&self, path: &Path, key: &str, options: UploadOptions) -> TaskId {
        cos_blocking::TaskQueue::add(self, path, key, options)
    }
    fn pause(&self, id: TaskId) {
        cos_blocking::TaskQueue::pause(self, id)
    }
    fn resume(&self, id: TaskId) {
        cos_blocking::TaskQueue::resume(self, id)
    }
    fn cancel(&self, id: TaskId) {
        cos_blocking::TaskQueue::cancel(self, id)
    }
    fn wait(&self, id: TaskId) -> Result<UploadOutcome, Error> {
        cos_blocking::TaskQueue::wait(self, id)
    }
    fn wait_all(&self) {
        cos_blocking::TaskQueue::wait_all(self)
    }
    fn list(&self) -> Vec<Info> {
        cos_blocking::TaskQueue::list(self)
            .into_iter()
            .map(|t| Info {
                id: t.id,
                state: t.state,
                progress: t.progress,
                error: t.error,
            })
            .collect()
    }
    fn on_change(&self, f: Box<dyn Fn() + Send + Sync>) {
        cos_blocking::TaskQueue::on_change(self, move |_| f())
    }
}

/// The async client, driven from a multi-threaded runtime of its own.
struct Async {
    client: cos_async::Client,
    rt: Arc<tokio::runtime::Runtime>,
}

/// A `Read` as an `AsyncRead` (the readers of the suite never block).
struct ReadAsync<R>(R);

impl<R: Read + Unpin> tokio::io::AsyncRead for ReadAsync<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.0.read(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// Chunks as a `Stream`.
struct Chunks(Vec<Bytes>);

impl futures_core::Stream for Chunks {
    type Item = io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(if self.0.is_empty() {
            None
        } else {
            Some(Ok(self.0.remove(0)))
        })
    }
}

impl Driver for Async {
    type Queue = AsyncQueue;
    const NAME: &'static str = "async";

    fn build(config: Config, on_event: Option<OnEvent>) -> Self {
        let rt = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        );
        let _enter = rt.enter();
        let mut b = cos_async::Client::builder(config);
        if let Some(f) = on_event {
            b = b.on_event(move |e| f(e));
        }
        Async {
            client: b.build(),
            rt,
        }
    }

    fn upload_file(
        &self,
        path: &Path,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error> {
        self.rt
            .block_on(self.client.upload_file(path, key, options))
    }

    fn upload_stream(
        &self,
        reader: Box<dyn Read + Send + '_>,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error> {
        self.rt
            .block_on(self.client.upload_stream(ReadAsync(reader), key, options))
    }

    fn upload_chunks(
        &self,
        chunks: Vec<Bytes>,
        key: &str,
        options: &UploadOptions,
    ) -> Result<UploadOutcome, Error> {
        self.rt
            .block_on(self.client.upload_byte_stream(Chunks(chunks), key, options))
    }

    fn upload_files(
        &self,
        files: Vec<FileUpload>,
        options: &BatchOptions,
    ) -> Vec<Result<UploadOutcome, Error>> {
        self.rt.block_on(self.client.upload_files(files, options))
    }

    fn task_queue(&self, file_parallel: usize) -> Self::Queue {
        let _enter = self.rt.enter();
        AsyncQueue {
            queue: self.client.task_queue(file_parallel),
            rt: self.rt.clone(),
        }
    }
}

/// The async task queue, with the runtime it runs on.
struct AsyncQueue {
    queue: cos_async::TaskQueue,
    rt: Arc<tokio::runtime::Runtime>,
}

impl Queue for AsyncQueue {
    fn add(&self, path: &Path, key: &str, options: UploadOptions) -> TaskId {
        let _enter = self.rt.enter();
        self.queue.add(path, key, options)
    }
    fn pause(&self, id: TaskId) {
        let _enter = self.rt.enter();
        self.queue.pause(id)
    }
    fn resume(&self, id: TaskId) {
        let _enter = self.rt.enter();
        self.queue.resume(id)
    }
    fn cancel(&self, id: TaskId) {
        let _enter = self.rt.enter();
        self.queue.cancel(id)
    }
    fn wait(&self, id: TaskId) -> Result<UploadOutcome, Error> {
        self.rt.block_on(self.queue.wait(id))
    }
    fn wait_all(&self) {
        self.rt.block_on(self.queue.wait_all())
    }
    fn list(&self) -> Vec<Info> {
        self.queue
            .list()
            .into_iter()
            .map(|t| Info {
                id: t.id,
                state: t.state,
                progress: t.progress,
                error: t.error,
            })
            .collect()
    }
    fn on_change(&self, f: Box<dyn Fn() + Send + Sync>) {
        self.queue.on_change(move |_| f())
    }
}

/// One test per scenario and driver.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod blocking {
            $(
                #[test]
                fn $name() {
                    super::conformance::$name::<super::Blocking>();
                }
            )*
        }
        mod async_ {
            $(
                #[test]
                fn $name() {
                    super::conformance::$name::<super::Async>();
                }
            )*
        }
    };
}

scenarios!(
    a_small_file_is_one_put,
    bad_input_fails_before_sending,
    a_multipart_upload_sends_parts_and_verifies_the_crc,
    an_interrupted_upload_resumes_from_its_checkpoint_with_only_the_missing_parts,
    a_changed_file_aborts_the_stale_upload_and_starts_over,
    without_a_checkpoint_the_unfinished_upload_is_found_and_parts_are_checked_by_md5,
    add_meta_md5_hashes_the_file_first,
    a_batch_uploads_every_file_even_when_one_fails,
    faults_are_retried_and_the_object_is_byte_identical,
    streams_end_on_before_and_after_part_boundaries,
    a_failing_reader_is_a_source_error_and_leaves_no_upload,
    stream_memory_stays_within_concurrency_plus_one_parts,
    cancel_aborts_the_upload_and_leaves_nothing,
    pause_keeps_the_checkpoint_and_resume_sends_only_the_missing_parts,
    a_paused_task_cancelled_later_aborts_its_upload,
    a_corrupt_or_foreign_checkpoint_is_a_typed_error_and_nothing_is_sent,
);

#[test]
fn blocking_add_meta_md5_is_refused_for_a_stream() {
    conformance::add_meta_md5_is_refused_for_a_stream::<Blocking>();
}

/// Once a divergence (async accepted it): both now run the core's `UploadTask::stream`.
#[test]
fn async_add_meta_md5_is_refused_for_a_stream() {
    conformance::add_meta_md5_is_refused_for_a_stream::<Async>();
}
