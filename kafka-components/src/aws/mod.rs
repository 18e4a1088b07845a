//! The `KafkaPlatform` component: every AWS resource of the platform, registered on a stack.
//!
//! Network: a VPC with DNS hostnames, one /24 subnet per zone, an internet gateway and a
//! public route table. Security: Kafka listener, controller and Connect REST ports only from
//! inside the VPC; JMX exporter, node_exporter and SSH ports only from the platform node's
//! group (Ansible reaches the other nodes through it); Prometheus, Grafana, Alertmanager, the
//! admin API and the platform node's SSH only from the operator CIDR. IAM:
//! a role (EC2 may describe instances) and its instance profile. Nodes: controllers, brokers,
//! Connect and platform nodes spread round-robin over the zones, each with a fixed private IP
//! (`<role base> + index / zones` in its zone's /24) and the private DNS name AWS gives that
//! address, named `<stack>-<role>-<n>`: what the configuration says of a controller or broker
//! is known before its instance exists, so one replaced while the others roll is deployed onto
//! before them.
//!
//! Registered inside [`Stack::with_prefix`], every resource and output name starts with the
//! prefix, and so does every name AWS needs unique (`<stack>-<prefix>kafka`, the key pair's,
//! the role's and the profile's): two platforms share a stack, and the stack's own `vpc` does
//! not clash with the platform's.

use std::net::Ipv4Addr;

use iac_aws::*;
use iac_core::{Output, ResourceOptions, RollingGroup, Stack};
use ipnet::Ipv4Net;

use crate::config::{AwsSite, PlatformConfig, node_address};
use crate::gate::KafkaGate;
use crate::nodes::{NODES_OUTPUT, NodeFacts};
use crate::policy::{self, PolicyErrors, Violation};
use crate::ports::{self, OpenTo};
use crate::role::Role;
use crate::security::{CertificateSubject, Credentials};

pub mod deploy;

/// One node of the platform.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its role.
    pub role: Role,
    /// 1-based index within its role.
    pub index: u32,
    /// Its name in the component, e.g. `broker-2`; in the stack it carries the prefix of
    /// [`Stack::with_prefix`], if any (`instance.resource_name()`), and the `Name` tag is
    /// `<stack>-<that>`.
    pub name: String,
    /// Availability zone.
    pub zone: String,
    /// Fixed private IP.
    pub private_ip: Ipv4Addr,
    /// The private DNS name AWS gives that address (`ip-10-0-1-20.<region>.compute.internal`):
    /// the name Kafka advertises, known before the instance exists.
    pub private_dns: String,
    /// The instance.
    pub instance: Instance,
}

/// The registered platform.
#[derive(Debug, Clone)]
pub struct KafkaPlatform {
    /// Every node, controllers first.
    pub nodes: Vec<Node>,
    /// The network the nodes are in (registered with the platform, or another stack's).
    pub network: KafkaNetwork,
    /// The operator's key pair every node carries.
    pub key_pair: KeyPair,
    /// The instance profile every node carries (its role may describe instances).
    pub instance_profile: IamInstanceProfile,
    /// The controllers', brokers' and Connect's security group (add rules to it).
    pub kafka_security_group: SecurityGroup,
    /// The platform node's security group.
    pub platform_security_group: SecurityGroup,
    /// The generated CA, certificates and passwords of a SASL_SSL platform.
    pub credentials: Option<Credentials>,
    /// The deployment's commands (none where `[deploy]` disables it).
    pub deployment: deploy::Deployment,
}

const NODE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:DescribeInstances","ec2:DescribeTags"],"Resource":"*"}]}"#;
const EC2_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

struct Rules<'a> {
    stack: &'a mut Stack,
}

impl Rules<'_> {
    fn tcp(&mut self, name: &str, group: &SecurityGroup, port: u16, peer: Peer<'_>) {
        let (cidr, source) = match peer {
            Peer::Cidr(c) => (Some(c.to_owned()), None),
            Peer::Group(g) => (None, Some(g)),
        };
        self.stack.resource::<SecurityGroupRule>(
            name,
            SecurityGroupRuleArgs {
                security_group_id: group.id(),
                direction: "ingress".into(),
                protocol: "tcp".into(),
                from_port: i64::from(port).into(),
                to_port: i64::from(port).into(),
                cidr_ipv4: cidr.into(),
                source_security_group_id: match source {
                    Some(g) => g.id().map(Some),
                    None => Output::known(None),
                },
                description: Some(name.to_owned()).into(),
                ..Default::default()
            },
        );
    }
}

enum Peer<'a> {
    Cidr(&'a str),
    Group(&'a SecurityGroup),
}

/// The platform's network: a VPC with one /24 subnet per zone of `network.availability_zones`
/// (`<vpc_cidr>.<n>.0/24` for the n-th zone). [`KafkaNetwork::register`] makes it on the stack;
/// [`KafkaNetwork::from_stack`] takes the one another stack made (its outputs
/// [`KafkaNetwork::export`]s), so a network stack and a Kafka stack can be applied apart.
#[derive(Debug, Clone)]
pub struct KafkaNetwork {
    /// The VPC's id.
    pub vpc_id: Output<String>,
    /// One subnet per zone, in the order of `network.availability_zones`.
    pub subnets: Vec<NetworkSubnet>,
}

/// A zone's subnet of a [`KafkaNetwork`].
#[derive(Debug, Clone)]
pub struct NetworkSubnet {
    /// The availability zone.
    pub zone: String,
    /// Its /24.
    pub cidr: Ipv4Net,
    /// The subnet's id.
    pub id: Output<String>,
}

/// The stack output holding a [`KafkaNetwork`]'s VPC id.
pub const VPC_ID_OUTPUT: &str = "vpc_id";

/// The stack output holding the subnet id of `zone`.
pub fn subnet_output(zone: &str) -> String {
    format!("subnet_id_{zone}")
}

/// The /24 of each zone of the configuration, in its order (the policy made sure the VPC
/// has room for them).
fn zone_cidrs(config: &AwsSite) -> Vec<(String, Ipv4Net)> {
    config.network.zone_subnets().unwrap_or_default()
}

impl KafkaNetwork {
    /// Checks the policies, then registers the network of `config` on `stack`: the VPC (DNS
    /// hostnames on), an internet gateway, a public route table and one subnet per zone.
    pub fn register(stack: &mut Stack, config: &PlatformConfig) -> Result<Self, PolicyErrors> {
        policy::check_on_this_machine(config)?;
        Ok(register_network(stack, aws_site(config)?))
    }

    /// The network the stack `network_stack` registered and exported (read through the
    /// stack reference `name`, known at preview), with the zones and addresses of `config`:
    /// both stacks are registered from one environment, so they agree.
    pub fn from_stack(
        stack: &mut Stack,
        name: &str,
        network_stack: &str,
        config: &PlatformConfig,
    ) -> Result<Self, PolicyErrors> {
        policy::check_on_this_machine(config)?;
        let zones = zone_cidrs(aws_site(config)?);
        let reference = stack.reference(name, network_stack, Vec::<String>::new());
        Ok(Self {
            vpc_id: reference.output(VPC_ID_OUTPUT),
            subnets: zones
                .into_iter()
                .map(|(zone, cidr)| NetworkSubnet {
                    id: reference.output(&subnet_output(&zone)),
                    zone,
                    cidr,
                })
                .collect(),
        })
    }

    /// Exports the VPC's id ([`VPC_ID_OUTPUT`]) and each zone's subnet id
    /// ([`subnet_output`]): what [`KafkaNetwork::from_stack`] reads.
    pub fn export(&self, stack: &mut Stack) {
        stack.export(VPC_ID_OUTPUT, self.vpc_id.clone());
        for subnet in &self.subnets {
            stack.export(&subnet_output(&subnet.zone), subnet.id.clone());
        }
    }
}

/// The AMI every node boots, a data source.
fn register_ami(stack: &mut Stack, site: &AwsSite) -> Ami {
    stack.data_source::<Ami>(
        "ami",
        AmiArgs {
            owners: site.ami.owners.clone().into(),
            name: site.ami.name.clone().into(),
            architecture: site.ami.architecture.clone().into(),
        },
    )
}

fn aws_site(config: &PlatformConfig) -> Result<&AwsSite, PolicyErrors> {
    config.aws().ok_or_else(|| {
        violation(
            "local",
            "this environment runs on this machine: register it with LocalPlatform",
        )
    })
}

/// The IAM identity every node carries.
struct NodeIdentity {
    key: KeyPair,
    profile: IamInstanceProfile,
}

/// A name AWS needs unique in an account or VPC (a security group's, a key pair's, a role's):
/// `<stack>-<prefix><base>`.
fn aws_name(stack: &Stack, base: &str) -> String {
    format!("{}-{}", stack.name(), stack.qualified(base))
}

fn violation(field: impl Into<String>, message: impl Into<String>) -> PolicyErrors {
    PolicyErrors(vec![Violation {
        field: field.into(),
        message: message.into(),
    }])
}

impl KafkaPlatform {
    /// Checks the policies, then registers the whole platform on `stack`, with its rendered
    /// configuration as the folder `rendered` (a `local:Folder` named `config`).
    pub fn register(
        stack: &mut Stack,
        config: &PlatformConfig,
        rendered: &str,
    ) -> Result<Self, PolicyErrors> {
        policy::check_on_this_machine(config)?;
        let site = aws_site(config)?;
        let ami = register_ami(stack, site);
        let network = register_network(stack, site);
        stack.export(VPC_ID_OUTPUT, network.vpc_id.clone());
        Self::register_with(stack, config, site, rendered, ami, network)
    }

    /// [`KafkaPlatform::register`] in a network made apart (another stack's, through
    /// [`KafkaNetwork::from_stack`]): everything but the network.
    pub fn register_in(
        stack: &mut Stack,
        config: &PlatformConfig,
        rendered: &str,
        network: KafkaNetwork,
    ) -> Result<Self, PolicyErrors> {
        policy::check_on_this_machine(config)?;
        let site = aws_site(config)?;
        if network.subnets.is_empty() {
            return Err(violation(
                "network.availability_zones",
                "the network has no subnet to put the nodes in",
            ));
        }
        let ami = register_ami(stack, site);
        Self::register_with(stack, config, site, rendered, ami, network)
    }

    /// Everything of the platform but its AMI and its network.
    fn register_with(
        stack: &mut Stack,
        config: &PlatformConfig,
        site: &AwsSite,
        rendered: &str,
        ami: Ami,
        network: KafkaNetwork,
    ) -> Result<Self, PolicyErrors> {
        let (kafka_sg, platform_sg) = register_security(stack, config, site, &network.vpc_id);
        let identity = register_identity(stack, site);
        let nodes = register_nodes(
            stack,
            site,
            &ami,
            &network,
            &identity,
            (&kafka_sg, &platform_sg),
        );
        let subjects = nodes
            .iter()
            .filter(|n| crate::security::has_certificate(n.role))
            .map(|n| CertificateSubject {
                name: n.name.clone(),
                files: format!("{}-{}", stack.name(), n.instance.resource_name()),
                dns_name: Output::known(n.private_dns.clone()),
                ip: n.private_ip.to_string(),
                keystore: false,
            })
            .collect();
        let credentials = crate::security::register(stack, config, subjects);
        let rendered_config = crate::render::register(
            stack,
            config,
            node_facts(stack.name(), &nodes, Known),
            rendered,
        );
        stack.export(NODES_OUTPUT, node_facts(stack.name(), &nodes, Applied));
        let deployment = deploy::register(
            stack,
            config,
            site,
            &rendered_config,
            credentials.as_ref(),
            &nodes,
            rendered,
        );
        register_roll(stack, config, site, &nodes, &deployment);
        Ok(Self {
            nodes,
            network,
            key_pair: identity.key,
            instance_profile: identity.profile,
            kafka_security_group: kafka_sg,
            platform_security_group: platform_sg,
            credentials,
            deployment,
        })
    }
}

fn register_network(stack: &mut Stack, config: &AwsSite) -> KafkaNetwork {
    let net = &config.network;
    let zones = zone_cidrs(config);
    let vpc = stack.resource::<Vpc>(
        "vpc",
        VpcArgs {
            cidr_block: net.vpc_cidr.to_string().into(),
            enable_dns_hostnames: Some(true).into(),
            enable_dns_support: Some(true).into(),
            ..Default::default()
        },
    );
    let igw = stack.resource::<InternetGateway>(
        "igw",
        InternetGatewayArgs {
            vpc_id: vpc.id().map(Some),
            ..Default::default()
        },
    );
    let table = stack.resource::<RouteTable>(
        "public",
        RouteTableArgs {
            vpc_id: vpc.id(),
            ..Default::default()
        },
    );
    stack.resource::<Route>(
        "public-default",
        RouteArgs {
            route_table_id: table.id(),
            destination_cidr_block: "0.0.0.0/0".into(),
            gateway_id: igw.id(),
        },
    );
    let mut subnets = Vec::new();
    for (zone, cidr) in zones {
        let subnet = stack.resource::<Subnet>(
            &format!("subnet-{zone}"),
            SubnetArgs {
                vpc_id: vpc.id(),
                cidr_block: cidr.to_string().into(),
                availability_zone: Some(zone.clone()).into(),
                map_public_ip_on_launch: Some(true).into(),
                ..Default::default()
            },
        );
        stack.resource::<RouteTableAssociation>(
            &format!("public-{zone}"),
            RouteTableAssociationArgs {
                route_table_id: table.id(),
                subnet_id: subnet.id(),
            },
        );
        subnets.push(NetworkSubnet {
            zone,
            cidr,
            id: subnet.id(),
        });
    }
    KafkaNetwork {
        vpc_id: vpc.id(),
        subnets,
    }
}

/// The Kafka nodes' and the platform node's security groups with their rules.
fn register_security(
    stack: &mut Stack,
    config: &PlatformConfig,
    site: &AwsSite,
    vpc_id: &Output<String>,
) -> (SecurityGroup, SecurityGroup) {
    let net = &site.network;
    let kafka_sg = stack.resource::<SecurityGroup>(
        "kafka-sg",
        SecurityGroupArgs {
            name: aws_name(stack, "kafka").into(),
            description: "Kafka controllers, brokers and Connect".into(),
            vpc_id: vpc_id.clone(),
            ..Default::default()
        },
    );
    let platform_sg = stack.resource::<SecurityGroup>(
        "platform-sg",
        SecurityGroupArgs {
            name: aws_name(stack, "platform").into(),
            description: "Prometheus, Grafana, Alertmanager and the admin API".into(),
            vpc_id: vpc_id.clone(),
            ..Default::default()
        },
    );
    let vpc = net.vpc_cidr.to_string();
    let operator = net.operator_cidr.to_string();
    let mut rules = Rules { stack };
    for (group, sg) in ports::SECURITY_GROUPS.iter().zip([&kafka_sg, &platform_sg]) {
        for listener in group.opens() {
            let peer = match listener.open_to {
                OpenTo::Vpc => Peer::Cidr(&vpc),
                OpenTo::Operator => Peer::Cidr(&operator),
                OpenTo::PlatformNode => Peer::Group(&platform_sg),
                OpenTo::NoOne => continue,
            };
            let name = format!("{}-{}", group.name, listener.name);
            rules.tcp(&name, sg, listener.port(&config.ports), peer);
        }
    }
    (kafka_sg, platform_sg)
}

/// The operator's key pair, and the role (EC2 may describe instances) with its profile.
fn register_identity(stack: &mut Stack, config: &AwsSite) -> NodeIdentity {
    let env = stack.name().to_owned();
    let key = stack.resource::<KeyPair>(
        "key",
        KeyPairArgs {
            key_name: aws_name(stack, "operator").into(),
            public_key: config.ssh.public_key.clone().into(),
            ..Default::default()
        },
    );
    let role = stack.resource::<IamRole>(
        "node-role",
        IamRoleArgs {
            name: aws_name(stack, "kafka-node").into(),
            assume_role_policy: EC2_TRUST.into(),
            description: Some(format!("Kafka platform nodes of {env}")).into(),
            ..Default::default()
        },
    );
    stack.resource::<IamRolePolicy>(
        "node-role-policy",
        IamRolePolicyArgs {
            role: role.name(),
            name: "describe-instances".into(),
            policy: NODE_POLICY.into(),
        },
    );
    let profile = stack.resource::<IamInstanceProfile>(
        "node-profile",
        IamInstanceProfileArgs {
            name: aws_name(stack, "kafka-node").into(),
            role: role.name().map(Some),
        },
    );
    NodeIdentity { key, profile }
}

/// Every node, round-robin over the zones, each with its fixed private IP.
fn register_nodes(
    stack: &mut Stack,
    config: &AwsSite,
    ami: &Ami,
    network: &KafkaNetwork,
    identity: &NodeIdentity,
    (kafka_sg, platform_sg): (&SecurityGroup, &SecurityGroup),
) -> Vec<Node> {
    let zones = u32::try_from(network.subnets.len()).unwrap_or(u32::MAX);
    let mut nodes = Vec::new();
    for node_role in Role::ALL {
        let group = config.nodes.group(node_role);
        let sg = if node_role == Role::Platform {
            platform_sg
        } else {
            kafka_sg
        };
        for (i, subnet) in (0..config.nodes.count(node_role)).zip(network.subnets.iter().cycle()) {
            let private_ip = node_address(subnet.cidr, node_role, i / zones);
            let name = node_role.node_name(i + 1);
            // Its fixed address is taken until the old instance is gone: replaced, it goes
            // first.
            let instance = stack.resource_with::<Instance>(
                &name,
                InstanceArgs {
                    ami: ami.image_id(),
                    instance_type: group.instance_type.clone().into(),
                    subnet_id: subnet.id.clone(),
                    private_ip: Some(private_ip.to_string()).into(),
                    security_group_ids: Output::all([sg.id()]),
                    key_name: identity.key.key_name().map(Some),
                    iam_instance_profile: identity.profile.name().map(Some),
                    root_volume_size: group.root_volume_gib.map(i64::from).into(),
                    associate_public_ip: Some(true).into(),
                    tags: Output::known([("role".to_owned(), node_role.name().to_owned())].into()),
                    ..Default::default()
                },
                ResourceOptions::new().delete_before_replace(),
            );
            nodes.push(Node {
                role: node_role,
                index: i + 1,
                name,
                zone: subnet.zone.clone(),
                private_ip,
                private_dns: private_dns(&config.aws.region, private_ip),
                instance,
            });
        }
    }
    nodes
}

/// The Kafka nodes roll one at a time, controllers first and the active one last, each
/// behind the cluster's health read through the platform node ([`KafkaGate`]: the admin API,
/// and the quorum from Prometheus): changed in place (an instance type: stopped, changed,
/// started), or replaced (an image, user data) and then deployed onto alone
/// ([`deploy::Deployment::onto_node`], which completes the member) before the gate is asked
/// and the next is touched.
///
/// Without a deployment nor a `platform_host` to read, no Kafka runs to ask: nothing rolls.
/// With a `platform_host` but no deployment, a replaced node has nothing to serve until
/// someone deploys onto it: only changes in place roll.
fn register_roll(
    stack: &mut Stack,
    config: &PlatformConfig,
    site: &AwsSite,
    nodes: &[Node],
    deployment: &deploy::Deployment,
) {
    let Some(platform) = nodes.iter().find(|n| n.role == Role::Platform) else {
        return;
    };
    if !site.deploy.enabled && site.deploy.platform_host.is_none() {
        return;
    }
    let ports = &config.ports;
    let of = |role: Role| nodes.iter().filter(move |n| n.role == role);
    let member = |n: &Node| n.instance.resource_name().to_owned();
    let id = |index: u32| i32::try_from(index).unwrap_or(-1);
    let gate = KafkaGate::new(of(Role::Broker).map(|n| (member(n), id(n.index))))
        .with_federated_controllers(of(Role::Controller).map(|n| {
            let exporter = format!("{}:{}", n.private_ip, ports.jmx_exporter_controller);
            (
                member(n),
                id(crate::render::controller_id(n.index)),
                exporter,
            )
        }));
    let host = match &site.deploy.platform_host {
        Some(host) => Output::known(host.clone()),
        None => platform.instance.public_ip(),
    };
    let (admin_api, prometheus) = (ports.admin_api, ports.prometheus);
    let input = host.map(move |host| {
        serde_json::json!({
            "admin_api": format!("http://{host}:{admin_api}"),
            "prometheus": format!("http://{host}:{prometheus}"),
        })
    });
    let mut group = RollingGroup::new("kafka", gate).input(input);
    if !site.deploy.enabled {
        group = group.updates_only();
    }
    for node in of(Role::Controller).chain(of(Role::Broker)) {
        group = group.member(&node.instance);
        if let Some(deploy) = deployment.onto_node.get(&node.name) {
            group = group.completed_by(deploy);
        }
    }
    stack.rolling_group(group);
}

/// Which [`NodeFacts`] [`node_facts`] describes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Facts {
    /// What the renderers read: a controller or broker known before its instance exists
    /// (the inventory reaches it through the platform node at its private address, its host
    /// key kept under its name), so the files wait on no node a roll replaces; its id and
    /// public IP are empty. The Connect and platform nodes as applied: a replaced one changes
    /// the files (the Connect node's host key is kept under its name and instance id), and
    /// every step deploys onto it again.
    Known,
    /// Everything, for the `nodes` output: each instance's id and public IP too.
    Applied,
}
use Facts::{Applied, Known};

/// One [`NodeFacts`] per node: the `nodes` output ([`Facts::Applied`]), or what the
/// renderers read ([`Facts::Known`]).
fn node_facts(env: &str, nodes: &[Node], facts: Facts) -> Output<Vec<NodeFacts>> {
    let described = nodes.iter().map(|n| {
        let known = NodeFacts {
            name: format!("{env}-{}", n.instance.resource_name()),
            role: n.role,
            index: n.index,
            zone: n.zone.clone(),
            id: String::new(),
            private_ip: n.private_ip.to_string(),
            public_ip: String::new(),
            private_dns: n.private_dns.clone(),
            port_shift: 0,
        };
        if facts == Known && matches!(n.role, Role::Controller | Role::Broker) {
            return Output::known(known);
        }
        n.instance
            .id()
            .zip(n.instance.public_ip())
            .map(move |(id, public_ip)| NodeFacts {
                id,
                public_ip,
                ..known.clone()
            })
    });
    Output::all(described)
}

/// The private DNS name AWS gives an instance at `ip` in `region` (an IP name: the default
/// in a VPC with DNS hostnames, and the same for the instance that replaces it).
fn private_dns(region: &str, ip: Ipv4Addr) -> String {
    let ip = ip.to_string().replace('.', "-");
    match region {
        "us-east-1" => format!("ip-{ip}.ec2.internal"),
        _ => format!("ip-{ip}.{region}.compute.internal"),
    }
}
