//! Credentials from a [`ProvideCredentials`](cos_core::credentials::ProvideCredentials): what the client
//! signs with now, and handing refreshed credentials to a running task.

use std::time::SystemTime;

use cos_core::task::Task;
use cos_core::{Config, Credentials, Error};

use crate::Client;

impl Client {
    /// The configuration with the credentials to sign with at `now`: the provider's when one is set, else
    /// the config's own.
    pub(crate) fn signing_config(&self, now: SystemTime) -> Result<Config, Error> {
        let mut config = self.config();
        if let Some(provider) = self.inner_credentials() {
            config.credentials = provider.credentials(now)?;
        }
        Ok(config)
    }

    /// Before a task poll: asks the provider (which caches) for the credentials valid now and, when they
    /// differ from those the task last got, hands them to the task. `last` lives as long as the run.
    pub(crate) fn refresh_credentials<T: Task>(
        &self,
        task: &mut T,
        last: &mut Option<Credentials>,
    ) -> Result<(), Error> {
        let Some(provider) = self.inner_credentials() else {
            return Ok(());
        };
        let current = provider.credentials(SystemTime::now())?;
        if last.as_ref() != Some(&current) {
            task.set_credentials(current.clone());
            *last = Some(current);
        }
        Ok(())
    }
}
