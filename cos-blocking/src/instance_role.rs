//! Credentials where servers keep them: the CVM instance role (from the metadata service) and the default
//! provider chain.

use std::time::Duration;

use bytes::Bytes;
use cos_core::credentials::EnvCredentials;
use cos_core::error::{TransportError, TransportErrorKind};
use cos_core::instance_role::{ChainCredentials, InstanceRole};
use cos_core::Credentials;

/// The CVM instance role's temporary credentials, fetched from the metadata service
/// (`http://metadata.tencentyun.com`, never through a proxy, 1 s to connect, 2 s per read) and refreshed
/// five minutes before they expire. See [`InstanceRole`] for the endpoint, role and refresh settings.
///
/// ```no_run
/// use std::sync::Arc;
/// use cos_blocking::{Client, Config};
/// let config = Config::for_provider("examplebucket-1250000000", "ap-guangzhou")?;
/// let client = Client::builder(config)
///     .credentials_provider(Arc::new(cos_blocking::instance_role_credentials()))
///     .build();
/// # Ok::<(), cos_blocking::Error>(())
/// ```
pub fn instance_role_credentials() -> InstanceRole {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_connect(Some(Duration::from_secs(1)))
            .timeout_per_read(Some(Duration::from_secs(2)))
            .timeout_global(Some(Duration::from_secs(5)))
            .build(),
    );
    InstanceRole::new(move |request: &http::Request<()>| {
        let mut r = http::Request::get(request.uri().clone())
            .body(())
            .map_err(|e| TransportError::new(TransportErrorKind::Other, e.to_string()))?;
        *r.headers_mut() = request.headers().clone();
        let authority = r
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let response = agent.run(r).map_err(|e| match e {
            ureq::Error::Timeout(_) => TransportError::new(
                TransportErrorKind::Timeout,
                format!("instance metadata service: {e}"),
            )
            .with_cause(e),
            ureq::Error::Io(io) => TransportError::new(
                TransportErrorKind::Connect,
                format!("instance metadata service: cannot connect to {authority}: {io}"),
            )
            .with_cause(io),
            e => TransportError::new(
                TransportErrorKind::Connect,
                format!("instance metadata service: cannot connect to {authority}: {e}"),
            )
            .with_cause(e),
        })?;
        let (parts, mut body) = response.into_parts();
        let bytes = body
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .map_err(|e| {
                TransportError::new(TransportErrorKind::Reset, e.to_string()).with_cause(e)
            })?;
        Ok(http::Response::from_parts(parts, Bytes::from(bytes)))
    })
}

/// The default chain: `explicit` credentials if given, else the environment ([`EnvCredentials`]:
/// `COS_*`, else `TENCENTCLOUD_*`), else the instance role ([`instance_role_credentials`]).
pub fn default_credentials_chain(explicit: Option<Credentials>) -> ChainCredentials {
    let mut chain = ChainCredentials::new();
    if let Some(c) = explicit {
        chain = chain.or(c);
    }
    chain
        .or(EnvCredentials::new())
        .or(instance_role_credentials())
}
