//! What every driver's client holds and decides the same way, whatever its transport: the builder's
//! settings ([`ClientBuilder`]), the connection settings it hands to its transport
//! ([`ConnectionSettings`]), and the state a client's clones share ([`ClientState`]: the configuration with
//! the clock offset learned from the server, the event callback, the credentials provider and the exchange
//! hooks). A driver adds only its transport ([`BuildClient`]).

use std::marker::PhantomData;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::config::{Config, Timeouts};
use crate::credentials::{Credentials, ProvideCredentials};
use crate::error::Error;
use crate::fixture::{ExchangeRecorder, ExchangeResponder};
use crate::network::{Proxy, TlsRoots};
use crate::post_policy::{PostForm, PostPolicy};
use crate::retry::RetryPolicy;
use crate::task::{Event, Task};

/// A callback that sees every event a client's tasks report.
pub type EventHook = Box<dyn Fn(&Event) + Send + Sync>;

/// The connection settings a driver's transport is built with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// Every deadline and the minimum transfer rate.
    pub timeouts: Timeouts,
    /// How many idle keep-alive connections are kept.
    pub max_idle_connections: usize,
    /// Trust roots.
    pub roots: TlsRoots,
    /// The proxy for the endpoint, as [`crate::network::Network::proxy_for`] decided it.
    pub proxy: Option<Proxy>,
}

/// The optional transport hooks: record every exchange, or answer requests in memory (replay).
#[derive(Clone, Default)]
pub struct ExchangeHooks {
    /// Sees every completed exchange.
    pub recorder: Option<Arc<dyn ExchangeRecorder>>,
    /// Answers every request instead of the network.
    pub responder: Option<Arc<dyn ExchangeResponder>>,
}

impl std::fmt::Debug for ExchangeHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeHooks")
            .field("recorder", &self.recorder.is_some())
            .field("responder", &self.responder.is_some())
            .finish()
    }
}

/// A driver's client, built from what a [`ClientBuilder`] gathered.
pub trait BuildClient: Sized {
    /// The client over its own transport, built with `parts.settings`, sharing `parts.state`.
    fn build_client(parts: ClientParts) -> Self;
    /// A random number (the core has no randomness), for the retry jitter seed.
    fn random_u64() -> u64;
}

/// What a [`ClientBuilder`] hands to [`BuildClient::build_client`].
#[derive(Debug)]
#[non_exhaustive]
pub struct ClientParts {
    /// For the transport.
    pub settings: ConnectionSettings,
    /// Shared by the client's clones.
    pub state: ClientState,
}

/// Builds a client (`C`, a driver's `Client`) with non-default connection settings.
pub struct ClientBuilder<C> {
    config: Config,
    settings: ConnectionSettings,
    hooks: ExchangeHooks,
    on_event: Option<EventHook>,
    credentials: Option<Arc<dyn ProvideCredentials>>,
    client: PhantomData<fn() -> C>,
}

impl<C> std::fmt::Debug for ClientBuilder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<C: BuildClient> ClientBuilder<C> {
    /// The default settings for `config`: its timeouts and trust roots, 16 idle connections, and the proxy
    /// its network settings name for its endpoint, `env` giving the environment's proxy variables.
    pub fn new(config: Config, env: impl Fn(&str) -> Option<String>) -> Self {
        let settings = ConnectionSettings {
            timeouts: config.timeouts.clone(),
            max_idle_connections: 16,
            roots: config.network.roots.clone(),
            proxy: config
                .network
                .proxy_for(config.scheme(), &config.host(), env),
        };
        ClientBuilder {
            config,
            settings,
            hooks: ExchangeHooks::default(),
            on_event: None,
            credentials: None,
            client: PhantomData,
        }
    }

    /// How long establishing a connection (DNS, TCP, TLS) may take ([`Timeouts::connect`]). Default 10 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.timeouts.connect = d;
        self
    }

    /// How long no byte may move while a body is sent or received or the answer is awaited
    /// ([`Timeouts::idle`]). Default 30 s.
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.config.timeouts.idle = d;
        self
    }

    /// Every deadline and the minimum transfer rate at once (the config's [`Timeouts`], the same on both
    /// transports).
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.config.timeouts = timeouts;
        self
    }

    /// How many idle keep-alive connections are kept. Default 16.
    pub fn max_idle_connections(mut self, n: usize) -> Self {
        self.settings.max_idle_connections = n;
        self
    }

    /// Calls `f` with every event a task reports (progress, retries, clock-skew corrections…).
    pub fn on_event(mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Box::new(f));
        self
    }

    /// Hands every completed exchange (request head, body record, response) to `recorder`, e.g. a
    /// `cos_testkit::replay::Recorder` that writes a fixture.
    pub fn recorder(mut self, recorder: Arc<dyn ExchangeRecorder>) -> Self {
        self.hooks.recorder = Some(recorder);
        self
    }

    /// Answers every request with `responder` instead of the network (bodies are still read from their
    /// source and digested), e.g. a `cos_testkit::replay::Responder` replaying a fixture.
    pub fn responder(mut self, responder: Arc<dyn ExchangeResponder>) -> Self {
        self.hooks.responder = Some(responder);
        self
    }

    /// Signs with credentials from `provider` (e.g. a
    /// [`RefreshingCredentials`](crate::credentials::RefreshingCredentials) over an STS call) instead of
    /// the config's: asked before every step of every task, so a long upload switches to refreshed
    /// temporary credentials between requests. Presigned URLs and POST policies use them too.
    pub fn credentials_provider(mut self, provider: Arc<dyn ProvideCredentials>) -> Self {
        self.credentials = Some(provider);
        self
    }

    /// The client. A config with the default retry seed gets a random one, so that clients in different
    /// processes do not retry in lockstep; any other seed is kept (reproducible jitter).
    pub fn build(self) -> C {
        let seed = C::random_u64();
        C::build_client(self.into_parts(seed))
    }

    /// The settings and state, the retry seed replaced by `random_seed` when it is the default one.
    fn into_parts(self, random_seed: u64) -> ClientParts {
        let mut config = self.config;
        if config.retry.seed == RetryPolicy::default().seed {
            config.retry.seed = random_seed;
        }
        ClientParts {
            settings: ConnectionSettings {
                timeouts: config.timeouts.clone(),
                ..self.settings
            },
            state: ClientState {
                config: RwLock::new(config),
                on_event: self.on_event,
                credentials: self.credentials,
                hooks: self.hooks,
            },
        }
    }
}

/// The state a client's clones share: its configuration (with the clock offset learned from the server),
/// event callback, credentials provider and exchange hooks.
pub struct ClientState {
    config: RwLock<Config>,
    on_event: Option<EventHook>,
    credentials: Option<Arc<dyn ProvideCredentials>>,
    hooks: ExchangeHooks,
}

impl std::fmt::Debug for ClientState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientState")
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

impl ClientState {
    /// The current configuration, including the clock offset learned from `RequestTimeTooSkewed` answers.
    pub fn config(&self) -> Config {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The credentials provider set with [`ClientBuilder::credentials_provider`].
    pub fn credentials_provider(&self) -> Option<&Arc<dyn ProvideCredentials>> {
        self.credentials.as_ref()
    }

    /// The recorder and responder hooks.
    pub fn hooks(&self) -> &ExchangeHooks {
        &self.hooks
    }

    /// Takes in an event a task reported: a clock-skew correction becomes the offset every later task
    /// signs with; then the user's callback sees the event.
    pub fn handle_event(&self, event: &Event) {
        if let Event::ClockSkewAdjusted { offset_secs } = event {
            self.config
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .clock_offset_secs = *offset_secs;
        }
        if let Some(f) = &self.on_event {
            f(event);
        }
    }

    /// The configuration with the credentials to sign with at `now`: the provider's when one is set, else
    /// the config's own.
    pub fn signing_config(&self, now: SystemTime) -> Result<Config, Error> {
        let mut config = self.config();
        if let Some(provider) = &self.credentials {
            config.credentials = provider.credentials(now)?;
        }
        Ok(config)
    }

    /// Before a task poll: asks the provider (which caches) for the credentials valid at `now` and, when
    /// they differ from those the task last got (`last`, kept by the driver for the run), hands them to
    /// the task.
    pub fn refresh_credentials<T: Task + ?Sized>(
        &self,
        task: &mut T,
        last: &mut Option<Credentials>,
        now: SystemTime,
    ) -> Result<(), Error> {
        let Some(provider) = &self.credentials else {
            return Ok(());
        };
        let current = provider.credentials(now)?;
        if last.as_ref() != Some(&current) {
            task.set_credentials(current.clone());
            *last = Some(current);
        }
        Ok(())
    }

    /// A presigned URL ([`crate::presign::presigned_url`]) valid from `now` for `expires_in`, with the
    /// client's configuration, clock offset and (provider's) credentials.
    #[allow(clippy::too_many_arguments)]
    pub fn presigned_url(
        &self,
        method: http::Method,
        key: &str,
        now: SystemTime,
        expires_in: Duration,
        params: &[(String, String)],
        headers: &[(String, String)],
    ) -> Result<http::Uri, Error> {
        let config = self.signing_config(now)?;
        crate::presign::presigned_url(&config, method, key, now, expires_in, params, headers)
    }

    /// `policy` signed at `now` into a form, with the client's bucket, endpoint, clock offset and
    /// (provider's) credentials.
    pub fn sign_post_policy(
        &self,
        policy: &PostPolicy,
        now: SystemTime,
    ) -> Result<PostForm, Error> {
        let config = self.signing_config(now)?;
        policy.sign(&config, now)
    }
}

/// How a driver's `upload` attaches a body to an operation: bytes inside it, or a streamed source of this
/// length.
#[derive(Debug)]
pub enum Attach {
    /// The body's bytes, carried by the operation.
    Bytes(bytes::Bytes),
    /// A body of this length, streamed from the task's source.
    Source(u64),
}
/// The per-operation convenience methods of a driver's `Client`, written once for both drivers: expanded
/// inside `impl Client`, as `async fn`s awaiting each call (`client_operation_methods!(async)`) or as
/// plain ones (`client_operation_methods!(blocking)`). The client provides `execute`, `run`, `config`
/// and a private `upload(body, attach)`; `Body` and `NoSource` are the driver's.
#[macro_export]
macro_rules! client_operation_methods {
    (blocking) => {
        $crate::client_operation_methods!(@emit [] []);
    };
    (async) => {
        $crate::client_operation_methods!(@emit [async] [.await]);
    };
    (@emit [$($kw:tt)*] [$($aw:tt)*]) => {
        /// PUT Object with this body (replacing any body set on `op`).
        pub $($kw)* fn put_object(
            &self,
            op: $crate::ops::PutObject,
            body: impl Into<Body>,
        ) -> Result<$crate::ops::PutObjectOutput, $crate::Error> {
            self.upload(body.into(), |a| match a {
                $crate::client::Attach::Bytes(b) => op.with_bytes(b),
                $crate::client::Attach::Source(len) => op.with_source(len),
            }) $($aw)*
        }

        /// Append Object at the op's position with this body (replacing any body set on `op`).
        pub $($kw)* fn append_object(
            &self,
            op: $crate::ops::AppendObject,
            body: impl Into<Body>,
        ) -> Result<$crate::ops::AppendObjectOutput, $crate::Error> {
            self.upload(body.into(), |a| match a {
                $crate::client::Attach::Bytes(b) => op.with_bytes(b),
                $crate::client::Attach::Source(len) => op.with_source(len),
            }) $($aw)*
        }

        /// Upload Part with this body (replacing any body set on `op`).
        pub $($kw)* fn upload_part(
            &self,
            op: $crate::ops::UploadPart,
            body: impl Into<Body>,
        ) -> Result<$crate::ops::UploadPartOutput, $crate::Error> {
            self.upload(body.into(), |a| match a {
                $crate::client::Attach::Bytes(b) => op.with_bytes(b),
                $crate::client::Attach::Source(len) => op.with_source(0, len),
            }) $($aw)*
        }

        /// HEAD Object: the object's metadata. For conditions or a version, use
        /// [`execute`](Self::execute) with a [`HeadObject`](cos_core::ops::HeadObject).
        pub $($kw)* fn head_object(&self, key: impl Into<String>) -> Result<$crate::ops::ObjectInfo, $crate::Error> {
            self.execute($crate::ops::HeadObject::new(key)) $($aw)*
        }

        /// GET Object (the whole body, or the op's range, read into memory).
        pub $($kw)* fn get_object(&self, op: $crate::ops::GetObject) -> Result<$crate::ops::GetObjectOutput, $crate::Error> {
            self.execute(op) $($aw)*
        }

        /// PUT Object Tagging: replaces the tags of `key`.
        pub $($kw)* fn put_object_tagging(
            &self,
            key: impl Into<String>,
            tags: $crate::ops::Tags,
        ) -> Result<$crate::ops::ObjectTaggingOutput, $crate::Error> {
            self.execute($crate::ops::PutObjectTagging::new(key, tags)) $($aw)*
        }

        /// GET Object Tagging: the tags of `key`.
        pub $($kw)* fn get_object_tagging(&self, key: impl Into<String>) -> Result<$crate::ops::Tags, $crate::Error> {
            Ok(self.execute($crate::ops::GetObjectTagging::new(key)) $($aw)*?.tags)
        }

        /// DELETE Object Tagging: removes all tags of `key`.
        pub $($kw)* fn delete_object_tagging(
            &self,
            key: impl Into<String>,
        ) -> Result<$crate::ops::ObjectTaggingOutput, $crate::Error> {
            self.execute($crate::ops::DeleteObjectTagging::new(key)) $($aw)*
        }

        /// PUT Object ACL (canned ACL and grant headers).
        pub $($kw)* fn put_object_acl(&self, op: $crate::ops::PutObjectAcl) -> Result<$crate::ops::PutObjectAclOutput, $crate::Error> {
            self.execute(op) $($aw)*
        }

        /// GET Object ACL: owner and grants of `key`.
        pub $($kw)* fn get_object_acl(&self, key: impl Into<String>) -> Result<$crate::ops::ObjectAcl, $crate::Error> {
            self.execute($crate::ops::GetObjectAcl::new(key)) $($aw)*
        }

        /// Initiate Multipart Upload.
        pub $($kw)* fn initiate_multipart_upload(
            &self,
            op: $crate::ops::InitiateMultipartUpload,
        ) -> Result<$crate::ops::InitiateMultipartUploadOutput, $crate::Error> {
            self.execute(op) $($aw)*
        }

        /// List Parts of a multipart upload.
        pub $($kw)* fn list_parts(&self, op: $crate::ops::ListParts) -> Result<$crate::ops::ListPartsOutput, $crate::Error> {
            self.execute(op) $($aw)*
        }

        /// Complete Multipart Upload.
        pub $($kw)* fn complete_multipart_upload(
            &self,
            op: $crate::ops::CompleteMultipartUpload,
        ) -> Result<$crate::ops::CompleteMultipartUploadOutput, $crate::Error> {
            self.execute(op) $($aw)*
        }

        /// Abort Multipart Upload.
        pub $($kw)* fn abort_multipart_upload(
            &self,
            op: $crate::ops::AbortMultipartUpload,
        ) -> Result<$crate::ops::AbortMultipartUploadOutput, $crate::Error> {
            self.execute(op) $($aw)*
        }

        /// List Multipart Uploads in progress.
        pub $($kw)* fn list_multipart_uploads(
            &self,
            op: $crate::ops::ListMultipartUploads,
        ) -> Result<$crate::ops::ListMultipartUploadsOutput, $crate::Error> {
            self.execute(op) $($aw)*
        }

        /// PUT Bucket cors: replaces the bucket's CORS rules (what lets browser pages on other origins upload).
        pub $($kw)* fn put_bucket_cors(&self, rules: Vec<$crate::ops::CorsRule>) -> Result<$crate::ops::BucketCorsOutput, $crate::Error> {
            self.execute($crate::ops::PutBucketCors::new(rules)) $($aw)*
        }

        /// GET Bucket cors: the bucket's CORS rules (404 `NoSuchCORSConfiguration` when it has none).
        pub $($kw)* fn get_bucket_cors(&self) -> Result<$crate::ops::GetBucketCorsOutput, $crate::Error> {
            self.execute($crate::ops::GetBucketCors::new()) $($aw)*
        }

        /// DELETE Bucket cors: removes the bucket's CORS rules.
        pub $($kw)* fn delete_bucket_cors(&self) -> Result<$crate::ops::BucketCorsOutput, $crate::Error> {
            self.execute($crate::ops::DeleteBucketCors::new()) $($aw)*
        }

        /// DELETE Object: removes `key` (succeeds when it does not exist).
        pub $($kw)* fn delete_object(&self, key: impl Into<String>) -> Result<$crate::ops::DeleteObjectOutput, $crate::Error> {
            self.execute($crate::ops::DeleteObject::new(key)) $($aw)*
        }

        /// Delete Multiple Objects: up to 1000 keys in one request, with a result per key.
        pub $($kw)* fn delete_objects(&self, op: $crate::ops::DeleteObjects) -> Result<$crate::ops::DeleteObjectsOutput, $crate::Error> {
            self.execute(op) $($aw)*
        }

        /// List Objects: one page (see [`list_objects_pages`](Self::list_objects_pages) for all of them).
        pub $($kw)* fn list_objects(&self, op: $crate::ops::ListObjects) -> Result<$crate::ops::ListObjectsOutput, $crate::Error> {
            self.execute(op) $($aw)*
        }

        /// PUT Object - Copy: a server-side copy of an object of at most 5 GiB.
        pub $($kw)* fn copy_object(&self, op: $crate::ops::CopyObject) -> Result<$crate::ops::CopyObjectOutput, $crate::Error> {
            self.execute(op) $($aw)*
        }

        /// Upload Part - Copy: one part of a multipart upload copied server-side from a source range.
        pub $($kw)* fn upload_part_copy(&self, op: $crate::ops::UploadPartCopy) -> Result<$crate::ops::CopyObjectOutput, $crate::Error> {
            self.execute(op) $($aw)*
        }

        /// Copies `source` to `dest_key` server-side, whatever its size: one PUT Object - Copy at or below
        /// [`CopyOptions::threshold`](cos_core::copy::CopyOptions::threshold), parallel Upload Part - Copy
        /// ranges above it (the decisions are [`MultipartCopy`](cos_core::copy::MultipartCopy)'s).
        pub $($kw)* fn copy(
            &self,
            source: $crate::ops::CopySource,
            dest_key: impl Into<String>,
            options: &$crate::copy::CopyOptions,
        ) -> Result<$crate::copy::CopyOutcome, $crate::Error> {
            let task = $crate::copy::MultipartCopy::new(self.config(), source, dest_key, options)?;
            self.run(task, &NoSource) $($aw)*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    impl BuildClient for ClientParts {
        fn build_client(parts: ClientParts) -> Self {
            parts
        }
        fn random_u64() -> u64 {
            0x5eed
        }
    }

    fn config() -> Config {
        Config::new(
            "b-1250000000",
            "ap-guangzhou",
            Credentials::new("AKID", "KEY"),
        )
        .unwrap()
    }

    #[test]
    fn build_replaces_only_the_default_retry_seed() {
        let parts: ClientParts = ClientBuilder::new(config(), |_| None).build();
        assert_eq!(parts.state.config().retry.seed, 0x5eed);
        let mut kept = config();
        kept.retry.seed = 7;
        let parts: ClientParts = ClientBuilder::new(kept, |_| None).build();
        assert_eq!(parts.state.config().retry.seed, 7);
    }

    #[test]
    fn builder_settings_reach_the_transport() {
        let parts: ClientParts = ClientBuilder::new(config(), |_| None)
            .connect_timeout(Duration::from_secs(3))
            .read_timeout(Duration::from_secs(4))
            .max_idle_connections(2)
            .build();
        assert_eq!(parts.settings.timeouts.connect, Duration::from_secs(3));
        assert_eq!(parts.settings.timeouts.idle, Duration::from_secs(4));
        assert_eq!(parts.settings.max_idle_connections, 2);
        assert_eq!(parts.state.config().timeouts, parts.settings.timeouts);
        assert!(parts.settings.proxy.is_none());
        // The environment's proxy variables are asked through `env`.
        let env = |name: &str| (name == "HTTPS_PROXY").then(|| "http://proxy:3128".to_string());
        let parts: ClientParts = ClientBuilder::new(config(), env).build();
        assert_eq!(parts.settings.proxy.unwrap().authority(), "proxy:3128");
    }

    #[test]
    fn clock_skew_events_change_the_signing_offset_and_reach_the_callback() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let parts: ClientParts = ClientBuilder::new(config(), |_| None)
            .on_event(move |e| s.lock().unwrap().push(e.clone()))
            .build();
        let state = parts.state;
        state.handle_event(&Event::ClockSkewAdjusted { offset_secs: -42 });
        assert_eq!(state.config().clock_offset_secs, -42);
        state.handle_event(&Event::Paused);
        assert_eq!(state.config().clock_offset_secs, -42);
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_provider_supplies_the_signing_credentials_and_refreshes_tasks() {
        struct Rotating(Mutex<u32>);
        impl ProvideCredentials for Rotating {
            fn credentials(&self, _now: SystemTime) -> Result<Credentials, Error> {
                let mut n = self.0.lock().unwrap();
                *n += 1;
                Ok(Credentials::new(format!("AK{n}"), "SK"))
            }
        }
        let parts: ClientParts = ClientBuilder::new(config(), |_| None).build();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            parts.state.signing_config(now).unwrap().credentials,
            config().credentials
        );
        let parts: ClientParts = ClientBuilder::new(config(), |_| None)
            .credentials_provider(Arc::new(Rotating(Mutex::new(0))))
            .build();
        let state = parts.state;
        assert_eq!(
            state.signing_config(now).unwrap().credentials.secret_id(),
            "AK1"
        );
        let mut task =
            crate::task::OneShot::new(crate::ops::HeadObject::new("k"), config()).unwrap();
        let mut last = None;
        state
            .refresh_credentials(&mut task, &mut last, now)
            .unwrap();
        assert_eq!(last.as_ref().unwrap().secret_id(), "AK2");
        state
            .refresh_credentials(&mut task, &mut last, now)
            .unwrap();
        assert_eq!(last.as_ref().unwrap().secret_id(), "AK3");
        let url = state
            .presigned_url(
                http::Method::GET,
                "a.txt",
                now,
                Duration::from_secs(60),
                &[],
                &[],
            )
            .unwrap();
        assert!(url.to_string().contains("AK4"), "{url}");
    }

    struct Counting(Mutex<Vec<String>>);

    impl ExchangeRecorder for Counting {
        fn record(
            &self,
            request: &http::Request<crate::body::RequestBody>,
            _body: crate::fixture::BodyRecord,
            response: &http::Response<bytes::Bytes>,
        ) {
            let line = format!(
                "{} {} {}",
                request.method(),
                request.uri(),
                response.status()
            );
            self.0.lock().unwrap().push(line);
        }
    }

    struct Fixed;

    impl ProvideCredentials for Fixed {
        fn credentials(&self, _now: SystemTime) -> Result<Credentials, Error> {
            Ok(Credentials::new("AKIDPROVIDED", "provided-secret-key-9f3"))
        }
    }

    #[test]
    fn debug_names_the_settings_and_never_the_secret() {
        let secret = "super-secret-key-7c1d";
        let config = Config::new(
            "b-1250000000",
            "ap-guangzhou",
            Credentials::new("AKIDVISIBLE", secret),
        )
        .unwrap();
        let builder = ClientBuilder::<ClientParts>::new(config, |_| None)
            .max_idle_connections(3)
            .credentials_provider(Arc::new(Fixed));
        let text = format!("{builder:?}");
        assert!(text.starts_with("ClientBuilder {"), "{text}");
        assert!(text.contains("b-1250000000"), "{text}");
        assert!(text.contains("max_idle_connections: 3"), "{text}");
        assert!(!text.contains(secret), "{text}");
        assert!(!text.contains("provided-secret-key-9f3"), "{text}");

        let parts = builder.build();
        let text = format!("{:?}", parts.state);
        assert!(text.starts_with("ClientState {"), "{text}");
        assert!(text.contains("b-1250000000"), "{text}");
        assert!(text.contains("AKIDVISIBLE"), "{text}");
        assert!(!text.contains(secret), "{text}");
        assert!(!text.contains("provided-secret-key-9f3"), "{text}");
        let text = format!("{parts:?}");
        assert!(text.contains("ClientState {"), "{text}");
        assert!(!text.contains(secret), "{text}");

        assert_eq!(
            format!("{:?}", ExchangeHooks::default()),
            "ExchangeHooks { recorder: false, responder: false }"
        );
        let hooks = ExchangeHooks {
            recorder: Some(Arc::new(Counting(Mutex::new(Vec::new())))),
            responder: None,
        };
        assert_eq!(
            format!("{hooks:?}"),
            "ExchangeHooks { recorder: true, responder: false }"
        );
    }

    #[test]
    fn the_state_hands_out_the_provider_and_the_recorder_it_was_built_with() {
        let parts: ClientParts = ClientBuilder::new(config(), |_| None).build();
        assert!(parts.state.credentials_provider().is_none());
        assert!(parts.state.hooks().recorder.is_none());

        let recorder = Arc::new(Counting(Mutex::new(Vec::new())));
        let parts: ClientParts = ClientBuilder::new(config(), |_| None)
            .credentials_provider(Arc::new(Fixed))
            .recorder(recorder.clone())
            .build();
        let state = parts.state;
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let provider = state.credentials_provider().expect("the provider");
        assert_eq!(
            provider.credentials(now).unwrap().secret_id(),
            "AKIDPROVIDED"
        );

        // A driver runs each exchange through the state's hooks: the recorder sees it.
        let transmit = crate::task::Transmit {
            id: crate::task::RequestId(1),
            operation: "HeadObject",
            attempt: 1,
            request: http::Request::head("http://b.example/k")
                .body(crate::body::RequestBody::Empty)
                .unwrap(),
        };
        let (exchange, _request) = crate::exchange::Exchange::start(transmit, state.hooks());
        let response = http::Response::builder()
            .status(200)
            .body(bytes::Bytes::new())
            .unwrap();
        exchange.finish(Ok((response, None)), state.hooks());
        assert_eq!(
            *recorder.0.lock().unwrap(),
            vec!["HEAD http://b.example/k 200 OK".to_string()]
        );
    }
}
