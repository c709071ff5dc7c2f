//! Credentials: a SecretId, a SecretKey and, for temporary (STS) credentials, a security token.

use std::fmt;
use std::time::SystemTime;

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
