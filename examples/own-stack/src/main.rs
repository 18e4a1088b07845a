//! A stack of its own on kafka-platform's crates: the platform configured in code with its
//! defaults (brokers from `OWN_STACK_BROKERS`, default 3; Amazon Linux), one rule of its own on the
//! platform's Kafka security group (partners may reach the brokers' client port), and an
//! output of its own.
//!
//! ```sh
//! eval "$(scripts/moto.sh start)"           # the AWS emulator
//! cargo run -- preview <stack>              # in examples/own-stack
//! cargo run -- apply <stack>
//! OWN_STACK_BROKERS=4 cargo run -- apply <stack>   # an update: one more broker
//! cargo run -- destroy <stack>
//! ```

use iac_aws::{AwsProvider, AwsSettings, SecurityGroupRule, SecurityGroupRuleArgs};
use iac_core::{ApplyOptions, Engine, FileBackend, Progress, Providers, Stack};
use kafka_components::{KafkaPlatform, PlatformConfig};

const USAGE: &str = "usage: own-stack preview|apply|destroy <stack>";

/// The operator's key (replace with yours).
const PUBLIC_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq1Tt/sd65iWyd7T82le5AqNSLw8bmmV8w/kZtmgfpr operator@own-stack";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(verb), Some(name)) = (args.next(), args.next()) else {
        return Err(USAGE.into());
    };
    let mut config = PlatformConfig::on_aws("eu-central-1", "203.0.113.10/32".parse()?, PUBLIC_KEY);
    if let Some(site) = config.aws_mut() {
        site.nodes.broker.count = Some(match std::env::var("OWN_STACK_BROKERS") {
            Ok(count) => count.parse()?,
            Err(_) => 3,
        });
        // Amazon Linux 2023, an image the emulator has too (the default is Debian 12).
        site.ami.owners = vec!["amazon".to_owned()];
        site.ami.name = "al2023-ami-ecs-hvm-*-x86_64".to_owned();
        // The emulator's instances are not machines to deploy onto.
        site.deploy.enabled = false;
    }

    let mut stack = Stack::new(name.clone());
    let rendered = format!(".iac/{name}-rendered");
    let platform = KafkaPlatform::register(&mut stack, &config, &rendered)?;
    let port = i64::from(config.ports.broker_client);
    let partners = stack.resource::<SecurityGroupRule>(
        "partner-clients",
        SecurityGroupRuleArgs {
            security_group_id: platform.kafka_security_group.id(),
            direction: "ingress".into(),
            protocol: "tcp".into(),
            from_port: port.into(),
            to_port: port.into(),
            cidr_ipv4: "198.51.100.0/24".into(),
            description: "partner clients".into(),
            ..Default::default()
        },
    );
    stack.export("partner_rule", partners.id());
    let program = stack.build()?;

    let mut providers = Providers::new();
    // The rendered configuration is a folder on this machine.
    iac_local::LocalProvider::new().register(&mut providers);
    // AWS_ENDPOINT_URL (the emulator) and the standard AWS variables apply.
    let settings = AwsSettings {
        region: Some("eu-central-1".to_owned()),
        ..AwsSettings::default()
    };
    AwsProvider::connect(settings)
        .await?
        .register(&mut providers);
    let engine = Engine::new(providers, FileBackend::new(".iac/own-stack-state"));
    let progress = Progress::stdout();
    let options = ApplyOptions {
        events: Some(progress.events()),
        ..ApplyOptions::default()
    };
    let summary = match verb.as_str() {
        "preview" => {
            print!("{}", engine.preview(&program).await?.render());
            return Ok(());
        }
        "apply" => {
            let plan = engine.preview(&program).await?;
            print!("{}", plan.render());
            engine.apply(&program, &plan, &options).await?
        }
        "destroy" => engine.destroy(&name, &options).await?,
        _ => return Err(USAGE.into()),
    };
    progress.finish().await;
    println!("{summary}");
    if !summary.is_success() {
        return Err("the apply did not finish: see the failed steps above".into());
    }
    for (key, value) in engine.outputs(&name).await? {
        println!("{key}: {value}");
    }
    Ok(())
}
