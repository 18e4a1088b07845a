//! What the emulator tests share: the platform's configuration on the emulator, an engine
//! on it, the test's own reader of its instances, and a stand-in for the platform node.

use std::future::Future;

use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName};
use iac_aws::{AwsProvider, AwsSettings};
use iac_core::{ApplyOptions, ApplySummary, Engine, FileBackend, Plan, Program, Providers};
use iac_local::LocalProvider;
use kafka_components::PlatformConfig;

pub(crate) const PUBLIC_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq1Tt/sd65iWyd7T82le5AqNSLw8bmmV8w/kZtmgfpr operator@prefix-test";
pub(crate) const REGION: &str = "eu-central-1";

/// A platform in `vpc_cidr` (the provider refuses one fixed IP for two instances of a stack).
pub(crate) fn config(vpc_cidr: &str) -> PlatformConfig {
    let mut config = PlatformConfig::on_aws(REGION, "203.0.113.10/32".parse().unwrap(), PUBLIC_KEY);
    if let Some(site) = config.aws_mut() {
        site.network.vpc_cidr = vpc_cidr.parse().unwrap();
        // An image the emulator has.
        site.ami.owners = vec!["amazon".to_owned()];
        site.ami.name = "al2023-ami-ecs-hvm-*-x86_64".to_owned();
        // The emulator's instances are not machines to deploy onto.
        site.deploy.enabled = false;
    }
    config
}

pub(crate) fn by_stack(stack: &str) -> Filter {
    Filter::builder()
        .name("tag:iac:stack")
        .values(stack)
        .build()
}

pub(crate) fn name_tag(tags: &[aws_sdk_ec2::types::Tag]) -> String {
    tags.iter()
        .find(|t| t.key() == Some("Name"))
        .and_then(|t| t.value())
        .unwrap_or("(no Name tag)")
        .to_owned()
}

/// The stack's instances that `filter` selects, as the emulator has them.
pub(crate) async fn instances(
    ec2: &aws_sdk_ec2::Client,
    stack: &str,
    filter: Filter,
) -> Vec<Instance> {
    let found = ec2
        .describe_instances()
        .filters(by_stack(stack))
        .filters(filter)
        .send()
        .await
        .unwrap_or_else(|e| panic!("the emulator does not answer DescribeInstances: {e}"));
    found
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .cloned()
        .collect()
}

/// The `Name` tags of the stack's running instances.
pub(crate) async fn instance_names(ec2: &aws_sdk_ec2::Client, stack: &str) -> Vec<String> {
    let running = Filter::builder()
        .name("instance-state-name")
        .values("running")
        .build();
    let mut names: Vec<String> = instances(ec2, stack, running)
        .await
        .iter()
        .map(|i| name_tag(i.tags()))
        .collect();
    names.sort();
    names
}

/// An engine on `state` with the AWS provider on the emulator, and an SDK client of the
/// test's own: the independent reader.
pub(crate) async fn engine(state: &std::path::Path) -> (Engine, aws_sdk_ec2::Client) {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "needs the emulator: run scripts/test.sh, or eval \"$(scripts/moto.sh start)\" first"
    );
    let mut providers = Providers::new();
    LocalProvider::new().register(&mut providers);
    let settings = AwsSettings {
        region: Some(REGION.to_owned()),
        ..AwsSettings::default()
    };
    AwsProvider::connect(settings)
        .await
        .unwrap()
        .register(&mut providers);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .load()
        .await;
    (
        Engine::new(providers, FileBackend::new(state)),
        aws_sdk_ec2::Client::new(&sdk),
    )
}

/// A stand-in for the platform node: the admin API's `GET /cluster/health` (a whole
/// cluster of brokers 1-3, answered once `observe` saw the emulator at that moment) and
/// Prometheus's federation (controller 9991 leads). Its ports: the admin API's, Prometheus's.
pub(crate) async fn stand_in<F, Seen>(observe: F) -> (u16, u16)
where
    F: Fn() -> Seen + Clone + Send + Sync + 'static,
    Seen: Future<Output = ()> + Send,
{
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    const HEALTH: &str = r#"{"brokers":[1,2,3],"offline_partitions":0,"under_min_isr_partitions":0,"under_replicated_partitions":0,"unhealthy":[],"under_min_isr_without_broker":{"1":0,"2":0,"3":0}}"#;
    const LEADER: &str = "kafka_server_raft_metrics_current_leader{instance=\"x\"} 9991 1\n";
    let admin_api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let prometheus = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ports = (
        admin_api.local_addr().unwrap().port(),
        prometheus.local_addr().unwrap().port(),
    );
    for (listener, health) in [(admin_api, true), (prometheus, false)] {
        let observe = observe.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = vec![0u8; 4096];
                let n = socket.read(&mut request).await.unwrap_or(0);
                let asked = String::from_utf8_lossy(&request[..n]).into_owned();
                let body = if health && asked.starts_with("GET /cluster/health ") {
                    observe().await;
                    HEALTH
                } else if !health && asked.starts_with("GET /federate?") {
                    LEADER
                } else {
                    ""
                };
                let status = if body.is_empty() {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
    }
    ports
}

/// Applies `plan` of `program`, which must succeed.
pub(crate) async fn apply_plan(engine: &Engine, program: &Program, plan: &Plan) -> ApplySummary {
    let applied = engine
        .apply(program, plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(applied.is_success(), "{applied}");
    applied
}

/// Destroys `stack`, which must succeed.
pub(crate) async fn destroy_stack(engine: &Engine, stack: &str) -> ApplySummary {
    let destroyed = engine
        .destroy(stack, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(destroyed.is_success(), "{destroyed}");
    destroyed
}

/// The stack's broker instances not terminated.
pub(crate) async fn live_brokers(ec2: &aws_sdk_ec2::Client, stack: &str) -> Vec<Instance> {
    let brokers = Filter::builder().name("tag:role").values("broker").build();
    let mut live = instances(ec2, stack, brokers).await;
    live.retain(|i| i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Terminated));
    live
}
