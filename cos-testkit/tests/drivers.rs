//! The driver conformance suite (`tests/conformance`) run against both clients: `cos_blocking::Client` and
//! `cos_async::Client` (driven from a runtime of its own), over loopback TCP to the testkit server. Each
//! scenario is one test per driver: `blocking::<scenario>` and `async_::<scenario>`.

mod conformance;
#[path = "../../cos-blocking/tests/support/mod.rs"]
mod support;

use std::io::{self, Read};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use conformance::{
    ChunkReader, Downloaded, Driver, Info, ObjectBody, Options, Payload, PayloadReader, Queue,
};
use cos_core::copy::{CopyOptions, CopyOutcome};
use cos_core::download::{DownloadOptions, FileDownload};
use cos_core::ops::*;
use cos_core::post_policy::{PostForm, PostObjectOutput, PostPolicy};
use cos_core::task::Task;
use cos_core::upload::{BatchOptions, FileUpload, TaskId, UploadOptions, UploadOutcome, Waited};
use cos_core::{Config, Error};

/// Declares [`Ops`] (the clients' one-request calls, each forwarding to the client method of the same name)
/// and implements it for both clients from one list, so a signature is written once.
macro_rules! ops {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        /// The clients' one-request calls, called synchronously.
        pub trait Ops {
            /// `Client::execute`.
            fn execute<O: Operation + Send>(&self, op: O) -> Result<O::Output, Error>;
            /// `Client::put_object`.
            fn put_object(&self, op: PutObject, body: impl Into<Payload>) -> Result<PutObjectOutput, Error>;
            /// `Client::upload_part`.
            fn upload_part(&self, op: UploadPart, body: impl Into<Payload>) -> Result<UploadPartOutput, Error>;
            /// `Client::append_object`.
            fn append_object(&self, op: AppendObject, body: impl Into<Payload>) -> Result<AppendObjectOutput, Error>;
            /// `Client::post_object`.
            fn post_object(&self, form: &PostForm, body: impl Into<Payload>, filename: &str, content_type: &str) -> Result<PostObjectOutput, Error>;
            $($(#[$doc])* fn $name(&self, $($arg: $ty),*) -> Result<$out, Error>;)*
        }

        impl Ops for Blocking {
            fn execute<O: Operation + Send>(&self, op: O) -> Result<O::Output, Error> {
                self.0.execute(op)
            }
            fn put_object(&self, op: PutObject, body: impl Into<Payload>) -> Result<PutObjectOutput, Error> {
                self.0.put_object(op, blocking_body(body.into())?)
            }
            fn upload_part(&self, op: UploadPart, body: impl Into<Payload>) -> Result<UploadPartOutput, Error> {
                self.0.upload_part(op, blocking_body(body.into())?)
            }
            fn append_object(&self, op: AppendObject, body: impl Into<Payload>) -> Result<AppendObjectOutput, Error> {
                self.0.append_object(op, blocking_body(body.into())?)
            }
            fn post_object(&self, form: &PostForm, body: impl Into<Payload>, filename: &str, content_type: &str) -> Result<PostObjectOutput, Error> {
                self.0.post_object(form, blocking_body(body.into())?, filename, content_type)
            }
            $(fn $name(&self, $($arg: $ty),*) -> Result<$out, Error> {
                self.0.$name($($arg),*)
            })*
        }

        impl Ops for Async {
            fn execute<O: Operation + Send>(&self, op: O) -> Result<O::Output, Error> {
                self.rt.block_on(self.client.execute(op))
            }
            fn put_object(&self, op: PutObject, body: impl Into<Payload>) -> Result<PutObjectOutput, Error> {
                self.rt.block_on(self.client.put_object(op, async_body(body.into())?))
            }
            fn upload_part(&self, op: UploadPart, body: impl Into<Payload>) -> Result<UploadPartOutput, Error> {
                self.rt.block_on(self.client.upload_part(op, async_body(body.into())?))
            }
            fn append_object(&self, op: AppendObject, body: impl Into<Payload>) -> Result<AppendObjectOutput, Error> {
                self.rt.block_on(self.client.append_object(op, async_body(body.into())?))
            }
            fn post_object(&self, form: &PostForm, body: impl Into<Payload>, filename: &str, content_type: &str) -> Result<PostObjectOutput, Error> {
                self.rt.block_on(self.client.post_object(form, async_body(body.into())?, filename, content_type))
            }
            $(fn $name(&self, $($arg: $ty),*) -> Result<$out, Error> {
                self.rt.block_on(self.client.$name($($arg),*))
            })*
        }
    };
}

ops! {
    /// `Client::head_object`.
    fn head_object(key: &str) -> ObjectInfo;
    /// `Client::get_object` (the body in memory).
    fn get_object(op: GetObject) -> GetObjectOutput;
    /// `Client::put_object_tagging`.
    fn put_object_tagging(key: &str, tags: Tags) -> ObjectTaggingOutput;
    /// `Client::get_object_tagging`.
    fn get_object_tagging(key: &str) -> Tags;
    /// `Client::delete_object_tagging`.
    fn delete_object_tagging(key: &str) -> ObjectTaggingOutput;
    /// `Client::put_object_acl`.
    fn put_object_acl(op: PutObjectAcl) -> PutObjectAclOutput;
    /// `Client::get_object_acl`.
    fn get_object_acl(key: &str) -> ObjectAcl;
    /// `Client::initiate_multipart_upload`.
    fn initiate_multipart_upload(op: InitiateMultipartUpload) -> InitiateMultipartUploadOutput;
    /// `Client::list_parts`.
    fn list_parts(op: ListParts) -> ListPartsOutput;
    /// `Client::complete_multipart_upload`.
    fn complete_multipart_upload(op: CompleteMultipartUpload) -> CompleteMultipartUploadOutput;
    /// `Client::abort_multipart_upload`.
    fn abort_multipart_upload(op: AbortMultipartUpload) -> AbortMultipartUploadOutput;
    /// `Client::list_multipart_uploads`.
    fn list_multipart_uploads(op: ListMultipartUploads) -> ListMultipartUploadsOutput;
    /// `Client::delete_object`.
    fn delete_object(key: &str) -> DeleteObjectOutput;
    /// `Client::delete_objects`.
    fn delete_objects(op: DeleteObjects) -> DeleteObjectsOutput;
    /// `Client::list_objects` (one page).
    fn list_objects(op: ListObjects) -> ListObjectsOutput;
    /// `Client::copy_object`.
    fn copy_object(op: CopyObject) -> CopyObjectOutput;
    /// `Client::upload_part_copy`.
    fn upload_part_copy(op: UploadPartCopy) -> CopyObjectOutput;
    /// `Client::copy`.
    fn copy(source: CopySource, dest_key: &str, options: &CopyOptions) -> CopyOutcome;
}

/// A `$client::Client` for `$config`, its builder given each of `$options` that is set.
macro_rules! build {
    ($client:ident, $config:expr, $options:expr) => {{
        let options: Options = $options;
        let mut b = $client::Client::builder($config);
        if let Some(f) = options.on_event {
            b = b.on_event(move |e| f(e));
        }
        if let Some(t) = options.read_timeout {
            b = b.read_timeout(t);
        }
        if let Some(p) = options.credentials {
            b = b.credentials_provider(p);
        }
        if let Some(r) = options.responder {
            b = b.responder(r);
        }
        if let Some(r) = options.recorder {
            b = b.recorder(r);
        }
        b.build()
    }};
}

/// A client's `TaskInfo` as the suite's [`Info`].
macro_rules! info {
    ($t:expr) => {
        Info {
            id: $t.id,
            state: $t.state,
            progress: $t.progress,
            error: $t.error,
        }
    };
}

/// A file that cannot be opened, as the clients' `Body::file` reports it.
fn no_file(e: io::Error) -> Error {
    Error::Source(e.to_string())
}

/// The blocking client's `Body` for `p`.
fn blocking_body(p: Payload) -> Result<cos_blocking::Body, Error> {
    use cos_blocking::Body;
    Ok(match p {
        Payload::Bytes(b) => Body::from(b),
        Payload::File(path) => Body::file(path).map_err(no_file)?,
        Payload::FileRange(path, offset, len) => Body::file_range(path, offset, len),
        Payload::Reader { data, len, fail } => Body::reader(PayloadReader::new(data, fail), len),
    })
}

/// The async client's `Body` for `p`.
fn async_body(p: Payload) -> Result<cos_async::Body, Error> {
    use cos_async::Body;
    Ok(match p {
        Payload::Bytes(b) => Body::from(b),
        Payload::File(path) => Body::file(path).map_err(no_file)?,
        Payload::FileRange(path, offset, len) => Body::file_range(path, offset, len),
        Payload::Reader { data, len, fail } => {
            Body::reader(ReadAsync(PayloadReader::new(data, fail)), len)
        }
    })
}

/// Bytes in memory as either client's `Source`.
struct Mem(Vec<u8>);

impl cos_blocking::Source for Mem {
    fn open(&self, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send + '_>> {
        let (o, l) = (offset as usize, len as usize);
        Ok(Box::new(&self.0[o..o + l]))
    }
}

impl cos_async::AsyncSource for Mem {
    fn open(&self, offset: u64, len: u64) -> cos_async::OpenFuture<'_> {
        let (o, l) = (offset as usize, len as usize);
        let part = self.0[o..o + l].to_vec();
        Box::pin(async move { Ok(Box::new(io::Cursor::new(part)) as cos_async::SourceReader) })
    }
}

/// The blocking client.
struct Blocking(cos_blocking::Client);

impl Driver for Blocking {
    type Queue = cos_blocking::TaskQueue;
    const NAME: &'static str = "blocking";

    fn build_with(config: Config, options: Options) -> Self {
        Blocking(build!(cos_blocking, config, options))
    }

    fn config(&self) -> Config {
        self.0.config()
    }

    fn run_in_memory<T: Task + Send>(&self, task: T, data: Vec<u8>) -> Result<T::Output, Error>
    where
        T::Output: Send,
    {
        self.0.run(task, &Mem(data))
    }

    fn presigned_url(
        &self,
        method: http::Method,
        key: &str,
        expires_in: Duration,
    ) -> Result<http::Uri, Error> {
        self.0.presigned_url(method, key, expires_in, &[], &[])
    }

    fn sign_post_policy(&self, policy: &PostPolicy) -> Result<PostForm, Error> {
        self.0.sign_post_policy(policy)
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

    fn download_file(
        &self,
        key: &str,
        path: &Path,
        options: &DownloadOptions,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<Downloaded, Error> {
        self.0
            .download_file_with_progress(key, path, options, progress)
            .map(|o| Downloaded {
                size: o.size,
                requests: o.requests,
                resumed: o.resumed,
            })
    }

    fn download_files(
        &self,
        files: &[FileDownload],
        options: &DownloadOptions,
        file_parallel: usize,
    ) -> Vec<Result<Downloaded, Error>> {
        self.0
            .download_files(files, options, file_parallel)
            .into_iter()
            .map(|r| {
                r.map(|o| Downloaded {
                    size: o.size,
                    requests: o.requests,
                    resumed: o.resumed,
                })
            })
            .collect()
    }

    fn download_queue(&self, file_parallel: usize) -> Box<dyn conformance::DownloadList> {
        Box::new(self.0.download_queue(file_parallel))
    }

    fn list_objects_pages(
        &self,
        op: ListObjects,
    ) -> Box<dyn Iterator<Item = Result<ListObjectsOutput, Error>> + '_> {
        Box::new(self.0.list_objects_pages(op))
    }

    fn get_object_stream(&self, op: GetObject) -> Result<Box<dyn ObjectBody + '_>, Error> {
        Ok(Box::new(self.0.get_object_reader(op)?))
    }
}

impl ObjectBody for cos_blocking::ObjectReader {
    fn info(&self) -> &ObjectInfo {
        cos_blocking::ObjectReader::info(self)
    }
    fn range(&self) -> Option<(u64, u64, u64)> {
        cos_blocking::ObjectReader::range(self)
    }
    fn received(&self) -> u64 {
        cos_blocking::ObjectReader::received(self)
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
    fn wait_timeout(&self, id: TaskId, timeout: Duration) -> Waited<Result<UploadOutcome, Error>> {
        cos_blocking::TaskQueue::wait_timeout(self, id, timeout)
    }
    fn wait_all_timeout(&self, timeout: Duration) -> Waited<()> {
        cos_blocking::TaskQueue::wait_all_timeout(self, timeout)
    }
    fn list(&self) -> Vec<Info> {
        cos_blocking::TaskQueue::list(self)
            .into_iter()
            .map(|t| info!(t))
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

    fn build_with(config: Config, options: Options) -> Self {
        let rt = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        );
        let _enter = rt.enter();
        Async {
            client: build!(cos_async, config, options),
            rt,
        }
    }

    fn config(&self) -> Config {
        self.client.config()
    }

    fn run_in_memory<T: Task + Send>(&self, task: T, data: Vec<u8>) -> Result<T::Output, Error>
    where
        T::Output: Send,
    {
        self.rt.block_on(self.client.run(task, &Mem(data)))
    }

    fn presigned_url(
        &self,
        method: http::Method,
        key: &str,
        expires_in: Duration,
    ) -> Result<http::Uri, Error> {
        self.client.presigned_url(method, key, expires_in, &[], &[])
    }

    fn sign_post_policy(&self, policy: &PostPolicy) -> Result<PostForm, Error> {
        self.client.sign_post_policy(policy)
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

    fn download_file(
        &self,
        key: &str,
        path: &Path,
        options: &DownloadOptions,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<Downloaded, Error> {
        self.rt
            .block_on(
                self.client
                    .download_file_with_progress(key, path, options, progress),
            )
            .map(|o| Downloaded {
                size: o.size,
                requests: o.requests,
                resumed: o.resumed,
            })
    }

    fn download_files(
        &self,
        files: &[FileDownload],
        options: &DownloadOptions,
        file_parallel: usize,
    ) -> Vec<Result<Downloaded, Error>> {
        self.rt
            .block_on(self.client.download_files(files, options, file_parallel))
            .into_iter()
            .map(|r| {
                r.map(|o| Downloaded {
                    size: o.size,
                    requests: o.requests,
                    resumed: o.resumed,
                })
            })
            .collect()
    }

    fn download_queue(&self, file_parallel: usize) -> Box<dyn conformance::DownloadList> {
        let _enter = self.rt.enter();
        Box::new(AsyncDownloads {
            queue: self.client.download_queue(file_parallel),
            rt: self.rt.clone(),
        })
    }

    /// Polled as a `futures_core::Stream` (`next_page` is the same poll).
    fn list_objects_pages(
        &self,
        op: ListObjects,
    ) -> Box<dyn Iterator<Item = Result<ListObjectsOutput, Error>> + '_> {
        let mut pages = self.client.list_objects_pages(op);
        Box::new(std::iter::from_fn(move || {
            self.rt.block_on(std::future::poll_fn(|cx| {
                futures_core::Stream::poll_next(Pin::new(&mut pages), cx)
            }))
        }))
    }

    /// Read through its `AsyncRead`.
    fn get_object_stream(&self, op: GetObject) -> Result<Box<dyn ObjectBody + '_>, Error> {
        let stream = self.rt.block_on(self.client.get_object_stream(op))?;
        Ok(Box::new(AsyncBody {
            stream,
            rt: &self.rt,
        }))
    }
}

/// A streamed GET's body, read through its `AsyncRead`.
#[derive(Debug)]
struct AsyncBody<'a> {
    stream: cos_async::ObjectStream,
    rt: &'a tokio::runtime::Runtime,
}

impl Read for AsyncBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.rt
            .block_on(tokio::io::AsyncReadExt::read(&mut self.stream, buf))
    }
}

impl ObjectBody for AsyncBody<'_> {
    fn info(&self) -> &ObjectInfo {
        self.stream.info()
    }
    fn range(&self) -> Option<(u64, u64, u64)> {
        self.stream.range()
    }
    fn received(&self) -> u64 {
        self.stream.received()
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
    fn wait_timeout(&self, id: TaskId, timeout: Duration) -> Waited<Result<UploadOutcome, Error>> {
        self.rt.block_on(self.queue.wait_timeout(id, timeout))
    }
    fn wait_all_timeout(&self, timeout: Duration) -> Waited<()> {
        self.rt.block_on(self.queue.wait_all_timeout(timeout))
    }
    fn list(&self) -> Vec<Info> {
        self.queue.list().into_iter().map(|t| info!(t)).collect()
    }
    fn on_change(&self, f: Box<dyn Fn() + Send + Sync>) {
        self.queue.on_change(move |_| f())
    }
}

fn downloaded(o: cos_blocking::DownloadOutcome) -> Downloaded {
    Downloaded {
        size: o.size,
        requests: o.requests,
        resumed: o.resumed,
    }
}

impl conformance::DownloadList for cos_blocking::DownloadQueue {
    fn add(&self, key: &str, path: &Path, options: DownloadOptions) -> TaskId {
        cos_blocking::DownloadQueue::add(self, key, path, options)
    }
    fn pause(&self, id: TaskId) {
        cos_blocking::DownloadQueue::pause(self, id)
    }
    fn resume(&self, id: TaskId) {
        cos_blocking::DownloadQueue::resume(self, id)
    }
    fn cancel(&self, id: TaskId) {
        cos_blocking::DownloadQueue::cancel(self, id)
    }
    fn wait(&self, id: TaskId) -> Result<Downloaded, Error> {
        cos_blocking::DownloadQueue::wait(self, id).map(downloaded)
    }
    fn wait_all(&self) {
        cos_blocking::DownloadQueue::wait_all(self)
    }
    fn list(&self) -> Vec<(cos_core::upload::TaskState, u64)> {
        cos_blocking::DownloadQueue::list(self)
            .into_iter()
            .map(|t| (t.state, t.loaded))
            .collect()
    }
    fn wait_timeout(&self, id: TaskId, timeout: Duration) -> Waited<Result<Downloaded, Error>> {
        match cos_blocking::DownloadQueue::wait_timeout(self, id, timeout) {
            Waited::Done(r) => Waited::Done(r.map(downloaded)),
            Waited::TimedOut => Waited::TimedOut,
        }
    }
    fn wait_all_timeout(&self, timeout: Duration) -> Waited<()> {
        cos_blocking::DownloadQueue::wait_all_timeout(self, timeout)
    }
    fn on_change(&self, f: Box<dyn Fn() + Send + Sync>) {
        cos_blocking::DownloadQueue::on_change(self, move |_| f())
    }
}

/// The async download queue, with the runtime it runs on.
struct AsyncDownloads {
    queue: cos_async::DownloadQueue,
    rt: Arc<tokio::runtime::Runtime>,
}

impl conformance::DownloadList for AsyncDownloads {
    fn add(&self, key: &str, path: &Path, options: DownloadOptions) -> TaskId {
        let _enter = self.rt.enter();
        self.queue.add(key, path, options)
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
    fn wait(&self, id: TaskId) -> Result<Downloaded, Error> {
        self.rt.block_on(self.queue.wait(id)).map(|o| Downloaded {
            size: o.size,
            requests: o.requests,
            resumed: o.resumed,
        })
    }
    fn wait_all(&self) {
        self.rt.block_on(self.queue.wait_all())
    }
    fn list(&self) -> Vec<(cos_core::upload::TaskState, u64)> {
        self.queue
            .list()
            .into_iter()
            .map(|t| (t.state, t.loaded))
            .collect()
    }
    fn wait_timeout(&self, id: TaskId, timeout: Duration) -> Waited<Result<Downloaded, Error>> {
        match self.rt.block_on(self.queue.wait_timeout(id, timeout)) {
            Waited::Done(r) => Waited::Done(r.map(|o| Downloaded {
                size: o.size,
                requests: o.requests,
                resumed: o.resumed,
            })),
            Waited::TimedOut => Waited::TimedOut,
        }
    }
    fn wait_all_timeout(&self, timeout: Duration) -> Waited<()> {
        self.rt.block_on(self.queue.wait_all_timeout(timeout))
    }
    fn on_change(&self, f: Box<dyn Fn() + Send + Sync>) {
        self.queue.on_change(move |_| f())
    }
}

/// One test per scenario and driver: `blocking::<module>::<scenario>` and `async_::<module>::<scenario>`.
macro_rules! scenarios {
    ($($module:ident: [$($name:ident),* $(,)?]),* $(,)?) => {
        mod blocking {
            $(mod $module {
                $(
                    #[test]
                    fn $name() {
                        crate::conformance::$module::$name::<crate::Blocking>();
                    }
                )*
            })*
        }
        mod async_ {
            $(mod $module {
                $(
                    #[test]
                    fn $name() {
                        crate::conformance::$module::$name::<crate::Async>();
                    }
                )*
            })*
        }
    };
}

scenarios!(
    transfers: [
        a_small_file_is_one_put,
        bad_input_fails_before_sending,
        a_multipart_upload_sends_parts_and_verifies_the_crc,
        an_interrupted_upload_resumes_from_its_checkpoint_with_only_the_missing_parts,
        a_changed_file_aborts_the_stale_upload_and_starts_over,
        without_a_checkpoint_the_unfinished_upload_is_found_and_parts_are_checked_by_md5,
        add_meta_md5_hashes_the_file_first,
        a_batch_uploads_every_file_even_when_one_fails,
        md5_on_verifies_every_part_etag_while_parts_in_flight_share_the_hashing,
        faults_are_retried_and_the_object_is_byte_identical,
        streams_end_on_before_and_after_part_boundaries,
        a_failing_reader_is_a_source_error_and_leaves_no_upload,
        stream_memory_stays_within_concurrency_plus_one_parts,
        cancel_aborts_the_upload_and_leaves_nothing,
        pause_keeps_the_checkpoint_and_resume_sends_only_the_missing_parts,
        a_paused_task_cancelled_later_aborts_its_upload,
        a_corrupt_or_foreign_checkpoint_is_a_typed_error_and_nothing_is_sent,
        parts_go_out_in_parallel_up_to_the_concurrency_asked,
        add_meta_md5_is_refused_for_a_stream,
    ],
    queue: [
        a_stalled_task_times_out_then_completes,
        dropping_the_queue_aborts_a_paused_upload_and_ends_its_run,
    ],
    objects: [
        delete_object_and_delete_objects,
        list_objects_pages_delimiter_and_url_encoding,
        copy_object_with_and_across_keys,
        upload_part_copy_assembles_ranges,
        copy_of_a_large_object_is_multipart_and_byte_identical,
        a_source_changed_during_a_multipart_copy_fails_and_leaves_nothing,
        a_listing_whose_marker_does_not_advance_ends_with_an_error,
    ],
    get_object: [
        streams_whole_objects_and_ranges,
        conditional_gets,
        a_body_cut_mid_way_is_an_error_not_a_short_object,
        a_read_after_a_cut_body_keeps_failing,
    ],
    download: [
        small_objects_take_one_get_and_large_ones_ranges,
        a_failed_download_leaves_the_destination_untouched,
        a_body_cut_mid_way_is_continued_from_where_it_stopped,
        a_failed_download_resumes_from_its_checkpoint_with_only_the_missing_ranges,
        a_kept_range_damaged_on_disk_is_fetched_again,
        a_destination_that_cannot_be_replaced_fails_and_keeps_only_what_a_rerun_can_use,
        an_object_changed_during_the_download_is_detected,
        a_head_claiming_an_impossible_size_fails_before_any_get,
        progress_reaches_the_total,
        a_batch_downloads_every_file_even_when_one_fails,
        a_queued_download_pauses_resumes_with_only_the_missing_ranges_and_cancels_cleanly,
        a_queued_download_is_watched_and_waited_for_with_a_limit_and_a_failed_one_cancels_cleanly,
    ],
    tagging_acl: [object_tagging_calls_and_typed_option, object_acl_calls],
    requests: [
        every_operation_through_the_driver,
        service_errors_reach_the_caller_typed,
        injected_500_503_and_reset_are_retried_to_success,
        a_reader_body_is_sent_once,
        a_reset_that_outlasts_the_retries_is_a_transport_error,
    ],
    wire: [
        put_bytes_sends_the_core_headers_exactly,
        file_body_is_streamed_with_content_length_and_digest,
        a_wrong_etag_from_the_server_is_an_integrity_error,
        retries_500_503_and_resets_then_succeeds_and_reports_events,
        a_reader_body_is_not_retried,
        a_short_or_failing_source_is_a_body_error,
        connection_refused_is_a_connect_error,
        a_stalled_server_is_a_timeout,
        clock_skew_is_learned_and_used_for_later_requests,
        request_spans_carry_status_and_request_id_but_no_secrets,
        a_large_file_body_is_streamed_whole,
    ],
    fixtures: [
        put_object_with_options_then_head,
        append_object_and_its_409s,
        head_and_get_object,
        multipart_by_hand_with_a_file_part,
        complete_and_abort_errors,
        list_multipart_uploads_pages,
        signature_mismatch_and_retried_faults,
        a_request_the_fixture_does_not_hold_fails_with_the_diff,
    ],
    replay: [replays_a_testkit_fixture_without_network],
    post: [
        form_upload_stores_the_file,
        success_status_201_and_redirect,
        every_violated_condition_is_refused,
        presigned_put_and_get_with_curl,
        temporary_credentials_expire_between_parts_and_are_refreshed,
        provider_credentials_sign_operations_and_presigned_urls,
    ],
);

#[test]
fn a_blocking_recording_replays_through_async() {
    conformance::replay::a_recording_replays_through_another_client::<Blocking, Async>();
}

#[test]
fn an_async_recording_replays_through_blocking() {
    conformance::replay::a_recording_replays_through_another_client::<Async, Blocking>();
}
