//! A second stack program built only on `iac-core` and `kafka-components`: a single-zone
//! sandbox with its own environment file, plus a rule of its own (partners may reach the
//! brokers' client port).
//!
//! ```sh
//! eval "$(scripts/moto.sh start)"
//! cargo run -p kafka-components --example sandbox            # preview
//! cargo run -p kafka-components --example sandbox -- apply    # apply
//! cargo run -p kafka-components --example sandbox -- destroy  # destroy
//! ```

use std::path::Path;

use iac_aws::{AwsProvider, SecurityGroupRule, SecurityGroupRuleArgs};
use iac_core::{ApplyOptions, Engine, FileBackend, Program, Providers, Stack};
use kafka_components::{KafkaPlatform, PlatformConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let verb = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "preview".to_owned());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let config = PlatformConfig::load(&dir, "sandbox")?;

    let mut stack = Stack::new("sandbox");
    let platform = KafkaPlatform::register(&mut stack, &config, ".iac/sandbox-rendered")?;
    stack.resource::<SecurityGroupRule>(
        "partner-clients",
        SecurityGroupRuleArgs {
            security_group_id: platform.kafka_security_group.id(),
            direction: "ingress".into(),
            protocol: "tcp".into(),
            from_port: i64::from(config.ports.broker_client).into(),
            to_port: i64::from(config.ports.broker_client).into(),
            cidr_ipv4: Some("198.51.100.0/24".to_owned()).into(),
            description: Some("partner clients".to_owned()).into(),
            ..Default::default()
        },
    );
    let program = match verb.as_str() {
        "destroy" => Program::empty("sandbox")?,
        _ => stack.build()?,
    };

    let mut providers = Providers::new();
    // The rendered configuration is a folder on this machine.
    iac_local::LocalProvider::new().register(&mut providers);
    let Some(site) = config.aws() else {
        return Err("sandbox.toml must describe an AWS environment".into());
    };
    AwsProvider::connect(site.aws.settings())
        .await?
        .register(&mut providers);
    let engine = Engine::new(providers, FileBackend::new(".iac/sandbox-state"));
    let plan = engine.preview(&program).await?;
    print!("{}", plan.render());
    if verb == "preview" {
        return Ok(());
    }
    let summary = engine
        .apply(&program, &plan, &ApplyOptions::default())
        .await?;
    println!("{}, {} failed", summary.counts, summary.failed.len());
    for failed in &summary.failed {
        println!("  failed {}: {}", failed.name, failed.error);
    }
    for (key, value) in engine.outputs("sandbox").await? {
        println!("{key}: {value}");
    }
    Ok(())
}
