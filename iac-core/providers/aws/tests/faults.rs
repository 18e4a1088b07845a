//! The AWS provider behind a fault-injecting proxy (`aws-fault-proxy`) in front of
//! `moto_server`: what a real cloud does to a client. A lost answer to any call of any
//! create, a connection closed before a create, and AWS's eventual consistency each end with
//! exactly one object per resource in the emulator, counted by an independent reader, and
//! nothing left after destroy.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use aws_fault_proxy::{Consistency, Fault, FaultProxy};
use common::*;

/// Test settings, with room for one resend of a create that was never carried out.
fn fault_settings() -> AwsSettings {
    AwsSettings {
        max_attempts: 2,
        ..settings()
    }
}

/// What the emulator holds for stack `stack` of [`platform`], counted by kind.
#[derive(Debug, PartialEq, Eq)]
struct Inventory {
    tagged: Vec<(&'static str, usize)>,
    ingress_rules: usize,
    default_routes: usize,
    associations: usize,
    roles: usize,
    role_policies: usize,
    profiles: usize,
    profile_roles: usize,
}

/// Exactly what one apply of the platform makes.
fn one_platform() -> Inventory {
    Inventory {
        tagged: vec![
            ("eipalloc", 1),
            ("i", 3),
            ("igw", 1),
            ("key", 1),
            ("rtb", 1),
            ("sg", 1),
            ("subnet", 3),
            ("vpc", 1),
        ],
        ingress_rules: 3,
        default_routes: 1,
        associations: 3,
        roles: 1,
        role_policies: 1,
        profiles: 1,
        profile_roles: 1,
    }
}

fn nothing() -> Inventory {
    Inventory {
        tagged: Vec::new(),
        ingress_rules: 0,
        default_routes: 0,
        associations: 0,
        roles: 0,
        role_policies: 0,
        profiles: 0,
        profile_roles: 0,
    }
}

async fn inventory(world: &World, stack: &str) -> Inventory {
    use aws_sdk_ec2::types::Filter;
    let mut tagged: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for id in world.tagged(stack).await {
        let prefix = match id.split('-').next().unwrap_or_default() {
            "eipalloc" => "eipalloc",
            "i" => "i",
            "igw" => "igw",
            "key" => "key",
            "rtb" => "rtb",
            "sg" => "sg",
            "subnet" => "subnet",
            "vpc" => "vpc",
            other => panic!("unexpected id {id} ({other})"),
        };
        *tagged.entry(prefix).or_default() += 1;
    }
    let by_tag = |name: &str, value: &str| {
        Filter::builder()
            .name(format!("tag:{name}"))
            .values(value)
            .build()
    };
    let groups = world
        .ec2
        .describe_security_groups()
        .filters(by_tag("iac:stack", stack))
        .send()
        .await
        .unwrap();
    let ingress_rules = groups
        .security_groups()
        .iter()
        .flat_map(|g| g.ip_permissions())
        .map(|p| p.ip_ranges().len() + p.user_id_group_pairs().len())
        .sum();
    let tables = world
        .ec2
        .describe_route_tables()
        .filters(by_tag("iac:stack", stack))
        .send()
        .await
        .unwrap();
    let tables = tables.route_tables();
    let default_routes = tables
        .iter()
        .flat_map(|t| t.routes())
        .filter(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
        .count();
    let associations = tables
        .iter()
        .flat_map(|t| t.associations())
        .filter(|a| a.subnet_id().is_some())
        .count();
    let name = format!("{stack}-kafka-node");
    let role = world.iam.get_role().role_name(&name).send().await;
    let role_policies = match &role {
        Ok(_) => world
            .iam
            .list_role_policies()
            .role_name(&name)
            .send()
            .await
            .unwrap()
            .policy_names()
            .len(),
        Err(_) => 0,
    };
    let profile = world
        .iam
        .get_instance_profile()
        .instance_profile_name(&name)
        .send()
        .await;
    let profile_roles = profile
        .as_ref()
        .ok()
        .and_then(|p| p.instance_profile())
        .map_or(0, |p| p.roles().len());
    Inventory {
        tagged: tagged.into_iter().collect(),
        ingress_rules,
        default_routes,
        associations,
        roles: usize::from(role.is_ok()),
        role_policies,
        profiles: usize::from(profile.is_ok()),
        profile_roles,
    }
}

/// The platform applied with the first request of `action` meeting `fault`: the fault is met,
/// the run succeeds with one object of each resource, a further apply changes nothing, and
/// destroy leaves nothing.
async fn survives(action: &str, fault: Fault) {
    let proxy = FaultProxy::start(&emulator_url()).await.unwrap();
    proxy.inject(action, fault, 1);
    let world = World::behind(&proxy, fault_settings()).await;
    let p = Platform::new(&format!("fault-{}", action.to_lowercase()));
    let program = platform(&p);
    let summary = world.run(&program).await;
    assert!(summary.is_success(), "{action}: {:?}", summary.failed);
    assert_eq!(proxy.faults_left(), 0, "{action} was never called");
    assert_eq!(
        inventory(&world, &p.stack).await,
        one_platform(),
        "{action}"
    );

    let again = world.run(&program).await;
    assert!(again.is_success());
    assert_eq!(
        again.counts.create + again.counts.update + again.counts.replace,
        0,
        "{again:#?}"
    );

    let empty = Program::empty(&p.stack).unwrap();
    assert!(world.run(&empty).await.is_success());
    assert_eq!(
        inventory(&world, &p.stack).await,
        nothing(),
        "{action}: after destroy"
    );
}

macro_rules! lost_answer {
    ($($test:ident: $action:literal,)*) => {$(
        #[tokio::test]
        async fn $test() {
            survives($action, Fault::LoseResponse).await;
        }
    )*};
}

// Every call of every create, its answer lost after AWS carried it out.
lost_answer! {
    lost_create_vpc: "CreateVpc",
    lost_modify_vpc_attribute: "ModifyVpcAttribute",
    lost_create_subnet: "CreateSubnet",
    lost_modify_subnet_attribute: "ModifySubnetAttribute",
    lost_create_internet_gateway: "CreateInternetGateway",
    lost_attach_internet_gateway: "AttachInternetGateway",
    lost_create_route_table: "CreateRouteTable",
    lost_create_route: "CreateRoute",
    lost_associate_route_table: "AssociateRouteTable",
    lost_create_security_group: "CreateSecurityGroup",
    lost_authorize_security_group_ingress: "AuthorizeSecurityGroupIngress",
    lost_import_key_pair: "ImportKeyPair",
    lost_create_role: "CreateRole",
    lost_put_role_policy: "PutRolePolicy",
    lost_create_instance_profile: "CreateInstanceProfile",
    lost_add_role_to_instance_profile: "AddRoleToInstanceProfile",
    lost_run_instances: "RunInstances",
    lost_allocate_address: "AllocateAddress",
    lost_associate_address: "AssociateAddress",
}

#[tokio::test]
async fn a_create_never_carried_out_is_sent_again_once() {
    survives("CreateVpc", Fault::CloseConnection).await;
}

/// With no attempt left, a create whose outcome is unknown fails its step and stays pending;
/// the next run looks it up (it was never made), creates it once, and finishes.
#[tokio::test]
async fn a_create_whose_outcome_stays_unknown_is_resolved_by_the_next_run() {
    let proxy = FaultProxy::start(&emulator_url()).await.unwrap();
    proxy.inject("CreateVpc", Fault::CloseConnection, 1);
    let world = World::behind(&proxy, settings()).await;
    let p = Platform::new("fault-unknown");
    let program = platform(&p);
    let first = world.run(&program).await;
    assert_eq!(
        first
            .failed
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>(),
        ["vpc"]
    );
    let pending: Vec<String> = world
        .state(&p.stack)
        .await
        .pending
        .values()
        .map(|op| op.name.clone())
        .collect();
    assert_eq!(
        pending,
        ["vpc"],
        "the create's outcome is unknown: it stays pending"
    );

    let second = world.run(&program).await;
    assert!(second.is_success(), "{:?}", second.failed);
    assert_eq!(proxy.count("CreateVpc"), 2);
    assert!(world.state(&p.stack).await.pending.is_empty());
    assert_eq!(inventory(&world, &p.stack).await, one_platform());
    let empty = Program::empty(&p.stack).unwrap();
    assert!(world.run(&empty).await.is_success());
    assert_eq!(inventory(&world, &p.stack).await, nothing());
}

/// New objects invisible to describes for a while, an instance profile EC2 does not know yet,
/// and lost answers on top: the lookups wait the consistency window out instead of making a
/// second object.
#[tokio::test]
async fn eventual_consistency_makes_no_duplicate_and_no_failure() {
    let proxy = FaultProxy::start(&emulator_url()).await.unwrap();
    proxy.set_consistency(Consistency {
        invisible_after_create: std::time::Duration::from_millis(1500),
        instance_profile_propagation: std::time::Duration::from_secs(2),
    });
    for action in [
        "CreateVpc",
        "CreateSecurityGroup",
        "RunInstances",
        "ImportKeyPair",
    ] {
        proxy.inject(action, Fault::LoseResponse, 1);
    }
    let world = World::behind(&proxy, fault_settings()).await;
    let p = Platform::new("fault-consistency");
    let program = platform(&p);
    let summary = world.run(&program).await;
    assert!(summary.is_success(), "{summary:#?}");
    assert_eq!(proxy.faults_left(), 0);
    assert_eq!(inventory(&world, &p.stack).await, one_platform());
    let empty = Program::empty(&p.stack).unwrap();
    assert!(world.run(&empty).await.is_success());
    assert_eq!(inventory(&world, &p.stack).await, nothing());
}

/// A read that races a delete: the VPC is found, and gone by the next call of the read. It
/// is reported deleted, not as a failed read.
#[tokio::test]
async fn not_found_from_any_call_of_a_read_means_gone() {
    let proxy = FaultProxy::start(&emulator_url()).await.unwrap();
    let world = World::behind(&proxy, fault_settings()).await;
    let stack = unique("fault-read-race");
    let mut s = Stack::new(stack.clone());
    s.resource::<Vpc>(
        "vpc",
        VpcArgs {
            cidr_block: "10.43.0.0/16".into(),
            enable_dns_hostnames: Some(true).into(),
            ..Default::default()
        },
    );
    let program = s.build().unwrap();
    assert!(world.run(&program).await.is_success());
    let id = world.id(&stack, "vpc").await;

    proxy.inject(
        "DescribeVpcAttribute",
        Fault::Answer("InvalidVpcID.NotFound"),
        1,
    );
    let report = world.engine.refresh(&stack, 1).await.unwrap();
    assert_eq!(
        proxy.faults_left(),
        0,
        "the read reached DescribeVpcAttribute"
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let drift: Vec<(&str, &Drift)> = report
        .drift
        .iter()
        .map(|d| (d.name.as_str(), &d.drift))
        .collect();
    assert_eq!(drift, [("vpc", &Drift::Deleted)]);
    world.ec2.delete_vpc().vpc_id(id).send().await.unwrap();
}
