//! Credentials: a SecretId, a SecretKey and, for temporary (STS) credentials, a security token; and the
//! [`ProvideCredentials`] sources that hand them out (static, environment, cached-and-refreshed).

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::error::{Error, InvalidInput};

/// A COS key pair, with an optional security token for temporary (STS) credentials.
///
/// `Debug` shows the SecretId only; the SecretKey and the token never appear in `Debug`, logs or errors.
///
/// ```
/// let c = cos_core::Credentials::new("AKIDEXAMPLE", "sk-123").with_security_token("tok-456");
/// let shown = format!("{c:?}");
/// assert!(shown.contains("AKIDEXAMPLE"));
/// assert!(!shown.contains("sk-123") && !shown.contains("tok-456"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    secret_id: String,
    secret_key: String,
    security_token: Option<String>,
    expires_at: Option<SystemTime>,
}

impl Credentials {
    /// Long-lived credentials from a SecretId and a SecretKey.
    pub fn new(secret_id: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Credentials {
            secret_id: secret_id.into(),
            secret_key: secret_key.into(),
            security_token: None,
            expires_at: None,
        }
    }

    /// Adds the security token of temporary credentials; it is sent as `x-cos-security-token`.
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(token.into());
        self
    }

    /// Records when temporary credentials expire, so that providers can refresh them in time.
    pub fn with_expiry(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// The SecretId (public; it appears in every `Authorization`).
    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The SecretKey. Never log it.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The security token of temporary credentials, if any. Never log it.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// When temporary credentials expire, if known.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// True when both the SecretId and the SecretKey are non-empty.
    pub fn is_complete(&self) -> bool {
        !self.secret_id.is_empty() && !self.secret_key.is_empty()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A source of credentials, asked before each signature.
///
/// Implementations read no clock: `now` is passed in by the driver (as every time in cos-core), so that
/// expiry and refresh decisions are testable with virtual time.
///
/// ```
/// use std::time::SystemTime;
/// use cos_core::credentials::{ProvideCredentials, StaticCredentials};
/// let p = StaticCredentials::new(cos_core::Credentials::new("AKID", "KEY"));
/// assert_eq!(p.credentials(SystemTime::UNIX_EPOCH)?.secret_id(), "AKID");
/// # Ok::<(), cos_core::Error>(())
/// ```
pub trait ProvideCredentials: Send + Sync {
    /// Credentials valid at `now`.
    fn credentials(&self, now: SystemTime) -> Result<Credentials, Error>;
}

impl ProvideCredentials for Credentials {
    fn credentials(&self, _now: SystemTime) -> Result<Credentials, Error> {
        Ok(self.clone())
    }
}

impl<T: ProvideCredentials + ?Sized> ProvideCredentials for std::sync::Arc<T> {
    fn credentials(&self, now: SystemTime) -> Result<Credentials, Error> {
        (**self).credentials(now)
    }
}

impl<T: ProvideCredentials + ?Sized> ProvideCredentials for Box<T> {
    fn credentials(&self, now: SystemTime) -> Result<Credentials, Error> {
        (**self).credentials(now)
    }
}

/// Always the same credentials.
#[derive(Clone, Debug)]
pub struct StaticCredentials(Credentials);

impl StaticCredentials {
    /// Wraps fixed credentials.
    pub fn new(credentials: Credentials) -> Self {
        StaticCredentials(credentials)
    }
}

impl ProvideCredentials for StaticCredentials {
    fn credentials(&self, _now: SystemTime) -> Result<Credentials, Error> {
        Ok(self.0.clone())
    }
}

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Credentials from the environment: `COS_SECRET_ID`, `COS_SECRET_KEY` and, for temporary credentials,
/// `COS_SECURITY_TOKEN`; when `COS_SECRET_ID` is not set, Tencent Cloud's `TENCENTCLOUD_SECRETID`,
/// `TENCENTCLOUD_SECRETKEY` and `TENCENTCLOUD_SESSIONTOKEN` (never a mix of the two families).
///
/// The variables are read on every call (so a rotated token is picked up); a missing or empty SecretId or
/// SecretKey is [`InvalidInput::MissingCredentials`]. An empty token counts as absent.
///
/// ```
/// use std::time::SystemTime;
/// use cos_core::credentials::{EnvCredentials, ProvideCredentials};
/// // `with_lookup` replaces the process environment, e.g. in tests.
/// let env = EnvCredentials::with_lookup(|name| match name {
///     "COS_SECRET_ID" => Some("AKID".to_string()),
///     "COS_SECRET_KEY" => Some("KEY".to_string()),
///     _ => None,
/// });
/// let c = env.credentials(SystemTime::UNIX_EPOCH)?;
/// assert_eq!((c.secret_id(), c.security_token()), ("AKID", None));
/// # Ok::<(), cos_core::Error>(())
/// ```
pub struct EnvCredentials {
    lookup: Box<Lookup>,
}

impl EnvCredentials {
    /// The SecretId variable.
    pub const SECRET_ID: &'static str = "COS_SECRET_ID";
    /// The SecretKey variable.
    pub const SECRET_KEY: &'static str = "COS_SECRET_KEY";
    /// The security token variable.
    pub const SECURITY_TOKEN: &'static str = "COS_SECURITY_TOKEN";
    /// Tencent Cloud's SecretId variable, read when `COS_SECRET_ID` is not set.
    pub const TENCENTCLOUD_SECRET_ID: &'static str = "TENCENTCLOUD_SECRETID";
    /// Tencent Cloud's SecretKey variable.
    pub const TENCENTCLOUD_SECRET_KEY: &'static str = "TENCENTCLOUD_SECRETKEY";
    /// Tencent Cloud's session token variable.
    pub const TENCENTCLOUD_SESSION_TOKEN: &'static str = "TENCENTCLOUD_SESSIONTOKEN";

    /// Reads the process environment.
    pub fn new() -> Self {
        Self::with_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` instead of the process environment.
    pub fn with_lookup(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        EnvCredentials {
            lookup: Box::new(lookup),
        }
    }
}

impl Default for EnvCredentials {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for EnvCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvCredentials { COS_SECRET_ID | TENCENTCLOUD_SECRETID, … }")
    }
}

impl ProvideCredentials for EnvCredentials {
    fn credentials(&self, _now: SystemTime) -> Result<Credentials, Error> {
        let get = |name: &str| (self.lookup)(name).filter(|v| !v.is_empty());
        let [id, key, token] = if get(Self::SECRET_ID).is_some() {
            [Self::SECRET_ID, Self::SECRET_KEY, Self::SECURITY_TOKEN]
        } else {
            [
                Self::TENCENTCLOUD_SECRET_ID,
                Self::TENCENTCLOUD_SECRET_KEY,
                Self::TENCENTCLOUD_SESSION_TOKEN,
            ]
        };
        let (Some(id), Some(key)) = (get(id), get(key)) else {
            return Err(InvalidInput::MissingCredentials.into());
        };
        let mut c = Credentials::new(id, key);
        if let Some(token) = get(token) {
            c = c.with_security_token(token);
        }
        Ok(c)
    }
}

type Fetch = dyn Fn(SystemTime) -> Result<Credentials, Error> + Send + Sync;

/// Caches credentials from `fetch` (an STS call, a file, a vault…) and fetches again `refresh_before` their
/// [`Credentials::expires_at`].
///
/// - Credentials without an expiry are kept for good (until [`RefreshingCredentials::invalidate`]).
/// - Fetches are serialised by an inner mutex: concurrent callers wait for one fetch rather than starting
///   several.
/// - When a refresh fails but the cached credentials have not yet expired (`now < expires_at`), the cached
///   ones are returned and the next call tries again; once they have expired, the fetch error is returned.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use cos_core::credentials::{ProvideCredentials, RefreshingCredentials};
/// use cos_core::Credentials;
/// let provider = RefreshingCredentials::new(
///     |now: SystemTime| Ok(Credentials::new("tmp-id", "tmp-key").with_security_token("tok")
///         .with_expiry(now + Duration::from_secs(1800))),
///     Duration::from_secs(300),
/// );
/// let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let c = provider.credentials(t0)?;
/// assert_eq!(c.expires_at(), Some(t0 + Duration::from_secs(1800)));
/// // Still cached 20 minutes later; fetched again 25 minutes later (5 minutes before expiry).
/// assert_eq!(provider.credentials(t0 + Duration::from_secs(1200))?.expires_at(), c.expires_at());
/// assert_ne!(provider.credentials(t0 + Duration::from_secs(1500))?.expires_at(), c.expires_at());
/// # Ok::<(), cos_core::Error>(())
/// ```
pub struct RefreshingCredentials {
    fetch: Box<Fetch>,
    refresh_before: Duration,
    cached: Mutex<Option<Credentials>>,
}

impl RefreshingCredentials {
    /// Fetches with `fetch(now)` on first use and whenever `now >= expires_at - refresh_before`.
    pub fn new(
        fetch: impl Fn(SystemTime) -> Result<Credentials, Error> + Send + Sync + 'static,
        refresh_before: Duration,
    ) -> Self {
        RefreshingCredentials {
            fetch: Box::new(fetch),
            refresh_before,
            cached: Mutex::new(None),
        }
    }

    /// Drops the cached credentials, so that the next call fetches (e.g. after COS rejected them).
    pub fn invalidate(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Credentials>> {
        // A panic in `fetch` poisons the mutex; the cached value is still consistent, so keep going.
        self.cached.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self, c: &Credentials, now: SystemTime) -> bool {
        match c.expires_at() {
            None => true,
            Some(at) => match at.checked_sub(self.refresh_before) {
                Some(refresh_at) => now < refresh_at,
                None => false,
            },
        }
    }
}

impl ProvideCredentials for RefreshingCredentials {
    fn credentials(&self, now: SystemTime) -> Result<Credentials, Error> {
        let mut cached = self.lock();
        if let Some(c) = cached.as_ref() {
            if self.fresh(c, now) {
                return Ok(c.clone());
            }
        }
        match (self.fetch)(now) {
            Ok(c) => {
                if !c.is_complete() {
                    return Err(InvalidInput::MissingCredentials.into());
                }
                *cached = Some(c.clone());
                Ok(c)
            }
            Err(e) => match cached.as_ref() {
                Some(c) if c.expires_at().is_some_and(|at| now < at) => Ok(c.clone()),
                _ => Err(e),
            },
        }
    }
}

impl fmt::Debug for RefreshingCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshingCredentials")
            .field("refresh_before", &self.refresh_before)
            .field("cached", &*self.lock())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn env_credentials_debug_names_the_variables_and_no_value() {
        let env = super::EnvCredentials::with_lookup(|name| Some(format!("value-of-{name}")));
        let text = format!("{env:?}");
        assert!(text.starts_with("EnvCredentials {"), "{text}");
        assert!(text.contains("COS_SECRET_ID"), "{text}");
        assert!(!text.contains("value-of-"), "{text}");
    }

    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn static_and_plain() {
        let c = Credentials::new("id", "key");
        assert_eq!(
            StaticCredentials::new(c.clone()).credentials(t(0)).unwrap(),
            c
        );
        assert_eq!(c.credentials(t(0)).unwrap(), c);
        let boxed: Box<dyn ProvideCredentials> = Box::new(c.clone());
        assert_eq!(Arc::new(boxed).credentials(t(0)).unwrap(), c);
    }

    fn env(vars: &[(&str, &str)]) -> EnvCredentials {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EnvCredentials::with_lookup(move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn env_credentials() {
        let c = env(&[
            ("COS_SECRET_ID", "id"),
            ("COS_SECRET_KEY", "key"),
            ("COS_SECURITY_TOKEN", "tok"),
        ])
        .credentials(t(0))
        .unwrap();
        assert_eq!(
            (c.secret_id(), c.secret_key(), c.security_token()),
            ("id", "key", Some("tok"))
        );
        let c = env(&[
            ("COS_SECRET_ID", "id"),
            ("COS_SECRET_KEY", "key"),
            ("COS_SECURITY_TOKEN", ""),
        ])
        .credentials(t(0))
        .unwrap();
        assert_eq!(c.security_token(), None);
        for vars in [
            &[("COS_SECRET_ID", "id")][..],
            &[("COS_SECRET_KEY", "key")][..],
            &[("COS_SECRET_ID", ""), ("COS_SECRET_KEY", "key")][..],
            &[][..],
        ] {
            assert_eq!(
                env(vars).credentials(t(0)),
                Err(Error::InvalidInput(InvalidInput::MissingCredentials))
            );
        }
        assert!(!format!("{:?}", env(&[])).contains("key\""));
        let c = env(&[
            ("TENCENTCLOUD_SECRETID", "tid"),
            ("TENCENTCLOUD_SECRETKEY", "tkey"),
            ("TENCENTCLOUD_SESSIONTOKEN", "ttok"),
            ("COS_SECRET_KEY", "not-mixed"),
        ])
        .credentials(t(0))
        .unwrap();
        assert_eq!(
            (c.secret_id(), c.secret_key(), c.security_token()),
            ("tid", "tkey", Some("ttok"))
        );
        // COS_* wins, and its family only: no TENCENTCLOUD key with a COS id.
        assert_eq!(
            env(&[("COS_SECRET_ID", "id"), ("TENCENTCLOUD_SECRETKEY", "k")]).credentials(t(0)),
            Err(Error::InvalidInput(InvalidInput::MissingCredentials))
        );
    }

    /// A fetcher that hands out numbered credentials valid for `ttl`, failing when `fail` is set.
    struct Sts {
        calls: AtomicU32,
        fail: std::sync::atomic::AtomicBool,
    }

    fn provider(ttl: Option<u64>, refresh_before: u64) -> (Arc<Sts>, RefreshingCredentials) {
        let sts = Arc::new(Sts {
            calls: AtomicU32::new(0),
            fail: Default::default(),
        });
        let s = sts.clone();
        let p = RefreshingCredentials::new(
            move |now| {
                if s.fail.load(Ordering::SeqCst) {
                    return Err(Error::Source("sts down".into()));
                }
                let n = s.calls.fetch_add(1, Ordering::SeqCst) + 1;
                let c = Credentials::new(format!("id{n}"), "secret-key")
                    .with_security_token("secret-token");
                Ok(match ttl {
                    Some(ttl) => c.with_expiry(now + Duration::from_secs(ttl)),
                    None => c,
                })
            },
            Duration::from_secs(refresh_before),
        );
        (sts, p)
    }

    #[test]
    fn refreshes_before_expiry() {
        let (sts, p) = provider(Some(1000), 100);
        assert_eq!(p.credentials(t(10)).unwrap().secret_id(), "id1");
        assert_eq!(p.credentials(t(500)).unwrap().secret_id(), "id1");
        assert_eq!(p.credentials(t(909)).unwrap().secret_id(), "id1");
        // expires at 1010, refresh from 910 on.
        assert_eq!(p.credentials(t(910)).unwrap().secret_id(), "id2");
        assert_eq!(p.credentials(t(911)).unwrap().secret_id(), "id2");
        assert_eq!(sts.calls.load(Ordering::SeqCst), 2);
        p.invalidate();
        assert_eq!(p.credentials(t(912)).unwrap().secret_id(), "id3");
    }

    #[test]
    fn no_expiry_is_cached_for_good() {
        let (sts, p) = provider(None, 100);
        for s in [0, 10, 1_000_000] {
            assert_eq!(p.credentials(t(s)).unwrap().secret_id(), "id1");
        }
        assert_eq!(sts.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn refresh_window_longer_than_lifetime_fetches_every_time() {
        let (sts, p) = provider(Some(50), 100);
        p.credentials(t(0)).unwrap();
        p.credentials(t(0)).unwrap();
        assert_eq!(sts.calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn failed_refresh_keeps_unexpired_credentials() {
        let (sts, p) = provider(Some(1000), 100);
        assert_eq!(p.credentials(t(0)).unwrap().secret_id(), "id1");
        sts.fail.store(true, Ordering::SeqCst);
        // In the refresh window but not expired: the old credentials still serve.
        assert_eq!(p.credentials(t(950)).unwrap().secret_id(), "id1");
        // Expired: the error comes through.
        assert_eq!(
            p.credentials(t(1000)),
            Err(Error::Source("sts down".into()))
        );
        sts.fail.store(false, Ordering::SeqCst);
        assert_eq!(p.credentials(t(1001)).unwrap().secret_id(), "id2");
    }

    #[test]
    fn first_fetch_error_and_incomplete_credentials() {
        let (sts, p) = provider(Some(1000), 100);
        sts.fail.store(true, Ordering::SeqCst);
        assert!(p.credentials(t(0)).is_err());
        let p = RefreshingCredentials::new(|_| Ok(Credentials::new("", "k")), Duration::ZERO);
        assert_eq!(
            p.credentials(t(0)),
            Err(Error::InvalidInput(InvalidInput::MissingCredentials))
        );
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // threads only to exercise the mutex
    fn concurrent_callers_share_one_fetch() {
        let (sts, p) = provider(Some(1000), 100);
        let p = Arc::new(p);
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || p.credentials(t(5)).unwrap().secret_id().to_string())
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), "id1");
        }
        assert_eq!(sts.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn debug_hides_secrets() {
        let (_, p) = provider(Some(1000), 100);
        p.credentials(t(0)).unwrap();
        let shown = format!("{p:?}");
        assert!(shown.contains("id1"), "{shown}");
        assert!(
            !shown.contains("secret-key") && !shown.contains("secret-token"),
            "{shown}"
        );
    }
}
