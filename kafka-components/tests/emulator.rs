//! The platform's stack programs applied on the AWS emulator (`AWS_ENDPOINT_URL`, as
//! `scripts/test.sh` starts it) and read back with the AWS SDK: two platforms in one stack
//! beside a VPC of the stack's own; a network stack and a Kafka stack that references it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

#[path = "support/emulator.rs"]
mod emulator;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use emulator::*;
use iac_aws::{Vpc, VpcArgs};
use iac_core::Stack;
use kafka_components::{KafkaNetwork, KafkaPlatform};

/// The `Name` tags of the stack's VPCs, as the emulator has them.
async fn vpc_names(ec2: &aws_sdk_ec2::Client, stack: &str) -> Vec<String> {
    let vpcs = ec2
        .describe_vpcs()
        .filters(by_stack(stack))
        .send()
        .await
        .unwrap_or_else(|e| panic!("the emulator does not answer DescribeVpcs: {e}"));
    let mut names: Vec<String> = vpcs.vpcs().iter().map(|v| name_tag(v.tags())).collect();
    names.sort();
    names
}

#[tokio::test]
async fn two_prefixed_platforms_and_the_stacks_own_vpc_share_one_stack() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ec2) = engine(&dir.path().join("state")).await;
    let name = format!("prefix{}", std::process::id());
    let mut stack = Stack::new(name.clone());
    let own = stack.resource::<Vpc>(
        "vpc",
        VpcArgs {
            cidr_block: "10.99.0.0/16".into(),
            ..Default::default()
        },
    );
    let mut platforms = Vec::new();
    for (colour, vpc_cidr) in [("blue", "10.0.0.0/16"), ("green", "10.1.0.0/16")] {
        let rendered = dir.path().join(colour).display().to_string();
        let platform = stack.with_prefix(&format!("{colour}-"), |stack| {
            KafkaPlatform::register(stack, &config(vpc_cidr), &rendered)
        });
        platforms.push(platform.unwrap());
    }
    assert_eq!(own.resource_name(), "vpc");
    assert_eq!(
        platforms[0]
            .network
            .vpc_id
            .dependencies()
            .map(|r| r.name())
            .collect::<Vec<_>>(),
        ["blue-vpc"]
    );
    assert_eq!(
        platforms[1].nodes[3].instance.resource_name(),
        "green-broker-1"
    );
    assert_eq!(platforms[1].nodes[3].name, "broker-1");
    let program = stack.build().unwrap();
    let plan = engine.preview(&program).await.unwrap();
    assert_eq!(
        plan.record().counts().create,
        2 * 40 + 1,
        "{}",
        plan.render()
    );
    apply_plan(&engine, &program, &plan).await;
    assert_eq!(
        vpc_names(&ec2, &name).await,
        [
            format!("{name}-blue-vpc"),
            format!("{name}-green-vpc"),
            format!("{name}-vpc")
        ]
    );
    let instances = instance_names(&ec2, &name).await;
    assert_eq!(instances.len(), 2 * 8, "{instances:?}");
    assert!(
        instances.contains(&format!("{name}-green-broker-1")),
        "{instances:?}"
    );
    let keys = ec2
        .describe_key_pairs()
        .key_names(format!("{name}-blue-operator"))
        .key_names(format!("{name}-green-operator"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("both platforms' key pairs exist: {e}"));
    assert_eq!(keys.key_pairs().len(), 2);
    let outputs = engine.outputs(&name).await.unwrap();
    for key in ["blue-nodes", "blue-vpc_id", "green-nodes", "green-vpc_id"] {
        assert!(outputs.contains_key(key), "{key} in {outputs:?}");
    }
    for colour in ["blue", "green"] {
        let hosts = std::fs::read_to_string(dir.path().join(colour).join("hosts/hosts")).unwrap();
        assert!(
            hosts.contains(&format!("{name}-{colour}-broker-1")),
            "{hosts}"
        );
    }

    let destroyed = destroy_stack(&engine, &name).await;
    assert_eq!(destroyed.counts.delete, 2 * 40 + 1);
    assert!(vpc_names(&ec2, &name).await.is_empty());
    assert!(instance_names(&ec2, &name).await.is_empty());
}

/// The ids of the stack's subnets, as the emulator has them.
async fn subnet_ids(ec2: &aws_sdk_ec2::Client, stack: &str) -> Vec<String> {
    let found = ec2
        .describe_subnets()
        .filters(by_stack(stack))
        .send()
        .await
        .unwrap_or_else(|e| panic!("the emulator does not answer DescribeSubnets: {e}"));
    let mut ids: Vec<String> = found
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_id().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_kafka_stack_runs_in_the_network_another_stack_made() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ec2) = engine(&dir.path().join("state")).await;
    let (network, kafka) = (
        format!("split{}-network", std::process::id()),
        format!("split{}-kafka", std::process::id()),
    );
    let config = config("10.30.0.0/16");
    let rendered = dir.path().join("rendered").display().to_string();
    let kafka_program = || {
        let mut stack = Stack::new(kafka.clone());
        let net = KafkaNetwork::from_stack(&mut stack, "network", &network, &config).unwrap();
        KafkaPlatform::register_in(&mut stack, &config, &rendered, net).unwrap();
        stack.build().unwrap()
    };
    let refused = engine.preview(&kafka_program()).await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!(
            "resource `network`: provider read failed: stack `{network}` has no state in this backend: apply it first"
        )
    );

    let mut stack = Stack::new(network.clone());
    KafkaNetwork::register(&mut stack, &config)
        .unwrap()
        .export(&mut stack);
    let network_program = stack.build().unwrap();
    let plan = engine.preview(&network_program).await.unwrap();
    assert_eq!(plan.record().counts().create, 10, "{}", plan.render());
    apply_plan(&engine, &network_program, &plan).await;
    let subnets = subnet_ids(&ec2, &network).await;
    assert_eq!(subnets.len(), 3);

    // The subnets are known at preview: each instance's is one of the network stack's.
    let program = kafka_program();
    let plan = engine.preview(&program).await.unwrap();
    let text = plan.render();
    assert!(!text.contains("subnet_id: (known after apply)"), "{text}");
    assert!(
        text.contains(&format!("subnet_id: \"{}\"", subnets[0]))
            || text.contains(&format!("subnet_id: \"{}\"", subnets[1])),
        "{text}"
    );
    assert_eq!(plan.record().counts().create, 30, "{text}");
    apply_plan(&engine, &program, &plan).await;
    assert!(
        vpc_names(&ec2, &kafka).await.is_empty(),
        "the Kafka stack makes no network"
    );
    let instances = ec2
        .describe_instances()
        .filters(by_stack(&kafka))
        .send()
        .await
        .unwrap();
    let placed: Vec<String> = instances
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.subnet_id().map(str::to_owned))
        .collect();
    assert_eq!(placed.len(), 8);
    assert!(
        placed.iter().all(|s| subnets.contains(s)),
        "{placed:?} in {subnets:?}"
    );

    // Destroyed in the reverse order: nothing of either is left.
    for stack in [&kafka, &network] {
        destroy_stack(&engine, stack).await;
    }
    assert!(instance_names(&ec2, &kafka).await.is_empty());
    assert!(subnet_ids(&ec2, &network).await.is_empty());
    assert!(vpc_names(&ec2, &network).await.is_empty());
}

/// What the stand-in platform node saw at each question about the cluster's health: the
/// type of each broker instance as the emulator has it then, by Name tag.
type Seen = Arc<Mutex<Vec<BTreeMap<String, String>>>>;

/// The instance type of each of the stack's brokers not terminated, by Name tag.
async fn broker_types(ec2: &aws_sdk_ec2::Client, stack: &str) -> BTreeMap<String, String> {
    live_brokers(ec2, stack)
        .await
        .iter()
        .map(|i| {
            let kind = i.instance_type().map(|t| t.as_str().to_owned());
            (name_tag(i.tags()), kind.unwrap_or_default())
        })
        .collect()
}

#[tokio::test]
async fn a_new_instance_type_for_the_brokers_rolls_them_one_at_a_time_behind_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, ec2) = engine(&dir.path().join("state")).await;
    let name = format!("roll{}", std::process::id());
    let seen = Seen::default();
    let (admin_api, prometheus) = {
        let (ec2, name, seen) = (ec2.clone(), name.clone(), Arc::clone(&seen));
        stand_in(move || {
            let (ec2, name, seen) = (ec2.clone(), name.clone(), Arc::clone(&seen));
            async move {
                let types = broker_types(&ec2, &name).await;
                seen.lock().unwrap().push(types);
            }
        })
        .await
    };
    let rendered = dir.path().join("rendered").display().to_string();
    let program = |broker_type: &str| {
        let mut config = config("10.0.0.0/16");
        config.ports.admin_api = admin_api;
        config.ports.prometheus = prometheus;
        if let Some(site) = config.aws_mut() {
            site.deploy.platform_host = Some("127.0.0.1".to_owned());
            site.nodes.broker.instance_type = broker_type.to_owned();
        }
        let mut stack = Stack::new(name.clone());
        KafkaPlatform::register(&mut stack, &config, &rendered).unwrap();
        stack.build().unwrap()
    };
    let first = program("m7i-flex.large");
    let plan = engine.preview(&first).await.unwrap();
    apply_plan(&engine, &first, &plan).await;

    let resized = program("m5.xlarge");
    let plan = engine.preview(&resized).await.unwrap();
    let preview = plan.render();
    assert!(
        preview
            .contains("\nRolling, one at a time:\n  kafka: broker-1 → broker-2 → broker-3, gate: "),
        "{preview}"
    );
    let applied = apply_plan(&engine, &resized, &plan).await;
    let operation = |resource: &str| {
        plan.record()
            .steps
            .iter()
            .find(|step| step.name == resource)
            .map(|step| step.op)
    };
    for broker in ["broker-1", "broker-2", "broker-3"] {
        assert_eq!(
            operation(broker),
            Some(iac_core::Operation::Update),
            "{preview}"
        );
    }
    assert_eq!(applied.counts.replace, 0, "{applied}");

    // Asked before and after each broker: before broker-n, n-1 brokers have the new type;
    // after it, n. Never two changed between two questions, in the group's order.
    let resized_brokers = |types: &BTreeMap<String, String>| -> Vec<String> {
        types
            .iter()
            .filter(|(_, kind)| *kind == "m5.xlarge")
            .map(|(broker, _)| broker.trim_start_matches(&format!("{name}-")).to_owned())
            .collect()
    };
    let seen: Vec<Vec<String>> = seen.lock().unwrap().iter().map(resized_brokers).collect();
    assert_eq!(
        seen,
        [
            vec![],
            vec!["broker-1"],
            vec!["broker-1"],
            vec!["broker-1", "broker-2"],
            vec!["broker-1", "broker-2"],
            vec!["broker-1", "broker-2", "broker-3"],
        ]
        .map(|v| v.into_iter().map(str::to_owned).collect::<Vec<_>>()),
    );

    destroy_stack(&engine, &name).await;
    assert!(instance_names(&ec2, &name).await.is_empty());
}
