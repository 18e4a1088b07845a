//! The AWS provider: typed EC2 and IAM resources implemented with the official AWS SDK.
//!
//! Endpoint, region and credentials come from the standard AWS chain (`AWS_ENDPOINT_URL`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`, profiles …), so pointing `AWS_ENDPOINT_URL` at an
//! emulator needs no code change. Each resource type is one `AwsKind`: its input checks, its
//! declared diff table (how a change of each input is made; all of them are listed in
//! `RESOURCES.md`, which a test keeps equal to the tables) and its CRUD calls. Every resource that AWS can tag carries a `Name` tag and two
//! ownership tags (`iac:stack`, `iac:resource`), which also let an interrupted create be found
//! again. AWS errors are returned with their code and message, never swallowed.
#![doc = include_str!("../RESOURCES.md")]
// Functions read in one screen (`clippy.toml` sets the length); a table of cases may not.
#![warn(clippy::too_many_lines)]

mod cidr;
mod create;
mod ec2;
mod iam;
mod types;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

pub use cidr::Cidr;
pub use types::*;

use iac_core::provider::diff_table::DiffTable;
use iac_core::provider::kinds::Kinds;
use iac_core::provider::retry::{self, WaitSettings};
use iac_core::{
    CheckFailure, CheckRequest, CreateRequest, CreateResponse, DeleteRequest, DiffRequest,
    DiffResponse, ImportRequest, Provider, ProviderError, Providers, ReadRequest, ReadResponse,
    UpdateRequest,
};
use iac_core::{Properties, PropertyMap};

/// The error code of a connection refused before any call: the configuration (region,
/// endpoint) is the user's to fix.
pub const CONFIGURATION_ERROR: &str = "InvalidConfiguration";

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
    /// How long after a create AWS may still not show the new object to describes. A create
    /// whose answer was lost is looked for this long (from when it was sent) before it is
    /// sent again, so a slow-to-appear object is adopted, not made twice.
    pub consistency_window: Duration,
}

impl AwsSettings {
    /// The deadline and poll interval of waits and retries.
    pub fn wait(&self) -> WaitSettings {
        WaitSettings {
            timeout: self.wait_timeout,
            poll_interval: self.poll_interval,
        }
    }
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            max_attempts: 5,
            wait_timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(2),
            consistency_window: Duration::from_secs(30),
        }
    }
}

/// SDK clients and settings shared by every resource kind.
#[derive(Clone, Debug)]
pub(crate) struct Aws {
    /// For reads, updates, deletes and idempotent calls: the SDK retries transient errors.
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) iam: aws_sdk_iam::Client,
    /// For creates AWS does not deduplicate: never re-sent by the SDK (see [`create`]).
    pub(crate) ec2_once: aws_sdk_ec2::Client,
    pub(crate) iam_once: aws_sdk_iam::Client,
    pub(crate) settings: AwsSettings,
}

/// One AWS resource type.
#[async_trait]
pub(crate) trait AwsKind: Send + Sync {
    /// The type token.
    fn token(&self) -> &'static str;
    /// The diff table: how a change of each input is made.
    fn diff_table(&self) -> &'static DiffTable;
    /// Input checks that need nothing but the inputs.
    fn check(&self, inputs: &Properties) -> Vec<CheckFailure>;
    /// The one call that makes the resource, on a client that never re-sends it; returns
    /// its id. [`create::create_once`] sends it at most once per known outcome.
    async fn make(&self, aws: &Aws, request: &CreateRequest<'_>) -> Result<String, ProviderError>;
    /// The calls that finish a made resource (each safe to repeat on one an earlier run
    /// made), and its outputs. By default none: the outputs are the inputs.
    async fn complete(
        &self,
        aws: &Aws,
        request: &CreateRequest<'_>,
        id: &str,
    ) -> Result<PropertyMap, ProviderError> {
        let _ = (aws, id);
        Ok(request.inputs.clone())
    }
    /// What an earlier `make` of this resource made, by its ownership tags or natural key
    /// (only an object this stack owns): the id. By default, the read without an id.
    async fn find(
        &self,
        aws: &Aws,
        request: &CreateRequest<'_>,
    ) -> Result<Option<String>, ProviderError> {
        Ok(self
            .read(aws, &lookup(request))
            .await?
            .map(|found| found.id))
    }
    /// For a name that something outside the stack holds: the command that removes it.
    fn removal(&self, request: &CreateRequest<'_>) -> Option<String> {
        let _ = request;
        None
    }
    /// Where its objects carry the ownership tags an import checks and sets: EC2's tags by
    /// default.
    fn tagging(&self) -> Tagging {
        Tagging::Ec2
    }
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

/// Where a kind's objects carry their ownership tags.
pub(crate) enum Tagging {
    /// EC2 tags.
    Ec2,
    /// An IAM role's tags.
    Role,
    /// An IAM instance profile's tags.
    InstanceProfile,
    /// None: the object cannot carry tags (a route, an association, an inline policy), so
    /// nothing says who owns it.
    Untagged,
}

/// The read that looks up what a create of `request` made (no id).
pub(crate) fn lookup<'a>(request: &CreateRequest<'a>) -> ReadRequest<'a> {
    ReadRequest {
        stack: request.stack,
        type_token: request.type_token,
        name: request.name,
        id: None,
        inputs: request.inputs,
        outputs: None,
        created_since: None,
    }
}

/// Every resource kind of the provider.
fn kinds() -> Vec<Box<dyn AwsKind>> {
    vec![
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
    ]
}

/// The AWS provider: every EC2 and IAM kind, dispatched by type token.
pub struct AwsProvider {
    aws: Aws,
    kinds: Kinds<dyn AwsKind>,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProvider").finish_non_exhaustive()
    }
}

impl AwsProvider {
    /// A provider on an SDK configuration the caller built (its endpoint, region and
    /// credentials are used as they are; `settings` gives the waits and attempts).
    pub fn with_sdk_config(config: &aws_config::SdkConfig, settings: AwsSettings) -> Self {
        let retrying = config
            .to_builder()
            .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts.max(1)))
            .build();
        let once = config
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build();
        let aws = Aws {
            ec2: aws_sdk_ec2::Client::new(&retrying),
            iam: aws_sdk_iam::Client::new(&retrying),
            ec2_once: aws_sdk_ec2::Client::new(&once),
            iam_once: aws_sdk_iam::Client::new(&once),
            settings,
        };
        Self {
            aws,
            kinds: Kinds::new("AWS", kinds().into_iter().map(|k| (k.token(), k))),
        }
    }

    /// Connects using the standard AWS configuration chain, with `settings` as fallbacks.
    pub async fn connect(settings: AwsSettings) -> Result<Self, ProviderError> {
        let empty = |v: &str| v.trim().is_empty();
        if std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| empty(&v)) {
            return Err(ProviderError::with_code(
                CONFIGURATION_ERROR,
                "AWS_ENDPOINT_URL is set but empty: unset it to use AWS, or set the endpoint's URL",
            ));
        }
        if settings.endpoint_url.as_deref().is_some_and(empty) {
            return Err(ProviderError::with_code(
                CONFIGURATION_ERROR,
                "the endpoint URL is empty: leave it unset to use AWS, or give the endpoint's URL",
            ));
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            && let Some(region) = &settings.region
        {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if std::env::var_os("AWS_ENDPOINT_URL").is_none()
            && let Some(endpoint) = &settings.endpoint_url
        {
            loader = loader.endpoint_url(endpoint);
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(ProviderError::with_code(
                CONFIGURATION_ERROR,
                "no AWS region is configured: set AWS_REGION or the environment's region",
            ));
        }
        Ok(Self::with_sdk_config(&config, settings))
    }

    /// Every type token this provider handles.
    pub fn type_tokens(&self) -> Vec<&'static str> {
        self.kinds.tokens()
    }

    /// Registers this provider for all its type tokens.
    pub fn register(self, providers: &mut Providers) {
        let tokens = self.type_tokens();
        providers.register(Arc::new(self), tokens);
    }

    fn kind(&self, token: &str) -> Result<&dyn AwsKind, ProviderError> {
        self.kinds.get(token)
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
        Ok(self
            .kind(request.type_token)?
            .diff_table()
            .diff(request.changed_keys()))
    }

    async fn create(&self, request: &CreateRequest<'_>) -> Result<CreateResponse, ProviderError> {
        let kind = self.kind(request.type_token)?;
        let aws = &self.aws;
        let id = create::create_once(
            aws,
            create::Holder {
                stack: request.stack,
                removal: kind.removal(request),
            },
            || kind.make(aws, request),
            || kind.find(aws, request),
        )
        .await?;
        // The resource exists from here on: a failure leaves its create's outcome open.
        let outputs = kind
            .complete(aws, request, &id)
            .await
            .map_err(ProviderError::after_changes)?;
        Ok(CreateResponse { id, outputs })
    }

    async fn read(&self, request: &ReadRequest<'_>) -> Result<Option<ReadResponse>, ProviderError> {
        let kind = self.kind(request.type_token)?;
        let read = || async { found(kind.read(&self.aws, request).await).map(Option::flatten) };
        match (request.id, request.created_since) {
            (None, Some(since)) => create::look_until(&self.aws, since, read).await,
            _ => read().await,
        }
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

    async fn import(
        &self,
        request: &ImportRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let kind = self.kind(request.type_token)?;
        let nothing = PropertyMap::new();
        let read = ReadRequest {
            stack: request.stack,
            type_token: request.type_token,
            name: request.name,
            id: Some(request.id),
            inputs: &nothing,
            outputs: None,
            created_since: None,
        };
        let Some(object) = found(kind.read(&self.aws, &read).await)?.flatten() else {
            return Ok(None);
        };
        let (aws, id, stack, name) = (&self.aws, object.id.as_str(), request.stack, request.name);
        match kind.tagging() {
            Tagging::Ec2 => ec2::adopt(aws, id, stack, name).await?,
            Tagging::Role => iam::adopt(aws, false, id, stack, name).await?,
            Tagging::InstanceProfile => iam::adopt(aws, true, id, stack, name).await?,
            Tagging::Untagged => {}
        }
        Ok(Some(object))
    }
}

/// An AWS SDK error as a provider error: the API's code and message, with what was being done.
///
/// An answer AWS gave with a 4xx status, or a request never built, changed nothing
/// ([`ProviderError::refused`]); a lost or unreadable answer, a timeout or a 5xx leaves the
/// call's outcome unknown.
pub(crate) fn aws_error<E>(action: &str, err: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = err.code().map(str::to_owned);
    let message = match err.message() {
        Some(m) => m.to_owned(),
        None => error_chain(&err),
    };
    let refused = match &err {
        SdkError::ConstructionFailure(_) => true,
        SdkError::ServiceError(context) => context.raw().status().is_client_error(),
        _ => false,
    };
    let mut error = ProviderError::new(format!("{action}: {message}"));
    error.code = code;
    error.refused = refused;
    error
}

/// An error and its sources, each message once ("dispatch failure: io error: … Connection
/// refused"), without the SDK's debug rendering.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !parts.iter().any(|p| p.contains(&message)) {
            parts.push(message);
        }
        source = cause.source();
    }
    parts.join(": ")
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
                | "InvalidVpcID.NotFound"
                | "InvalidAllocationID.NotFound"
                | "InvalidSubnetID.NotFound"
                | "InvalidGroup.NotFound"
                | "InvalidRouteTableID.NotFound"
                | "InvalidInternetGatewayID.NotFound"
        )
    )
}

/// Runs `call`, retrying the errors that clear by themselves until the wait timeout
/// (see [`retry::with_retries`]).
pub(crate) async fn with_retries<T, F, Fut>(
    settings: &AwsSettings,
    call: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    retry::with_retries(settings.wait(), is_retryable, call).await
}

/// Polls `probe` until it returns `Some`, or fails after the wait timeout naming `what`.
pub(crate) async fn wait_for<T, F, Fut>(
    settings: &AwsSettings,
    what: &str,
    probe: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ProviderError>>,
{
    retry::wait_for(settings.wait(), what, probe).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use iac_core::ResourceType as _;

    use super::*;

    #[test]
    fn transient_aws_errors_are_retried_and_others_are_not() {
        for code in [
            "DependencyViolation",
            "InvalidInstanceID.NotFound",
            "RequestLimitExceeded",
        ] {
            assert!(is_retryable(&ProviderError::with_code(code, "")), "{code}");
        }
        for code in ["InvalidParameterValue", "UnauthorizedOperation"] {
            assert!(!is_retryable(&ProviderError::with_code(code, "")), "{code}");
        }
    }

    #[test]
    fn every_argument_is_in_its_kinds_diff_table_and_nothing_else_is() {
        let fields: std::collections::HashMap<&str, &[&str]> = std::collections::HashMap::from([
            (Vpc::TYPE, VpcArgs::FIELDS),
            (Subnet::TYPE, SubnetArgs::FIELDS),
            (InternetGateway::TYPE, InternetGatewayArgs::FIELDS),
            (RouteTable::TYPE, RouteTableArgs::FIELDS),
            (Route::TYPE, RouteArgs::FIELDS),
            (
                RouteTableAssociation::TYPE,
                RouteTableAssociationArgs::FIELDS,
            ),
            (SecurityGroup::TYPE, SecurityGroupArgs::FIELDS),
            (SecurityGroupRule::TYPE, SecurityGroupRuleArgs::FIELDS),
            (KeyPair::TYPE, KeyPairArgs::FIELDS),
            (Instance::TYPE, InstanceArgs::FIELDS),
            (Ami::TYPE, AmiArgs::FIELDS),
            (ElasticIp::TYPE, ElasticIpArgs::FIELDS),
            (IamRole::TYPE, IamRoleArgs::FIELDS),
            (IamRolePolicy::TYPE, IamRolePolicyArgs::FIELDS),
            (IamInstanceProfile::TYPE, IamInstanceProfileArgs::FIELDS),
        ]);
        for kind in kinds() {
            let table = kind.diff_table();
            assert_eq!(table.type_token, kind.token());
            let Some(fields) = fields.get(kind.token()) else {
                panic!("{}: add its arguments to this test", kind.token());
            };
            assert_eq!(
                table.mismatches(fields),
                (Vec::new(), Vec::new()),
                "{}: (arguments missing from the table, table rows that are no argument)",
                kind.token()
            );
        }
    }

    /// RESOURCES.md is the tables, rendered (`UPDATE_RESOURCES_MD=1` rewrites it).
    #[test]
    fn resources_md_shows_every_diff_table() {
        let mut tables: Vec<&DiffTable> = kinds().iter().map(|k| k.diff_table()).collect();
        tables.sort_by_key(|t| t.type_token);
        let mut rendered = String::from(RESOURCES_MD_HEADER);
        for table in tables {
            rendered.push('\n');
            rendered.push_str(&table.markdown());
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/RESOURCES.md");
        if std::env::var_os("UPDATE_RESOURCES_MD").is_some() {
            std::fs::write(path, &rendered).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == rendered,
            "RESOURCES.md differs from the diff tables: run `UPDATE_RESOURCES_MD=1 cargo test -p iac-aws` and review the change"
        );
    }

    const RESOURCES_MD_HEADER: &str = "# AWS resources: how each input changes\n\n\
        Generated from each resource kind's diff table (the one `diff` answers with) by\n\
        `UPDATE_RESOURCES_MD=1 cargo test -p iac-aws`; a test fails when this file and the\n\
        tables differ. *In place* updates the resource; *replace* creates the new one, then\n\
        deletes the old; *replace, deleting first* deletes first (the name is unique).\n";
}
