//! The [`Client`]: one loop over the core's task protocol, plus one method per operation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Instant, SystemTime};

use cos_core::client::{Attach, BuildClient, ClientParts, ClientState};
use cos_core::error::{TransportError, TransportErrorKind};
use cos_core::ops::{ListObjects, ListObjectsPages, Operation};
use cos_core::task::{Command, Event, Input, IoResult, Now, OneShot, Output, Task, Transmit};
use cos_core::{Config, Error};

use crate::body::{Body, BodySource, NoSource, Source};
use crate::transfer::LocalIo;
use crate::transport::Transport;

struct Inner {
    transport: Transport,
    state: ClientState,
}

/// A blocking COS client. Cheap to clone (the connection pool and the configuration are shared), `Send`
/// and `Sync`.
///
/// ```no_run
/// use cos_blocking::{Client, Config, Credentials, ops::PutObject};
/// let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
/// let client = Client::new(config);
/// let out = client.put_object(PutObject::new("hello.txt"), "hello")?;
/// println!("{}", out.etag);
/// # Ok::<(), cos_blocking::Error>(())
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

/// The most worker threads one [`Client::run`] starts (a task rarely has more requests in flight).
const MAX_WORKERS: usize = 32;

/// What the worker threads and command senders deliver to the loop.
pub(crate) enum Msg {
    /// The answer to a request.
    Input(Input),
    /// A user command for the task.
    Command(Command),
}

/// The channel of one [`Client::drive`] loop; [`Channel::commands`] gives a way to command it from another
/// thread.
pub(crate) struct Channel {
    tx: mpsc::Sender<Msg>,
    rx: mpsc::Receiver<Msg>,
}

impl Channel {
    pub(crate) fn new() -> Channel {
        let (tx, rx) = mpsc::channel();
        Channel { tx, rx }
    }

    pub(crate) fn commands(&self) -> Commands {
        Commands(self.tx.clone())
    }
}

/// Gives [`Command`]s to a running [`Client::drive`] loop.
#[derive(Clone, Debug)]
pub(crate) struct Commands(mpsc::Sender<Msg>);

impl Commands {
    /// Sends the command (a no-op once the loop has ended).
    pub(crate) fn send(&self, command: Command) {
        let _ = self.0.send(Msg::Command(command));
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
    /// use cos_blocking::{Client, Config, Credentials};
    /// let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
    /// let client = Client::builder(config)
    ///     .connect_timeout(Duration::from_secs(5))
    ///     .read_timeout(Duration::from_secs(30))
    ///     .max_idle_connections(4)
    ///     .build();
    /// # Ok::<(), cos_blocking::Error>(())
    /// ```
    pub fn builder(config: Config) -> ClientBuilder {
        ClientBuilder::new(config, |name| std::env::var(name).ok())
    }

    /// The current configuration, including the clock offset learned from `RequestTimeTooSkewed` answers.
    pub fn config(&self) -> Config {
        self.inner.state.config()
    }

    /// The connection pool, for calls that stream a response body ([`crate::ObjectReader`]).
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

    /// Runs a task to the end: sends each request it emits, feeds back each answer, sleeps when it waits.
    /// `source` serves the task's streamed bodies ([`cos_core::task::RequestBody::Source`]).
    ///
    /// Requests the task has in flight at the same time (the parts of a multipart upload) are sent in
    /// parallel by a few worker threads sharing the client's connection pool; a lone request is sent on the
    /// calling thread. When `run` returns, none of the task's requests is still being sent.
    pub fn run<T: Task>(&self, mut task: T, source: &dyn Source) -> Result<T::Output, Error> {
        self.drive(&mut task, source, None, Channel::new(), false)
    }

    /// The driver loop behind [`run`](Self::run): also performs the task's local I/O with `io` and feeds it
    /// the commands sent on `channel` (`commanded`: someone may send one, so an idle wait is legal).
    pub(crate) fn drive<T: Task>(
        &self,
        task: &mut T,
        source: &dyn Source,
        mut io: Option<&mut LocalIo<'_>>,
        channel: Channel,
        commanded: bool,
    ) -> Result<T::Output, Error> {
        let Channel { tx, rx } = channel;
        let (job_tx, job_rx) = mpsc::channel::<Transmit>();
        let job_rx = Mutex::new(job_rx);
        let stopping = AtomicBool::new(false);
        let inner = &*self.inner;
        let parent = tracing::Span::current();
        let mut signing = None;
        std::thread::scope(|scope| {
            let mut workers = 0usize;
            let mut in_flight = 0usize;
            let result = 'run: loop {
                let mut ready = Vec::new();
                let until = loop {
                    if let Err(e) =
                        self.inner
                            .state
                            .refresh_credentials(task, &mut signing, SystemTime::now())
                    {
                        break 'run Err(e);
                    }
                    match task.poll_output(now()) {
                        Output::Transmit(t) => ready.push(t),
                        Output::Io(o) => {
                            let result = match io.as_deref_mut() {
                                Some(io) => io.perform(o.request),
                                None => IoResult::Failed("no local I/O for this task".into()),
                            };
                            task.handle_input(now(), Input::Io { id: o.id, result });
                        }
                        Output::Event(e) => {
                            if let Some(io) = io.as_deref() {
                                io.report(&e);
                            }
                            self.event(e);
                        }
                        Output::Wait { until } => break until,
                        Output::Done(result) => break 'run result,
                    }
                };
                let mut answered = false;
                if in_flight == 0 && ready.len() == 1 && until.is_none() {
                    // A lone request of a task with no timer: send it here, as a single operation would.
                    // (A task with a timer, such as an upload renewing its checkpoint lease, keeps the
                    // loop free to serve it.)
                    let t = ready.pop().expect("one request");
                    let input = inner.transport.send(t, source, inner.state.hooks());
                    task.handle_input(now(), input);
                    answered = true;
                }
                for t in ready {
                    in_flight += 1;
                    if workers < in_flight && workers < MAX_WORKERS {
                        workers += 1;
                        let (tx, job_rx, parent) = (tx.clone(), &job_rx, parent.clone());
                        let stopping = &stopping;
                        scope.spawn(move || {
                            let _enter = parent.enter();
                            loop {
                                let job = job_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                                let Ok(t) = job else { break };
                                if stopping.load(Ordering::SeqCst) {
                                    continue; // the loop has ended: drop what is left
                                }
                                let input = inner.transport.send(t, source, inner.state.hooks());
                                if tx.send(Msg::Input(input)).is_err() {
                                    break;
                                }
                            }
                        });
                    }
                    job_tx.send(t).expect("the workers outlive the loop");
                }
                let msg = if answered {
                    rx.try_recv().ok()
                } else {
                    match until {
                        Some(t) => {
                            let d = t.saturating_duration_since(Instant::now());
                            if d.is_zero() {
                                rx.try_recv().ok()
                            } else {
                                rx.recv_timeout(d).ok()
                            }
                        }
                        None if in_flight > 0 || commanded => rx.recv().ok(),
                        None => {
                            // Nothing is in flight and no timer is set, so only a task bug gets here.
                            break 'run Err(Error::Transport(TransportError::new(
                                TransportErrorKind::Other,
                                "the task waits for an answer to a request it never emitted",
                            )));
                        }
                    }
                };
                // Feed back everything that has arrived, without blocking again.
                let mut next = msg;
                while let Some(m) = next {
                    match m {
                        Msg::Input(input) => {
                            in_flight -= 1;
                            task.handle_input(now(), input);
                        }
                        Msg::Command(c) => task.handle_command(now(), c),
                    }
                    next = rx.try_recv().ok();
                }
            };
            // Requests not yet picked up are dropped; those being sent finish before the scope ends.
            stopping.store(true, Ordering::SeqCst);
            drop(job_tx);
            result
        })
    }

    /// Runs one operation whose body (if any) is inside it, with retries and clock-skew correction.
    pub fn execute<O: Operation>(&self, op: O) -> Result<O::Output, Error> {
        self.run(OneShot::new(op, self.config())?, &NoSource)
    }

    fn upload<O: Operation>(
        &self,
        body: Body,
        attach: impl FnOnce(Attach) -> O,
    ) -> Result<O::Output, Error> {
        match body {
            Body::Bytes(b) => self.execute(attach(Attach::Bytes(b))),
            body => {
                let replayable = body.is_replayable();
                let mut task = OneShot::new(attach(Attach::Source(body.len())), self.config())?;
                if !replayable {
                    task = task.not_replayable();
                }
                self.run(task, &BodySource::new(body))
            }
        }
    }

    cos_core::client_operation_methods!(blocking);

    /// List Objects, every page from `op`'s marker on, one request per iteration.
    ///
    /// ```no_run
    /// # fn f(client: cos_blocking::Client) -> Result<(), cos_blocking::Error> {
    /// use cos_blocking::ops::ListObjects;
    /// for page in client.list_objects_pages(ListObjects::new().prefix("logs/")) {
    ///     for object in page?.contents {
    ///         println!("{} {}", object.key, object.size);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list_objects_pages(&self, op: ListObjects) -> crate::ListObjectsIter {
        crate::ListObjectsIter::new(self.clone(), ListObjectsPages::new(op))
    }
}
