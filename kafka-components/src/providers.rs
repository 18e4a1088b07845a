//! The providers a platform runs on.

use iac_aws::AwsProvider;
use iac_core::{ProviderError, Providers};
use iac_local::LocalProvider;
use iac_tls::TlsProvider;

use crate::PlatformConfig;

/// The providers the platform of `config` needs: files, commands and processes on this
/// machine (`iac-local`: the rendered configuration, a local platform's programs), generated
/// keys, certificates and passwords (`iac-tls`), and for an AWS site the AWS provider with
/// its settings (`AWS_ENDPOINT_URL` and the standard AWS variables apply).
pub async fn providers(config: &PlatformConfig) -> Result<Providers, ProviderError> {
    let mut providers = Providers::new();
    LocalProvider::new().register(&mut providers);
    TlsProvider::new().register(&mut providers);
    if let Some(site) = config.aws() {
        AwsProvider::connect(site.aws.settings())
            .await?
            .register(&mut providers);
    }
    Ok(providers)
}
