//! The AWS provider: typed EC2 and IAM resources implemented with the official AWS SDK.
//!
//! Endpoint, region and credentials come from the standard AWS chain (`AWS_ENDPOINT_URL`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`, profiles …), so pointing `AWS_ENDPOINT_URL` at an
//! emulator needs no code change. Each resource type is one [`AwsKind`]: its input checks, its
//! diff table (which inputs force replacement; everything else, tags included, is updated in
//! place) and its CRUD calls. Every resource that AWS can tag carries a `Name` tag and two
//! ownership tags (`iac:stack`, `iac:resource`), which also let an interrupted create be found
//! again. AWS errors are returned with their code and message, never swallowed.

mod cidr;
mod ec2;
mod iam;
mod props;
mod types;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;

pub use cidr::Cidr;
pub use types::*;

use crate::property::{Properties, PropertyMap};
use crate::provider::{
    CheckFailure, CheckRequest, CreateRequest, CreateResponse, DeleteRequest, DiffRequest,
    DiffResponse, Provider, ProviderError, Providers, ReadRequest, ReadResponse, UpdateRequest,
};

/// How the provider talks to AWS.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// Region, when the environment does not set one (`AWS_REGION` wins).
    pub region: Option<String>,
    /// Endpoint, when the environment does not set one (`AWS_ENDPOINT_URL` wins).
    pub endpoint_url: Option<String>,
    /// Attempts per API call for throttling and transient errors (1 disables SDK retries).
    pub max_attempts: u32,
    /// How long to wait for a resource to reach a state (instance running, terminated) and
    /// to keep retrying dependency and eventual-consistency errors.
    pub wait_timeout: Duration,
    /// How often to poll while waiting.
    pub poll_interval: Duration,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            max_attempts: 5,
            wait_timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// SDK clients and settings shared by every resource kind.
#[derive(Clone, Debug)]
pub(crate) struct Aws {
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) settings: AwsSettings,
}

/// One AWS resource type.
#[async_trait]
pub(crate) trait AwsKind: Send + Sync {
    /// The type token.
    fn token(&self) -> &'static str;
    /// The diff table: inputs whose change needs replacement (everything else is in place).
    fn replace_on(&self) -> &'static [&'static str];
    /// A replacement must delete the old resource first (its name is unique).
    fn delete_before_replace(&self) -> bool {
        false
    }
    /// Input checks that need nothing but the inputs.
    fn check(&self, inputs: &Properties) -> Vec<CheckFailure>;
    async fn create(
        &self,
        aws: &Aws,
        request: &CreateRequest<'_>,
    ) -> Result<CreateResponse, ProviderError>;
    async fn read(
        &self,
        aws: &Aws,
        request: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError>;
    async fn update(
        &self,
        aws: &Aws,
        request: &UpdateRequest<'_>,
    ) -> Result<PropertyMap, ProviderError>;
    async fn delete(&self, aws: &Aws, request: &DeleteRequest<'_>) -> Result<(), ProviderError>;
}

/// The AWS provider: every EC2 and IAM kind, dispatched by type token.
pub struct AwsProvider {
    aws: Aws,
    kinds: HashMap<&'static str, Box<dyn AwsKind>>,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProvider").finish_non_exhaustive()
    }
}

impl AwsProvider {
    /// Connects using the standard AWS configuration chain, with `settings` as fallbacks.
    pub async fn connect(settings: AwsSettings) -> Result<Self, ProviderError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts.max(1)));
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            if let Some(region) = &settings.region {
                loader = loader.region(aws_config::Region::new(region.clone()));
            }
        }
        if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
            if let Some(endpoint) = &settings.endpoint_url {
                loader = loader.endpoint_url(endpoint);
            }
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(ProviderError::with_code(
                "NoRegion",
                "no AWS region is configured: set AWS_REGION or the environment's region",
            ));
        }
        let aws = Aws {
            ec2: aws_sdk_ec2::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            settings,
        };
        let kinds: Vec<Box<dyn AwsKind>> = vec![
            Box::new(ec2::vpc::VpcKind),
            Box::new(ec2::subnet::SubnetKind),
            Box::new(ec2::internet_gateway::InternetGatewayKind),
            Box::new(ec2::route_table::RouteTableKind),
            Box::new(ec2::route_table::RouteKind),
            Box::new(ec2::route_table::AssociationKind),
            Box::new(ec2::security_group::SecurityGroupKind),
            Box::new(ec2::security_group::RuleKind),
            Box::new(ec2::key_pair::KeyPairKind),
            Box::new(ec2::instance::InstanceKind),
            Box::new(ec2::instance::AmiKind),
            Box::new(ec2::elastic_ip::ElasticIpKind),
            Box::new(iam::RoleKind),
            Box::new(iam::RolePolicyKind),
            Box::new(iam::InstanceProfileKind),
        ];
        Ok(Self {
            aws,
            kinds: kinds.into_iter().map(|k| (k.token(), k)).collect(),
        })
    }

    /// Every type token this provider handles.
    pub fn type_tokens(&self) -> Vec<&'static str> {
        let mut tokens: Vec<&'static str> = self.kinds.keys().copied().collect();
        tokens.sort_unstable();
        tokens
    }

    /// Registers this provider for all its type tokens.
    pub fn register(self, providers: &mut Providers) {
        let tokens = self.type_tokens();
        providers.register(Arc::new(self), tokens);
    }

    fn kind(&self, token: &str) -> Result<&dyn AwsKind, ProviderError> {
        self.kinds
            .get(token)
            .map(|k| k.as_ref())
            .ok_or_else(|| ProviderError::new(format!("the AWS provider has no type `{token}`")))
    }
}

#[async_trait]
impl Provider for AwsProvider {
    fn check(&self, request: &CheckRequest<'_>) -> Vec<CheckFailure> {
        match self.kind(request.type_token) {
            Ok(kind) => kind.check(request.inputs),
            Err(e) => vec![CheckFailure::new("", e.message)],
        }
    }

    fn check_related(&self, resources: &[CheckRequest<'_>]) -> Vec<(String, CheckFailure)> {
        ec2::check_related(resources)
    }

    fn diff(&self, request: &DiffRequest<'_>) -> Result<DiffResponse, ProviderError> {
        let kind = self.kind(request.type_token)?;
        let mut response = DiffResponse::from_keys(request.changed_keys(), kind.replace_on());
        response.delete_before_replace =
            kind.delete_before_replace() && response.changes.iter().any(|c| c.replace);
        Ok(response)
    }

    async fn create(&self, request: &CreateRequest<'_>) -> Result<CreateResponse, ProviderError> {
        self.kind(request.type_token)?
            .create(&self.aws, request)
            .await
    }

    async fn read(&self, request: &ReadRequest<'_>) -> Result<Option<ReadResponse>, ProviderError> {
        self.kind(request.type_token)?
            .read(&self.aws, request)
            .await
    }

    async fn update(&self, request: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        self.kind(request.type_token)?
            .update(&self.aws, request)
            .await
    }

    async fn delete(&self, request: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        self.kind(request.type_token)?
            .delete(&self.aws, request)
            .await
    }
}

/// An AWS SDK error as a provider error: the API's code and message, with what was being done.
pub(crate) fn aws_error<E, R>(action: &str, err: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().map(str::to_owned);
    let message = match err.message() {
        Some(m) => m.to_owned(),
        None => DisplayErrorContext(&err).to_string(),
    };
    ProviderError {
        code,
        message: format!("{action}: {message}"),
    }
}

/// Whether an error means "no such resource".
pub(crate) fn is_not_found(err: &ProviderError) -> bool {
    err.code
        .as_deref()
        .is_some_and(|c| c.ends_with(".NotFound") || c.ends_with("NotFound") || c == "NoSuchEntity")
}

/// `Ok(None)` when the resource does not exist, the value otherwise.
pub(crate) fn found<T>(result: Result<T, ProviderError>) -> Result<Option<T>, ProviderError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A delete whose target is already gone has succeeded.
pub(crate) fn deleted<T>(result: Result<T, ProviderError>) -> Result<(), ProviderError> {
    found(result).map(drop)
}

/// Errors that go away by themselves: a dependency still being deleted, eventual consistency
/// right after a create, throttling.
fn is_retryable(err: &ProviderError) -> bool {
    matches!(
        err.code.as_deref(),
        Some(
            "DependencyViolation"
                | "IncorrectState"
                | "InvalidGroup.InUse"
                | "ResourceInUse"
                | "DeleteConflict"
                | "RequestLimitExceeded"
                | "Throttling"
                | "ThrottlingException"
                | "InvalidInstanceID.NotFound"
                | "InvalidSubnetID.NotFound"
                | "InvalidGroup.NotFound"
                | "InvalidRouteTableID.NotFound"
                | "InvalidInternetGatewayID.NotFound"
        )
    )
}

/// Runs `call` until it succeeds, fails with a non-retryable error, or the wait timeout
/// passes (then its last error is returned). Backoff doubles from the poll interval with
/// jitter, capped at 10x the poll interval.
pub(crate) async fn with_retries<T, F, Fut>(
    settings: &AwsSettings,
    mut call: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let deadline = Instant::now() + settings.wait_timeout;
    let base = settings.poll_interval;
    let mut delay = base;
    loop {
        match call().await {
            Err(e) if is_retryable(&e) && Instant::now() + delay < deadline => {
                let jitter = delay.mul_f64(rand::random::<f64>() * 0.5);
                tokio::time::sleep(delay + jitter).await;
                delay = (delay * 2).min(base * 10);
            }
            other => return other,
        }
    }
}

/// Polls `probe` until it returns `Some`, or fails after the wait timeout naming `what`.
pub(crate) async fn wait_for<T, F, Fut>(
    settings: &AwsSettings,
    what: &str,
    mut probe: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ProviderError>>,
{
    let deadline = Instant::now() + settings.wait_timeout;
    loop {
        if let Some(done) = probe().await? {
            return Ok(done);
        }
        if Instant::now() >= deadline {
            return Err(ProviderError::with_code(
                "Timeout",
                format!("{what} did not happen within {:?}", settings.wait_timeout),
            ));
        }
        tokio::time::sleep(settings.poll_interval).await;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn settings(wait_ms: u64) -> AwsSettings {
        AwsSettings {
            wait_timeout: Duration::from_millis(wait_ms),
            poll_interval: Duration::from_millis(1),
            ..AwsSettings::default()
        }
    }

    fn error(code: &str) -> ProviderError {
        ProviderError::with_code(code, "from AWS")
    }

    #[tokio::test]
    async fn dependency_violations_are_retried_until_they_clear() {
        let calls = Cell::new(0);
        let result = with_retries(&settings(5_000), || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(error("DependencyViolation"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result, Ok(3));
    }

    #[tokio::test]
    async fn other_errors_fail_at_once_and_retries_stop_at_the_deadline() {
        let calls = Cell::new(0);
        let result: Result<(), _> = with_retries(&settings(5_000), || {
            calls.set(calls.get() + 1);
            async { Err(error("InvalidParameterValue")) }
        })
        .await;
        assert_eq!(
            (result.unwrap_err().code.as_deref(), calls.get()),
            (Some("InvalidParameterValue"), 1)
        );

        let result: Result<(), _> = with_retries(&settings(30), || async {
            Err(error("DependencyViolation"))
        })
        .await;
        assert_eq!(
            result.unwrap_err().to_string(),
            "DependencyViolation: from AWS",
            "the last AWS error is returned"
        );
    }

    #[tokio::test]
    async fn waiting_gives_up_after_the_timeout_naming_what_it_waited_for() {
        let result: Result<(), _> = wait_for(
            &settings(20),
            "instance i-1 reaching state running",
            || async { Ok(None) },
        )
        .await;
        let err = result.unwrap_err();
        assert_eq!(err.code.as_deref(), Some("Timeout"));
        assert!(
            err.message
                .starts_with("instance i-1 reaching state running did not happen within"),
            "{err}"
        );
    }
}
