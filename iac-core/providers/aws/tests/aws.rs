//! The AWS provider against a real EC2/IAM API: `moto_server` on 127.0.0.1, reached through
//! the AWS SDK via `AWS_ENDPOINT_URL` (scripts/test.sh starts it; by hand:
//! `eval "$(scripts/moto.sh start)"`). Every test uses its own stack name, so tests share one
//! emulator.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use common::*;
#[tokio::test]
async fn the_full_network_is_created_described_back_and_a_second_apply_changes_nothing() {
    let world = World::new().await;
    let p = Platform::new("aws-full");
    let summary = world.up(&platform(&p)).await;
    // 12 shared resources, a subnet, route association and instance per zone, one Elastic IP.
    assert_eq!(summary.counts.create, 22, "{summary:#?}");

    // Described back from the API, not from state.
    let vpc_id = world.id(&p.stack, "vpc").await;
    let subnets = world
        .ec2
        .describe_subnets()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(&vpc_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut zones: Vec<(String, String)> = subnets
        .subnets()
        .iter()
        .map(|s| {
            (
                s.cidr_block().unwrap().to_owned(),
                s.availability_zone().unwrap().to_owned(),
            )
        })
        .collect();
    zones.sort();
    assert_eq!(
        zones,
        [
            ("10.42.1.0/24".to_owned(), "eu-central-1a".to_owned()),
            ("10.42.2.0/24".to_owned(), "eu-central-1b".to_owned()),
            ("10.42.3.0/24".to_owned(), "eu-central-1c".to_owned())
        ]
    );
    for i in 1..=3 {
        let id = world.id(&p.stack, &format!("controller-{i}")).await;
        let out = world
            .ec2
            .describe_instances()
            .instance_ids(&id)
            .send()
            .await
            .unwrap();
        let instance = &out.reservations()[0].instances()[0];
        assert_eq!(
            instance.private_ip_address(),
            Some(format!("10.42.{i}.10").as_str())
        );
        assert_eq!(
            instance.instance_type().map(|t| t.as_str()),
            Some("t3.small")
        );
        let name = instance
            .tags()
            .iter()
            .find(|t| t.key() == Some("Name"))
            .and_then(|t| t.value());
        assert_eq!(name, Some(format!("{}-controller-{i}", p.stack).as_str()));
        let interface = &instance.network_interfaces()[0];
        assert_eq!(
            interface.groups().len(),
            1,
            "the group is on the primary interface"
        );
    }
    let eip = world
        .state(&p.stack)
        .await
        .resource("controller-1-ip")
        .unwrap()
        .outputs["public_ip"]
        .clone();
    assert!(eip.as_str().is_some_and(|ip| !ip.is_empty()), "{eip}");

    let before = world.mutations();
    let plan = world.engine.preview(&platform(&p)).await.unwrap();
    assert!(!plan.has_changes(), "{}", plan.render());
    world.up(&platform(&p)).await;
    assert_eq!(
        world.mutations(),
        before,
        "a second apply must make no mutating call"
    );
}

#[tokio::test]
async fn updates_happen_in_place_and_destroy_leaves_nothing_tagged() {
    let world = World::new().await;
    let mut p = Platform::new("aws-update");
    world.up(&platform(&p)).await;
    let instance = world.id(&p.stack, "controller-2").await;
    let ssh = world.id(&p.stack, "ssh").await;

    // Instance type (stop/modify/start), tags, one rule added back and one changed.
    p.instance_type = "t3.medium";
    p.env_tag = "staging";
    p.kafka_port = 9094;
    let plan = world.engine.preview(&platform(&p)).await.unwrap();
    let ops: BTreeMap<_, _> = plan
        .record()
        .steps
        .iter()
        .map(|s| (s.name.clone(), s.op))
        .collect();
    assert_eq!(ops["controller-2"], Operation::Update);
    assert_eq!(ops["vpc"], Operation::Update);
    assert_eq!(
        ops["kafka-clients"],
        Operation::Replace,
        "a changed rule is replaced"
    );
    assert_eq!(
        ops["kafka-sg"],
        Operation::Same,
        "the group itself is untouched"
    );
    let summary = world
        .engine
        .apply(&platform(&p), &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(summary.is_success(), "{summary:#?}");
    assert_eq!(
        world.id(&p.stack, "controller-2").await,
        instance,
        "updated in place, not replaced"
    );
    let out = world
        .ec2
        .describe_instances()
        .instance_ids(&instance)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.reservations()[0].instances()[0]
            .instance_type()
            .map(|t| t.as_str()),
        Some("t3.medium")
    );

    // Removing a rule deletes exactly that rule.
    let before = world.mutations();
    p.ssh_rule = false;
    world.up(&platform(&p)).await;
    assert_eq!(world.mutations(), before + 1);
    let sg = world.id(&p.stack, "kafka-sg").await;
    let group = world
        .ec2
        .describe_security_groups()
        .group_ids(&sg)
        .send()
        .await
        .unwrap();
    let ports: Vec<Option<i32>> = group.security_groups()[0]
        .ip_permissions()
        .iter()
        .map(|p| p.from_port())
        .collect();
    assert!(!ports.contains(&Some(22)), "{ports:?}");
    assert!(ports.contains(&Some(9094)), "{ports:?} {ssh}");

    let summary = world.up(&Program::empty(&p.stack).unwrap()).await;
    // 21 resources deleted; the AMI data source is forgotten, not deleted.
    assert_eq!(summary.counts.delete, 21);
    assert_eq!(world.tagged(&p.stack).await, Vec::<String>::new());
    let role = world
        .iam
        .get_role()
        .role_name(format!("{}-kafka-node", p.stack))
        .send()
        .await;
    assert!(role.is_err(), "the role must be gone");
}

fn small(stack: &str, cidr: &str, ip: &str) -> Program {
    let mut s = Stack::new(stack);
    let vpc = s.resource::<Vpc>(
        "vpc",
        VpcArgs {
            cidr_block: "10.50.0.0/16".into(),
            ..Default::default()
        },
    );
    let subnet = s.resource::<Subnet>(
        "subnet",
        SubnetArgs {
            vpc_id: vpc.id(),
            cidr_block: cidr.into(),
            ..Default::default()
        },
    );
    s.resource::<Instance>(
        "node",
        InstanceArgs {
            ami: "ami-00266546a4aac405e".into(),
            instance_type: "t3.micro".into(),
            subnet_id: subnet.id(),
            private_ip: Some(ip.to_owned()).into(),
            ..Default::default()
        },
    );
    s.build().unwrap()
}

#[tokio::test]
async fn a_subnet_cidr_change_replaces_the_subnet_and_its_instance_in_order() {
    let world = World::new().await;
    let stack = unique("aws-replace");
    world.up(&small(&stack, "10.50.1.0/24", "10.50.1.20")).await;
    let (old_subnet, old_node) = (
        world.id(&stack, "subnet").await,
        world.id(&stack, "node").await,
    );
    let program = small(&stack, "10.50.2.0/24", "10.50.2.20");
    let plan = world.engine.preview(&program).await.unwrap();
    let ops: Vec<_> = plan
        .record()
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.op))
        .collect();
    assert_eq!(
        ops,
        [
            ("vpc", Operation::Same),
            ("subnet", Operation::Replace),
            ("node", Operation::Replace)
        ]
    );
    world
        .engine
        .apply(&program, &plan, &ApplyOptions::default())
        .await
        .unwrap();
    let (new_subnet, new_node) = (
        world.id(&stack, "subnet").await,
        world.id(&stack, "node").await,
    );
    assert_ne!(new_subnet, old_subnet);
    assert_ne!(new_node, old_node);
    let gone = world
        .ec2
        .describe_subnets()
        .subnet_ids(&old_subnet)
        .send()
        .await;
    assert!(
        gone.is_err() || gone.unwrap().subnets().is_empty(),
        "the old subnet is deleted"
    );
    let out = world
        .ec2
        .describe_instances()
        .instance_ids(&new_node)
        .send()
        .await
        .unwrap();
    let node = &out.reservations()[0].instances()[0];
    assert_eq!(
        (node.subnet_id(), node.private_ip_address()),
        (Some(new_subnet.as_str()), Some("10.50.2.20"))
    );
    assert_eq!(world.state(&stack).await.resources.len(), 3);
}

#[tokio::test]
async fn drift_is_reported_by_refresh_and_repaired_by_the_next_apply() {
    let world = World::new().await;
    let p = Platform::new("aws-drift");
    world.up(&platform(&p)).await;
    let sg = world.id(&p.stack, "kafka-sg").await;
    let node = world.id(&p.stack, "controller-3").await;
    world
        .ec2
        .revoke_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(
                    aws_sdk_ec2::types::IpRange::builder()
                        .cidr_ip("203.0.113.7/32")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    world
        .ec2
        .terminate_instances()
        .instance_ids(&node)
        .send()
        .await
        .unwrap();

    let report = world.engine.refresh(&p.stack, 8).await.unwrap();
    let drift: BTreeMap<_, _> = report
        .drift
        .iter()
        .map(|d| (d.name.as_str(), d.drift.clone()))
        .collect();
    assert_eq!(drift.get("ssh"), Some(&Drift::Deleted), "{report:#?}");
    assert_eq!(
        drift.get("controller-3"),
        Some(&Drift::Deleted),
        "{report:#?}"
    );
    // The Elastic IP gave controller-1 a new public IP: recorded, but not drift to repair.
    match drift.get("controller-1") {
        Some(Drift::OutputsChanged { diff }) => {
            assert!(diff.iter().any(|d| d.key == "public_ip"), "{diff:?}")
        }
        other => panic!("controller-1: {other:?}"),
    }
    assert_eq!(drift.len(), 3, "{report:#?}");

    let summary = world.up(&platform(&p)).await;
    assert_eq!(summary.counts.create, 2, "{summary:#?}");
    let group = world
        .ec2
        .describe_security_groups()
        .group_ids(&sg)
        .send()
        .await
        .unwrap();
    assert!(
        group.security_groups()[0]
            .ip_permissions()
            .iter()
            .any(|p| p.from_port() == Some(22))
    );
    let fresh = world.id(&p.stack, "controller-3").await;
    let out = world
        .ec2
        .describe_instances()
        .instance_ids(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.reservations()[0].instances()[0].private_ip_address(),
        Some("10.42.3.10"),
        "the fixed IP is free again"
    );
}

/// A rule changed in place under its own id (SSH opened to the world) is drift with the
/// property diff, not a deleted rule; the next apply puts the rule on record back and leaves
/// no world-open rule behind.
#[tokio::test]
async fn a_rule_widened_in_place_is_drift_and_the_next_apply_narrows_it_again() {
    let world = World::new().await;
    let p = Platform::new("aws-rule-drift");
    world.up(&platform(&p)).await;
    let sg = world.id(&p.stack, "kafka-sg").await;
    let rule = world.id(&p.stack, "ssh").await;
    assert!(
        rule.starts_with("sgr-"),
        "rules are recorded by their id: {rule}"
    );
    world
        .ec2
        .modify_security_group_rules()
        .group_id(&sg)
        .security_group_rules(
            aws_sdk_ec2::types::SecurityGroupRuleUpdate::builder()
                .security_group_rule_id(&rule)
                .security_group_rule(
                    aws_sdk_ec2::types::SecurityGroupRuleRequest::builder()
                        .ip_protocol("tcp")
                        .from_port(22)
                        .to_port(22)
                        .cidr_ipv4("0.0.0.0/0")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    let report = world.engine.refresh(&p.stack, 8).await.unwrap();
    let ssh: Vec<String> = report
        .drift
        .iter()
        .filter(|d| d.name == "ssh")
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        ssh,
        [
            "~ ssh (aws:ec2:SecurityGroupRule): changed outside the program; apply restores it\n    cidr_ipv4: \"203.0.113.7/32\" => \"0.0.0.0/0\""
        ],
        "{report:#?}"
    );

    world.up(&platform(&p)).await;
    let group = world
        .ec2
        .describe_security_groups()
        .group_ids(&sg)
        .send()
        .await
        .unwrap();
    let ssh_peers: Vec<&str> = group.security_groups()[0]
        .ip_permissions()
        .iter()
        .filter(|p| p.from_port() == Some(22))
        .flat_map(|p| p.ip_ranges())
        .filter_map(|r| r.cidr_ip())
        .collect();
    assert_eq!(ssh_peers, ["203.0.113.7/32"], "no world-open rule is left");
    let again = world.engine.refresh(&p.stack, 8).await.unwrap();
    assert!(again.drift.iter().all(|d| d.name != "ssh"), "{again:#?}");

    // A description is set on the rule in place, keeping its id.
    let narrowed = world.id(&p.stack, "ssh").await;
    let described = Platform {
        ssh_description: Some("operator"),
        ..p.clone()
    };
    let summary = world.up(&platform(&described)).await;
    assert_eq!(
        (summary.counts.update, summary.counts.replace),
        (1, 0),
        "{summary:#?}"
    );
    assert_eq!(world.id(&p.stack, "ssh").await, narrowed);
    let rules = world
        .ec2
        .describe_security_group_rules()
        .security_group_rule_ids(&narrowed)
        .send()
        .await
        .unwrap();
    assert_eq!(
        rules.security_group_rules()[0].description(),
        Some("operator")
    );
}

#[tokio::test]
async fn bad_inputs_fail_before_any_mutation_with_the_field_named() {
    let world = World::new().await;
    let bad = |subnet_b: &str, ip: &str| {
        let mut s = Stack::new("aws-bad");
        // Only checks run here: nothing reaches AWS, so a fixed name is fine.
        let vpc = s.resource::<Vpc>(
            "vpc",
            VpcArgs {
                cidr_block: "10.60.0.0/16".into(),
                ..Default::default()
            },
        );
        let a = s.resource::<Subnet>(
            "subnet-a",
            SubnetArgs {
                vpc_id: vpc.id(),
                cidr_block: "10.60.0.0/23".into(),
                ..Default::default()
            },
        );
        s.resource::<Subnet>(
            "subnet-b",
            SubnetArgs {
                vpc_id: vpc.id(),
                cidr_block: subnet_b.into(),
                ..Default::default()
            },
        );
        s.resource::<Instance>(
            "node",
            InstanceArgs {
                ami: "ami-00266546a4aac405e".into(),
                instance_type: "t3.micro".into(),
                subnet_id: a.id(),
                private_ip: Some(ip.to_owned()).into(),
                ..Default::default()
            },
        );
        for name in ["key-1", "key-2"] {
            s.resource::<KeyPair>(
                name,
                KeyPairArgs {
                    key_name: "shared".into(),
                    public_key: PUBLIC_KEY.into(),
                    ..Default::default()
                },
            );
        }
        s.resource::<IamRole>(
            "role",
            IamRoleArgs {
                name: "kafka node".into(),
                assume_role_policy: "{\"Version\": ".into(),
                ..Default::default()
            },
        );
        s.resource::<SecurityGroupRule>(
            "udp-ish",
            SecurityGroupRuleArgs {
                security_group_id: "sg-123".into(),
                direction: "inbound".into(),
                protocol: "sctp".into(),
                from_port: 1.into(),
                to_port: 2.into(),
                cidr_ipv4: Some("10.60.0.0/16".to_owned()).into(),
                ..Default::default()
            },
        );
        s.resource::<SecurityGroupRule>(
            "rule",
            SecurityGroupRuleArgs {
                security_group_id: "sg-123".into(),
                direction: "ingress".into(),
                protocol: "tcp".into(),
                from_port: 9093.into(),
                to_port: 9091.into(),
                cidr_ipv4: Some("10.60.0.0/33".to_owned()).into(),
                ..Default::default()
            },
        );
        for name in ["ssh", "ssh-again"] {
            s.resource::<SecurityGroupRule>(
                name,
                SecurityGroupRuleArgs {
                    security_group_id: "sg-123".into(),
                    direction: "ingress".into(),
                    protocol: "tcp".into(),
                    from_port: 22.into(),
                    to_port: 22.into(),
                    cidr_ipv4: Some("10.60.0.0/16".to_owned()).into(),
                    ..Default::default()
                },
            );
        }
        s.build().unwrap()
    };
    let err = world
        .engine
        .preview(&bad("10.60.1.0/24", "10.60.2.10"))
        .await
        .unwrap_err();
    let message = err.to_string();
    for expected in [
        "resource `rule` (aws:ec2:SecurityGroupRule): `cidr_ipv4`: prefix length in `10.60.0.0/33` must be 0 to 32",
        "resource `rule` (aws:ec2:SecurityGroupRule): `from_port`: the range 9093-9091 is reversed: from_port must not exceed to_port",
        "resource `subnet-b` (aws:ec2:Subnet): `cidr_block`: 10.60.1.0/24 overlaps subnet `subnet-a` (10.60.0.0/23) in the same VPC: give each subnet its own block",
        "resource `node` (aws:ec2:Instance): `private_ip`: 10.60.2.10 is outside subnet `subnet-a` (10.60.0.0/23)",
        "resource `key-2` (aws:ec2:KeyPair): `key_name`: key pair name `shared` is also used by `key-1`: names must be unique",
        "resource `role` (aws:iam:Role): `name`: `kafka node` must be 1-64 characters of [A-Za-z0-9+=,.@_-]",
        "resource `role` (aws:iam:Role): `assume_role_policy`: is not valid JSON: EOF while parsing a value at line 1 column 12",
        "resource `udp-ish` (aws:ec2:SecurityGroupRule): `direction`: `inbound` must be `ingress` or `egress`",
        "resource `udp-ish` (aws:ec2:SecurityGroupRule): `protocol`: `sctp` is unknown: use tcp, udp, icmp or all",
        "resource `ssh-again` (aws:ec2:SecurityGroupRule): `from_port`: the same permission (group, direction, protocol, ports and peer) as rule `ssh`: AWS keeps one rule per permission; change the ports or drop one",
    ] {
        assert!(
            message.contains(expected),
            "missing:\n{expected}\nin:\n{message}"
        );
    }
    let err = world
        .engine
        .preview(&bad("10.70.0.0/24", "10.60.0.3"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("`cidr_block`: 10.70.0.0/24 is outside VPC `vpc` (10.60.0.0/16): choose a block inside it"), "{err}");
    assert!(
        err.contains(
            "`private_ip`: 10.60.0.3 is one of the five addresses AWS reserves in subnet `subnet-a`"
        ),
        "{err}"
    );
    assert_eq!(
        world.mutations(),
        0,
        "nothing may be created when check fails"
    );
}

#[tokio::test]
async fn errors_only_aws_can_know_are_surfaced_with_code_and_message() {
    let world = World::new().await;
    // A key pair that already exists outside the stack.
    let stack = unique("aws-errors");
    let taken = format!("{stack}-taken");
    world
        .ec2
        .import_key_pair()
        .key_name(&taken)
        .public_key_material(aws_sdk_ec2::primitives::Blob::new(PUBLIC_KEY))
        .send()
        .await
        .unwrap();
    let mut s = Stack::new(stack.clone());
    s.resource::<KeyPair>(
        "key",
        KeyPairArgs {
            key_name: taken.clone().into(),
            public_key: PUBLIC_KEY.into(),
            ..Default::default()
        },
    );
    let vpc = s.resource::<Vpc>(
        "vpc",
        VpcArgs {
            cidr_block: "10.80.0.0/16".into(),
            ..Default::default()
        },
    );
    let subnet = s.resource::<Subnet>(
        "subnet",
        SubnetArgs {
            vpc_id: vpc.id(),
            cidr_block: "10.80.1.0/24".into(),
            ..Default::default()
        },
    );
    s.resource::<Instance>(
        "node",
        InstanceArgs {
            ami: "ami-00000000deadbeef".into(),
            instance_type: "t3.micro".into(),
            subnet_id: subnet.id(),
            ..Default::default()
        },
    );
    let program = s.build().unwrap();
    let plan = world.engine.preview(&program).await.unwrap();
    let summary = world
        .engine
        .apply(&program, &plan, &ApplyOptions::default())
        .await
        .unwrap();
    let failed: BTreeMap<_, _> = summary
        .failed
        .iter()
        .map(|f| (f.name.as_str(), f.error.as_str()))
        .collect();
    assert!(
        failed["key"].starts_with("create failed: InvalidKeyPair.Duplicate: ImportKeyPair:"),
        "{failed:?}"
    );
    assert!(
        failed["node"].starts_with("create failed: InvalidAMIID.NotFound: RunInstances:"),
        "{failed:?}"
    );
    assert_eq!(
        summary.counts.create, 2,
        "vpc and subnet are independent of the failures"
    );
    // Nothing half-recorded: the failed creates left no pending operation.
    assert!(world.state(&stack).await.pending.is_empty());
}
