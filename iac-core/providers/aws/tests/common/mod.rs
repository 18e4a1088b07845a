//! What the AWS provider's tests share: the provider wrapped to count mutations, a world of
//! engine + independent SDK clients, and the three-AZ platform program.

#![allow(dead_code, unreachable_pub, unused_imports)] // each test binary uses part of it

pub use std::collections::BTreeMap;
pub use std::sync::Arc;
pub use std::sync::atomic::{AtomicUsize, Ordering};
pub use std::time::Duration;

pub use async_trait::async_trait;
pub use iac_aws::*;
pub use iac_core::{
    ApplyOptions, ApplySummary, CheckFailure, CheckRequest, CreateRequest, CreateResponse,
    DeleteRequest, DiffRequest, DiffResponse, Drift, Engine, FileBackend, Operation, Output,
    Program, PropertyMap, Provider, ProviderError, Providers, ReadRequest, ReadResponse, Stack,
    UpdateRequest,
};
pub use tempfile::TempDir;

/// Counts the provider's mutating calls (the only way the engine changes anything in AWS).
pub struct Counting {
    pub inner: AwsProvider,
    pub mutations: AtomicUsize,
}

#[async_trait]
impl Provider for Counting {
    fn check(&self, r: &CheckRequest<'_>) -> Vec<CheckFailure> {
        self.inner.check(r)
    }
    fn check_related(&self, r: &[CheckRequest<'_>]) -> Vec<(String, CheckFailure)> {
        self.inner.check_related(r)
    }
    fn diff(&self, r: &DiffRequest<'_>) -> Result<DiffResponse, ProviderError> {
        self.inner.diff(r)
    }
    async fn create(&self, r: &CreateRequest<'_>) -> Result<CreateResponse, ProviderError> {
        self.mutations.fetch_add(1, Ordering::SeqCst);
        self.inner.create(r).await
    }
    async fn read(&self, r: &ReadRequest<'_>) -> Result<Option<ReadResponse>, ProviderError> {
        self.inner.read(r).await
    }
    async fn update(&self, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        self.mutations.fetch_add(1, Ordering::SeqCst);
        self.inner.update(r).await
    }
    async fn delete(&self, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        self.mutations.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(r).await
    }
}

/// The emulator's URL (`AWS_ENDPOINT_URL`).
pub fn emulator_url() -> String {
    settings();
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
}

pub fn settings() -> AwsSettings {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "the AWS tests need the emulator: run scripts/test.sh, or eval \"$(scripts/moto.sh start)\" first"
    );
    AwsSettings {
        region: Some("eu-central-1".to_owned()),
        endpoint_url: None,
        // The emulator answers some errors with bare 500s: do not retry them.
        max_attempts: 1,
        wait_timeout: Duration::from_secs(20),
        poll_interval: Duration::from_millis(20),
        consistency_window: Duration::from_secs(3),
    }
}

pub struct World {
    pub provider: Arc<Counting>,
    pub engine: Engine,
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
    pub _dir: TempDir,
}

impl World {
    pub async fn new() -> Self {
        Self::with(AwsProvider::connect(settings()).await.unwrap()).await
    }

    /// The provider reaches the emulator through `proxy`; the world's own clients (the
    /// independent readers) reach it directly.
    pub async fn behind(proxy: &aws_fault_proxy::FaultProxy, settings: AwsSettings) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-central-1"))
            .endpoint_url(proxy.url())
            .load()
            .await;
        Self::with(AwsProvider::with_sdk_config(&config, settings)).await
    }

    async fn with(inner: AwsProvider) -> Self {
        let tokens = inner.type_tokens();
        let provider = Arc::new(Counting {
            inner,
            mutations: AtomicUsize::new(0),
        });
        let mut providers = Providers::new();
        providers.register(provider.clone(), tokens);
        let dir = TempDir::new().unwrap();
        let engine = Engine::new(providers, FileBackend::new(dir.path()));
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-central-1"))
            .load()
            .await;
        World {
            provider,
            engine,
            ec2: aws_sdk_ec2::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            _dir: dir,
        }
    }

    pub fn mutations(&self) -> usize {
        self.provider.mutations.load(Ordering::SeqCst)
    }

    pub async fn up(&self, program: &Program) -> ApplySummary {
        let plan = self.engine.preview(program).await.unwrap();
        let summary = self
            .engine
            .apply(program, &plan, &ApplyOptions::default())
            .await
            .unwrap();
        assert!(summary.is_success(), "{summary:#?}");
        summary
    }

    /// What `stacks apply` does: resolve what an interrupted run left, plan, apply.
    pub async fn run(&self, program: &Program) -> ApplySummary {
        self.engine
            .resolve_interrupted(program.stack(), 8)
            .await
            .unwrap();
        let plan = self.engine.preview(program).await.unwrap();
        self.engine
            .apply(program, &plan, &ApplyOptions::default())
            .await
            .unwrap()
    }

    pub async fn state(&self, stack: &str) -> iac_core::state::Checkpoint {
        self.engine.state(stack).await.unwrap().unwrap()
    }

    pub async fn id(&self, stack: &str, name: &str) -> String {
        self.state(stack).await.resource(name).unwrap().id.clone()
    }

    /// Resources that still exist and carry the stack's ownership tag. (The emulator keeps
    /// tags of deleted resources in DescribeTags, so each kind is described with a filter.)
    pub async fn tagged(&self, stack: &str) -> Vec<String> {
        use aws_sdk_ec2::types::{Filter, InstanceStateName};
        let f = || {
            Filter::builder()
                .name("tag:iac:stack")
                .values(stack)
                .build()
        };
        let e = &self.ec2;
        let mut ids: Vec<String> = Vec::new();
        let out = e.describe_vpcs().filters(f()).send().await.unwrap();
        ids.extend(
            out.vpcs()
                .iter()
                .filter_map(|x| x.vpc_id())
                .map(str::to_owned),
        );
        let out = e.describe_subnets().filters(f()).send().await.unwrap();
        ids.extend(
            out.subnets()
                .iter()
                .filter_map(|x| x.subnet_id())
                .map(str::to_owned),
        );
        let out = e
            .describe_security_groups()
            .filters(f())
            .send()
            .await
            .unwrap();
        ids.extend(
            out.security_groups()
                .iter()
                .filter_map(|x| x.group_id())
                .map(str::to_owned),
        );
        let out = e
            .describe_internet_gateways()
            .filters(f())
            .send()
            .await
            .unwrap();
        ids.extend(
            out.internet_gateways()
                .iter()
                .filter_map(|x| x.internet_gateway_id())
                .map(str::to_owned),
        );
        let out = e.describe_route_tables().filters(f()).send().await.unwrap();
        ids.extend(
            out.route_tables()
                .iter()
                .filter_map(|x| x.route_table_id())
                .map(str::to_owned),
        );
        let out = e.describe_key_pairs().filters(f()).send().await.unwrap();
        ids.extend(
            out.key_pairs()
                .iter()
                .filter_map(|x| x.key_pair_id())
                .map(str::to_owned),
        );
        let out = e.describe_addresses().filters(f()).send().await.unwrap();
        ids.extend(
            out.addresses()
                .iter()
                .filter_map(|x| x.allocation_id())
                .map(str::to_owned),
        );
        let out = e.describe_instances().filters(f()).send().await.unwrap();
        ids.extend(
            out.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter(|i| {
                    i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Terminated)
                })
                .filter_map(|i| i.instance_id())
                .map(str::to_owned),
        );
        ids
    }
}

pub fn tags(pairs: &[(&str, &str)]) -> Output<Tags> {
    Output::known(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    )
}

pub const PUBLIC_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ8v5hLw1R5n8y3Jb1rSmP6i1gq8M2t3m8b0dYqg2mC operator@example";
pub const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
pub const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}]}"#;

/// Knobs the tests turn between applies.
/// A stack name unique to this run: the emulator keeps what earlier runs left behind.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

#[derive(Clone)]
pub struct Platform {
    pub stack: String,
    pub instance_type: &'static str,
    pub kafka_port: i64,
    pub ssh_rule: bool,
    pub ssh_description: Option<&'static str>,
    pub env_tag: &'static str,
}

impl Platform {
    pub fn new(prefix: &str) -> Self {
        Self {
            stack: unique(prefix),
            instance_type: "t3.small",
            kafka_port: 9092,
            ssh_rule: true,
            ssh_description: None,
            env_tag: "test",
        }
    }
}

/// The three-AZ network, security, IAM and one fixed-IP instance per AZ.
pub fn platform(p: &Platform) -> Program {
    let mut s = Stack::new(p.stack.clone());
    let ami = s.data_source::<Ami>(
        "ami",
        AmiArgs {
            owners: vec!["amazon".to_owned()].into(),
            name: "al2023-ami-ecs-hvm-*-x86_64".into(),
            architecture: Some("x86_64".to_owned()).into(),
        },
    );
    let vpc = s.resource::<Vpc>(
        "vpc",
        VpcArgs {
            cidr_block: "10.42.0.0/16".into(),
            enable_dns_hostnames: Some(true).into(),
            enable_dns_support: Some(true).into(),
            tags: tags(&[("env", p.env_tag)]),
        },
    );
    let igw = s.resource::<InternetGateway>(
        "igw",
        InternetGatewayArgs {
            vpc_id: vpc.id().map(Some),
            ..Default::default()
        },
    );
    let table = s.resource::<RouteTable>(
        "public",
        RouteTableArgs {
            vpc_id: vpc.id(),
            ..Default::default()
        },
    );
    s.resource::<Route>(
        "default-route",
        RouteArgs {
            route_table_id: table.id(),
            destination_cidr_block: "0.0.0.0/0".into(),
            gateway_id: igw.id(),
        },
    );
    let sg = s.resource::<SecurityGroup>(
        "kafka-sg",
        SecurityGroupArgs {
            name: format!("{}-kafka", p.stack).into(),
            description: "Kafka nodes".into(),
            vpc_id: vpc.id(),
            ..Default::default()
        },
    );
    s.resource::<SecurityGroupRule>(
        "kafka-clients",
        SecurityGroupRuleArgs {
            security_group_id: sg.id(),
            direction: "ingress".into(),
            protocol: "tcp".into(),
            from_port: p.kafka_port.into(),
            to_port: p.kafka_port.into(),
            cidr_ipv4: Some("10.42.0.0/16".to_owned()).into(),
            ..Default::default()
        },
    );
    s.resource::<SecurityGroupRule>(
        "kafka-internal",
        SecurityGroupRuleArgs {
            security_group_id: sg.id(),
            direction: "ingress".into(),
            protocol: "tcp".into(),
            from_port: 9091.into(),
            to_port: 9093.into(),
            self_referencing: Some(true).into(),
            ..Default::default()
        },
    );
    if p.ssh_rule {
        s.resource::<SecurityGroupRule>(
            "ssh",
            SecurityGroupRuleArgs {
                security_group_id: sg.id(),
                direction: "ingress".into(),
                protocol: "tcp".into(),
                from_port: 22.into(),
                to_port: 22.into(),
                cidr_ipv4: Some("203.0.113.7/32".to_owned()).into(),
                description: p.ssh_description.map(str::to_owned).into(),
                ..Default::default()
            },
        );
    }
    let key = s.resource::<KeyPair>(
        "key",
        KeyPairArgs {
            key_name: format!("{}-operator", p.stack).into(),
            public_key: PUBLIC_KEY.into(),
            ..Default::default()
        },
    );
    let role = s.resource::<IamRole>(
        "role",
        IamRoleArgs {
            name: format!("{}-kafka-node", p.stack).into(),
            assume_role_policy: TRUST.into(),
            ..Default::default()
        },
    );
    s.resource::<IamRolePolicy>(
        "role-policy",
        IamRolePolicyArgs {
            role: role.as_ref().output("name"),
            name: "describe".into(),
            policy: POLICY.into(),
        },
    );
    let profile = s.resource::<IamInstanceProfile>(
        "profile",
        IamInstanceProfileArgs {
            name: format!("{}-kafka-node", p.stack).into(),
            role: role.as_ref().output::<String>("name").map(Some),
        },
    );
    for (i, zone) in ["a", "b", "c"].into_iter().enumerate() {
        let subnet = s.resource::<Subnet>(
            &format!("subnet-{zone}"),
            SubnetArgs {
                vpc_id: vpc.id(),
                cidr_block: format!("10.42.{}.0/24", i + 1).into(),
                availability_zone: Some(format!("eu-central-1{zone}")).into(),
                map_public_ip_on_launch: Some(true).into(),
                ..Default::default()
            },
        );
        s.resource::<RouteTableAssociation>(
            &format!("public-{zone}"),
            RouteTableAssociationArgs {
                route_table_id: table.id(),
                subnet_id: subnet.id(),
            },
        );
        let node = s.resource::<Instance>(
            &format!("controller-{}", i + 1),
            InstanceArgs {
                ami: ami.image_id(),
                instance_type: p.instance_type.into(),
                subnet_id: subnet.id(),
                private_ip: Some(format!("10.42.{}.10", i + 1)).into(),
                security_group_ids: Output::all([sg.id()]),
                key_name: key.as_ref().output::<String>("key_name").map(Some),
                iam_instance_profile: profile.as_ref().output::<String>("name").map(Some),
                root_volume_size: Some(30).into(),
                tags: tags(&[("role", "controller")]),
                ..Default::default()
            },
        );
        if i == 0 {
            s.resource::<ElasticIp>(
                "controller-1-ip",
                ElasticIpArgs {
                    instance_id: node.id().map(Some),
                    ..Default::default()
                },
            );
        }
    }
    s.export(
        "controller_ips",
        Output::all((1..=3).map(|i| Output::known(format!("10.42.{i}.10")))),
    );
    s.build().unwrap()
}
