//! The platform as two stacks: `<name>-network` (the VPC and a subnet per zone) and
//! `<name>-kafka` (everything else, in that network, read through a stack reference at
//! preview). Each is applied and destroyed on its own; both come from `examples/split.toml`.
//!
//! ```sh
//! eval "$(scripts/moto.sh start)"
//! cargo run -p kafka-components --example split -- apply network
//! cargo run -p kafka-components --example split -- apply kafka
//! cargo run -p kafka-components --example split -- outputs network
//! cargo run -p kafka-components --example split -- destroy kafka
//! cargo run -p kafka-components --example split -- destroy network
//! ```
//!
//! Arguments: `<preview|apply|destroy|outputs> <network|kafka> [name]` (name: `split`); state
//! in `.iac/split-state`, the Kafka stack's configuration rendered to `.iac/split-rendered`.

use std::path::Path;

use iac_aws::AwsProvider;
use iac_core::{ApplyOptions, Engine, FileBackend, Program, Progress, Providers, Stack};
use kafka_components::{KafkaNetwork, KafkaPlatform, PlatformConfig};

const USAGE: &str = "usage: split <preview|apply|destroy|outputs> <network|kafka> [name]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (verb, part) = match (args.first(), args.get(1)) {
        (Some(verb), Some(part)) => (verb.as_str(), part.as_str()),
        _ => return Err(USAGE.into()),
    };
    let name = args.get(2).map_or("split", String::as_str);
    let network = format!("{name}-network");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let config = PlatformConfig::load(&dir, "split")?;

    if !["preview", "apply", "destroy", "outputs"].contains(&verb) {
        return Err(USAGE.into());
    }
    let (stack_name, stack) = match part {
        "network" => {
            let mut stack = Stack::new(network.clone());
            KafkaNetwork::register(&mut stack, &config)?.export(&mut stack);
            (network, stack)
        }
        "kafka" => {
            let kafka = format!("{name}-kafka");
            let mut stack = Stack::new(kafka.clone());
            let net = KafkaNetwork::from_stack(&mut stack, "network", &network, &config)?;
            KafkaPlatform::register_in(&mut stack, &config, ".iac/split-rendered", net)?;
            (kafka, stack)
        }
        _ => return Err(USAGE.into()),
    };
    let program = if verb == "destroy" {
        Program::empty(&stack_name)?
    } else {
        stack.build()?
    };

    let mut providers = Providers::new();
    iac_local::LocalProvider::new().register(&mut providers);
    let Some(site) = config.aws() else {
        return Err("split.toml must describe an AWS environment".into());
    };
    AwsProvider::connect(site.aws.settings())
        .await?
        .register(&mut providers);
    let engine = Engine::new(providers, FileBackend::new(".iac/split-state"));
    if verb == "outputs" {
        for (key, value) in engine.outputs(&stack_name).await? {
            println!("{key}: {value}");
        }
        return Ok(());
    }
    let plan = engine.preview(&program).await?;
    print!("{}", plan.render());
    if verb == "preview" {
        return Ok(());
    }
    let progress = Progress::stdout();
    let options = ApplyOptions {
        events: Some(progress.events()),
        ..ApplyOptions::default()
    };
    let summary = engine.apply(&program, &plan, &options).await?;
    progress.finish().await;
    println!("{summary}");
    if summary.is_success() {
        Ok(())
    } else {
        Err(format!("stack {stack_name}: some steps failed").into())
    }
}
