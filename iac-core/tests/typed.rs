//! Typed resources declared with `resource!`, end to end.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::sync::Arc;

use iac_core::testing::TestProvider;
use iac_core::{ApplyOptions, Engine, FileBackend, Output, Providers, Stack};

iac_core::resource! {
    /// A network.
    pub resource Network("typed:Network") {
        args NetworkArgs, values NetworkValues {
            /// CIDR block.
            cidr: String,
        }
        outputs {
            /// The ARN.
            arn: String,
        }
    }
}

iac_core::resource! {
    /// A subnet of a network.
    pub resource Subnet("typed:Subnet") {
        args SubnetArgs, values SubnetValues {
            /// The network's id.
            network_id: String,
            /// The network's ARN, as a number (wrong on purpose in one test).
            label: u32,
            /// Tags.
            tags: Vec<String>,
        }
        outputs {}
    }
}

fn engine(provider: &Arc<TestProvider>, dir: &std::path::Path) -> Engine {
    let mut providers = Providers::new();
    providers.register(
        provider.clone(),
        [<Network as iac_core::ResourceType>::TYPE, "typed:Subnet"],
    );
    Engine::new(providers, FileBackend::new(dir))
}

#[tokio::test]
async fn typed_outputs_flow_into_typed_inputs() {
    let provider = Arc::new(TestProvider::new());
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&provider, dir.path());
    let mut stack = Stack::new("dev");
    let net = stack.resource::<Network>(
        "net",
        NetworkArgs {
            cidr: "10.0.0.0/16".to_owned().into(),
        },
    );
    let subnet = stack.resource::<Subnet>(
        "subnet",
        SubnetArgs {
            network_id: net.id(),
            label: 7.into(),
            tags: Output::all([net.cidr(), "extra".to_owned().into()]),
        },
    );
    stack.export("subnet_network", subnet.network_id());
    let program = stack.build().unwrap();
    let plan = engine.preview(&program).await.unwrap();
    let summary = engine
        .apply(&program, &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(summary.is_success(), "{summary:?}");
    let state = engine.state("dev").await.unwrap().unwrap();
    let net_id = &state.resource("net").unwrap().id;
    let subnet_inputs = &state.resource("subnet").unwrap().inputs;
    assert_eq!(subnet_inputs["network_id"], serde_json::json!(net_id));
    assert_eq!(
        subnet_inputs["tags"],
        serde_json::json!(["10.0.0.0/16", "extra"])
    );
    assert_eq!(state.outputs["subnet_network"], serde_json::json!(net_id));
}

#[tokio::test]
async fn an_output_of_the_wrong_type_fails_that_step_with_the_property_named() {
    let provider = Arc::new(TestProvider::new());
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&provider, dir.path());
    let mut stack = Stack::new("dev");
    let net = stack.resource::<Network>(
        "net",
        NetworkArgs {
            cidr: "10.0.0.0/16".to_owned().into(),
        },
    );
    // `arn` is a string; reading it as a number is a program error found when it is known.
    stack.resource::<Subnet>(
        "subnet",
        SubnetArgs {
            label: net.as_ref().output::<u32>("arn"),
            ..Default::default()
        },
    );
    let program = stack.build().unwrap();
    let plan = engine.preview(&program).await.unwrap();
    let summary = engine
        .apply(&program, &plan, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(summary.failed.len(), 1);
    assert!(
        summary.failed[0].error.starts_with("input `label`: output `arn` of resource `net` is not of the expected type: invalid type: string"),
        "{}",
        summary.failed[0].error
    );
    assert_eq!(provider.names(iac_core::testing::CallKind::Create), ["net"]);
}
