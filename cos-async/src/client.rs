//! The [`Client`]: one loop over the core's task protocol, plus one method per operation.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use cos_core::client::{Attach, BuildClient, ClientParts, ClientState};
use cos_core::error::{TransportError, TransportErrorKind};
use cos_core::ops::{ListObjects, ListObjectsPages, Operation};
use cos_core::task::{Command, Event, Input, Io, IoResult, Now, OneShot, Output, RequestId, Task};
use cos_core::{Config, Error};

use crate::body::{AsyncSource, Body, BodySource, NoSource};
use crate::transfer::LocalIo;
use tokio::sync::mpsc;

use crate::transport::Transport;

struct Inner {
    transport: Transport,
    state: ClientState,
}

/// An async COS client (hyper + tokio: use it inside a tokio runtime). Cheap to clone (the connection pool
/// and the configuration are shared), `Send` and `Sync`.
///
/// ```no_run
/// use cos_async::{Client, Config, Credentials, ops::PutObject};
/// # #[tokio::main] async fn main() -> Result<(), cos_async::Error> {
/// let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
/// let client = Client::new(config);
/// let out = client.put_object(PutObject::new("hello.txt"), "hello").await?;
/// println!("{}", out.etag);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`] with non-default connection settings (see [`Client::builder`]); the settings and
/// their defaults are the core's [`cos_core::client::ClientBuilder`].
pub type ClientBuilder = cos_core::client::ClientBuilder<Client>;

impl BuildClient for Client {
    fn build_client(parts: ClientParts) -> Client {
        Client {
            inner: Arc::new(Inner {
                transport: Transport::new(&parts.settings),
                state: parts.state,
            }),
        }
    }

    fn random_u64() -> u64 {
        random_u64()
    }
}

async fn sleep_until(until: Option<Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// A local I/O request being performed; it hands the [`LocalIo`] back with the result.
type IoFuture<'a> = Pin<Box<dyn Future<Output = (LocalIo<'a>, RequestId, IoResult)> + Send + 'a>>;

type SendFuture<'a> = Pin<Box<dyn Future<Output = Input> + Send + 'a>>;

/// The requests in flight; polled together, answers taken in completion order.
#[derive(Default)]
struct InFlight<'a> {
    sends: Vec<SendFuture<'a>>,
}

impl<'a> InFlight<'a> {
    fn push(&mut self, f: SendFuture<'a>) {
        self.sends.push(f);
    }

    fn is_empty(&self) -> bool {
        self.sends.is_empty()
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Input>> {
        if self.sends.is_empty() {
            return Poll::Ready(None);
        }
        for i in 0..self.sends.len() {
            if let Poll::Ready(input) = self.sends[i].as_mut().poll(cx) {
                drop(self.sends.swap_remove(i));
                return Poll::Ready(Some(input));
            }
        }
        Poll::Pending
    }
}

/// This process's name in checkpoint leases: its pid and a random number.
pub(crate) fn lease_owner() -> &'static str {
    static OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OWNER.get_or_init(|| format!("pid {} run {:016x}", std::process::id(), random_u64()))
}

/// A random number from std's hasher keys (the core has no randomness).
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

pub(crate) fn now() -> Now {
    Now {
        instant: Instant::now(),
        system: SystemTime::now(),
    }
}

impl Client {
    /// A client with default connection settings.
    pub fn new(config: Config) -> Client {
        Client::builder(config).build()
    }

    /// A builder for connection settings; the environment's proxy variables are read here, once per
    /// client.
    ///
    ///
    /// ```
    /// use std::time::Duration;
    /// use cos_async::{Client, Config, Credentials};
    /// let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
    /// let client = Client::builder(config)
    ///     .connect_timeout(Duration::from_secs(5))
    ///     .read_timeout(Duration::from_secs(30))
    ///     .max_idle_connections(4)
    ///     .build();
    /// # Ok::<(), cos_async::Error>(())
    /// ```
    pub fn builder(config: Config) -> ClientBuilder {
        ClientBuilder::new(config, |name| std::env::var(name).ok())
    }

    /// The current configuration, including the clock offset learned from `RequestTimeTooSkewed` answers.
    pub fn config(&self) -> Config {
        self.inner.state.config()
    }

    /// The connection pool, for calls that stream a response body ([`crate::ObjectStream`]).
    pub(crate) fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// The state shared by the client's clones (configuration, callback, credentials, hooks).
    pub(crate) fn state(&self) -> &ClientState {
        &self.inner.state
    }

    fn event(&self, e: Event) {
        match &e {
            Event::ClockSkewAdjusted { offset_secs } => {
                tracing::info!(
                    offset_secs,
                    "server clock differs: signing with an offset from now on"
                );
            }
            Event::RetryScheduled {
                operation,
                part,
                attempt,
                delay,
                error,
            } => {
                tracing::warn!(operation, ?part, attempt, ?delay, %error, "retrying");
            }
            _ => {}
        }
        self.inner.state.handle_event(&e);
    }

    /// Runs a task to the end: sends each request it emits (all of them at once: a multipart upload's
    /// parts go out in parallel, up to the task's own limit), feeds back each answer as it arrives, and
    /// sleeps until the task's next timer when it waits. `source` serves the task's streamed bodies
    /// ([`cos_core::task::RequestBody::Source`]); several ranges may be open at once.
    ///
    /// ```no_run
    /// use cos_async::{Client, Config, Credentials, FileSource};
    /// use cos_core::upload::{MultipartUpload, UploadConfig};
    /// # #[tokio::main] async fn main() -> Result<(), cos_async::Error> {
    /// let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
    /// let client = Client::new(config.clone());
    /// let len = std::fs::metadata("big.bin").map_err(|e| cos_async::Error::Source(e.to_string()))?.len();
    /// let task = MultipartUpload::new(config, "big.bin", len, UploadConfig::default())?;
    /// let outcome = client.run(task, &FileSource::new("big.bin")).await?;
    /// println!("{} in {} parts", outcome.etag, outcome.parts);
    /// # Ok(()) }
    /// ```
    pub async fn run<T: Task>(
        &self,
        task: T,
        source: &dyn AsyncSource,
    ) -> Result<T::Output, Error> {
        let mut task = task;
        self.drive(&mut task, source, None, None).await
    }

    /// The driver loop: every transmit is sent at once and runs beside the others; the task's local I/O
    /// is performed by `io` one request at a time, in order, beside them too; `commands` are fed to the
    /// task as they arrive. The loop wakes on the first answer, I/O result, command or the task's timer.
    pub(crate) async fn drive<T: Task>(
        &self,
        task: &mut T,
        source: &dyn AsyncSource,
        io: Option<LocalIo<'_>>,
        mut commands: Option<&mut mpsc::UnboundedReceiver<Command>>,
    ) -> Result<T::Output, Error> {
        let mut in_flight = InFlight::default();
        let mut signing = None;
        let reports = io.as_ref().map(LocalIo::reports);
        let mut io_slot = io;
        let mut io_queue: VecDeque<Io> = VecDeque::new();
        let mut io_running: Option<IoFuture<'_>> = None;
        loop {
            let until = loop {
                self.inner
                    .state
                    .refresh_credentials(task, &mut signing, SystemTime::now())?;
                match task.poll_output(now()) {
                    Output::Transmit(t) => in_flight.push(Box::pin(self.inner.transport.send(
                        t,
                        source,
                        self.inner.state.hooks(),
                    ))),
                    Output::Io(o) => io_queue.push_back(o),
                    Output::Event(e) => {
                        if let Some(r) = &reports {
                            r.report(&e);
                        }
                        self.event(e);
                    }
                    Output::Wait { until } => break until,
                    Output::Done(result) => {
                        // I/O asked before the end is still performed, in order (checkpoint stores).
                        if let Some(running) = io_running.take() {
                            io_slot = Some(running.await.0);
                        }
                        if let Some(local) = io_slot.as_mut() {
                            for o in io_queue.drain(..) {
                                let _ = local.perform(o.request).await;
                            }
                        }
                        return result;
                    }
                }
            };
            if io_running.is_none() {
                if let Some(o) = io_queue.pop_front() {
                    match io_slot.take() {
                        Some(mut local) => {
                            io_running = Some(Box::pin(async move {
                                let result = local.perform(o.request).await;
                                (local, o.id, result)
                            }))
                        }
                        None => {
                            let result = IoResult::Failed("no local I/O for this task".into());
                            task.handle_input(now(), Input::Io { id: o.id, result });
                            continue;
                        }
                    }
                }
            }
            if in_flight.is_empty() && until.is_none() && io_running.is_none() && commands.is_none()
            {
                return Err(Error::Transport(TransportError::new(
                    TransportErrorKind::Other,
                    "the task waits for an answer to a request it never emitted",
                )));
            }
            tokio::select! {
                Some(input) = std::future::poll_fn(|cx| in_flight.poll_next(cx)) => {
                    task.handle_input(now(), input);
                }
                (local, id, result) = async { io_running.as_mut().expect("guarded").await }, if io_running.is_some() => {
                    io_running = None;
                    io_slot = Some(local);
                    task.handle_input(now(), Input::Io { id, result });
                }
                c = async { commands.as_mut().expect("guarded").recv().await }, if commands.is_some() => {
                    match c {
                        Some(c) => task.handle_command(now(), c),
                        None => commands = None,
                    }
                }
                _ = sleep_until(until), if until.is_some() => {}
            }
        }
    }

    /// Runs one operation whose body (if any) is inside it, with retries and clock-skew correction.
    pub async fn execute<O: Operation>(&self, op: O) -> Result<O::Output, Error> {
        self.run(OneShot::new(op, self.config())?, &NoSource).await
    }

    async fn upload<O: Operation>(
        &self,
        body: Body,
        attach: impl FnOnce(Attach) -> O,
    ) -> Result<O::Output, Error> {
        match body {
            Body::Bytes(b) => self.execute(attach(Attach::Bytes(b))).await,
            body => {
                let replayable = body.is_replayable();
                let mut task = OneShot::new(attach(Attach::Source(body.len())), self.config())?;
                if !replayable {
                    task = task.not_replayable();
                }
                self.run(task, &BodySource::new(body)).await
            }
        }
    }

    cos_core::client_operation_methods!(async);

    /// List Objects, every page from `op`'s marker on, as a stream (one request per page).
    ///
    /// ```no_run
    /// # async fn f(client: cos_async::Client) -> Result<(), cos_async::Error> {
    /// use cos_async::ops::ListObjects;
    /// let mut pages = client.list_objects_pages(ListObjects::new().prefix("logs/"));
    /// while let Some(page) = pages.next_page().await {
    ///     for object in page?.contents {
    ///         println!("{} {}", object.key, object.size);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list_objects_pages(&self, op: ListObjects) -> crate::ListObjectsStream {
        crate::ListObjectsStream::new(self.clone(), ListObjectsPages::new(op))
    }
}
