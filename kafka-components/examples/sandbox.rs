//! A second stack program built only on `iac-core`, `iac-cli` and `kafka-components`: a
//! single-zone sandbox with its own environment file (`examples/sandbox.toml`), plus a rule of
//! its own (partners may reach the brokers' client port). Every verb is `iac-cli`'s.
//!
//! ```sh
//! eval "$(scripts/moto.sh start)"
//! cargo run -p kafka-components --example sandbox -- preview sandbox
//! cargo run -p kafka-components --example sandbox -- apply sandbox --yes
//! cargo run -p kafka-components --example sandbox -- destroy sandbox --yes
//! ```

use std::path::Path;

use iac_aws::{SecurityGroupRule, SecurityGroupRuleArgs};
use iac_cli::{Error, NoFlags, NoVerbs, StackProgram};
use iac_core::{Providers, Stack};
use kafka_components::{KafkaPlatform, PlatformConfig};

struct Sandbox;

impl StackProgram for Sandbox {
    const NAME: &'static str = "sandbox";
    const ABOUT: &'static str = "A single-zone Kafka sandbox with a partner rule";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    type Flags = NoFlags;
    type PlanFlags = NoFlags;
    type Verbs = NoVerbs;
    type Env = PlatformConfig;

    fn load(&self, _stack: &str, _: &NoFlags) -> Result<PlatformConfig, Error> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        PlatformConfig::load(&dir, "sandbox").map_err(Error::user)
    }

    fn register(&self, config: &mut PlatformConfig, stack: &mut Stack) -> Result<(), Error> {
        let rendered = format!(".iac/{}-rendered", stack.name());
        let platform = KafkaPlatform::register(stack, config, &rendered).map_err(Error::user)?;
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
        Ok(())
    }

    async fn providers(&self, config: &PlatformConfig) -> Result<Providers, Error> {
        kafka_components::providers(config)
            .await
            .map_err(Error::failed)
    }
}

fn main() -> std::process::ExitCode {
    iac_cli::main(&Sandbox)
}
