//! A stack program of its own on kafka-platform's crates: the platform configured in code with
//! its defaults (brokers from `OWN_STACK_BROKERS`, default 3; Amazon Linux), one rule of its
//! own on the platform's Kafka security group (partners may reach the brokers' client port),
//! and an output of its own. `iac-cli` gives it every verb and flag `stacks` has:
//!
//! ```sh
//! eval "$(scripts/moto.sh start)"           # the AWS emulator
//! cargo run -- preview <stack>              # in examples/own-stack
//! cargo run -- apply <stack> --yes
//! OWN_STACK_BROKERS=4 cargo run -- apply <stack> --yes   # an update: one more broker
//! cargo run -- outputs <stack> --json
//! cargo run -- destroy <stack> --yes
//! ```

use iac_aws::{SecurityGroupRule, SecurityGroupRuleArgs};
use iac_cli::{Error, NoFlags, NoVerbs, StackProgram};
use iac_core::{Providers, Stack};
use kafka_components::{KafkaPlatform, PlatformConfig};

/// The operator's key (replace with yours).
const PUBLIC_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq1Tt/sd65iWyd7T82le5AqNSLw8bmmV8w/kZtmgfpr operator@own-stack";

struct OwnStack;

impl StackProgram for OwnStack {
    const NAME: &'static str = "own-stack";
    const ABOUT: &'static str = "The Kafka platform with a partner rule of its own";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type Flags = NoFlags;
    type PlanFlags = NoFlags;
    type Verbs = NoVerbs;
    type Env = PlatformConfig;

    fn load(&self, _stack: &str, _: &NoFlags) -> Result<PlatformConfig, Error> {
        let cidr = "203.0.113.10/32".parse().map_err(Error::user)?;
        let mut config = PlatformConfig::on_aws("eu-central-1", cidr, PUBLIC_KEY);
        if let Some(site) = config.aws_mut() {
            site.nodes.broker.count = Some(match std::env::var("OWN_STACK_BROKERS") {
                Ok(count) => count
                    .parse()
                    .map_err(|e| Error::user(format!("OWN_STACK_BROKERS={count}: {e}")))?,
                Err(_) => 3,
            });
            // Amazon Linux 2023, an image the emulator has too (the default is Debian 12).
            site.ami.owners = vec!["amazon".to_owned()];
            site.ami.name = "al2023-ami-ecs-hvm-*-x86_64".to_owned();
            // The emulator's instances are not machines to deploy onto.
            site.deploy.enabled = false;
        }
        Ok(config)
    }

    fn register(&self, config: &mut PlatformConfig, stack: &mut Stack) -> Result<(), Error> {
        let rendered = format!(".iac/{}-rendered", stack.name());
        let platform = KafkaPlatform::register(stack, config, &rendered).map_err(Error::user)?;
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
        Ok(())
    }

    /// Files on this machine (the rendered configuration), AWS (`AWS_ENDPOINT_URL`: the
    /// emulator; the standard AWS variables apply).
    async fn providers(&self, config: &PlatformConfig) -> Result<Providers, Error> {
        kafka_components::providers(config)
            .await
            .map_err(Error::failed)
    }
}

#[global_allocator]
static ALLOCATOR: iac_cli::Allocator = iac_cli::Allocator;

fn main() -> std::process::ExitCode {
    iac_cli::main(&OwnStack)
}
