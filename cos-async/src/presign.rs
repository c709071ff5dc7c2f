//! Presigned URLs and signed POST forms, with the client's configuration, clock offset and credentials.

use std::time::{Duration, SystemTime};

use cos_core::post_policy::{PostForm, PostPolicy};
use cos_core::Error;

use crate::Client;

impl Client {
    /// A URL that performs one `method` request on `key` without credentials, until `expires_in` from now
    /// (see [`cos_core::presign::presigned_url`]): `params` are added to the query and signed, `headers`
    /// are signed and must be sent with exactly these values. Signed with the credentials provider's
    /// credentials when one is set, and shifted by the clock offset learned from the server. Nothing is
    /// sent.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cos_async::{Client, Config, Credentials};
    /// let config = Config::new("examplebucket-1250000000", "ap-guangzhou", Credentials::new("AKID", "KEY"))?;
    /// let client = Client::new(config);
    /// let url = client.presigned_url(http::Method::GET, "a.txt", Duration::from_secs(600), &[], &[])?;
    /// assert!(url.to_string().contains("q-signature="));
    /// # Ok::<(), cos_async::Error>(())
    /// ```
    pub fn presigned_url(
        &self,
        method: http::Method,
        key: &str,
        expires_in: Duration,
        params: &[(String, String)],
        headers: &[(String, String)],
    ) -> Result<http::Uri, Error> {
        let now = SystemTime::now();
        self.state()
            .presigned_url(method, key, now, expires_in, params, headers)
    }

    /// Signs a POST Object policy into a form for a browser or [`Client::post_object`], with the client's
    /// bucket, endpoint, clock offset and (provider's) credentials.
    pub fn sign_post_policy(&self, policy: &PostPolicy) -> Result<PostForm, Error> {
        let now = SystemTime::now();
        self.state().sign_post_policy(policy, now)
    }
}
