//! The platform as two stacks: `<name>-network` (the VPC and a subnet per zone) and
//! `<name>-kafka` (everything else, in that network, read through a stack reference at
//! preview). Each is applied and destroyed on its own; both come from `examples/split.toml`,
//! and the stack's name says which part it is. Every verb is `iac-cli`'s.
//!
//! ```sh
//! eval "$(scripts/moto.sh start)"
//! cargo run -p kafka-components --example split -- apply split-network --yes
//! cargo run -p kafka-components --example split -- apply split-kafka --yes
//! cargo run -p kafka-components --example split -- outputs split-network
//! cargo run -p kafka-components --example split -- destroy split-kafka --yes
//! cargo run -p kafka-components --example split -- destroy split-network --yes
//! ```
//!
//! The Kafka stack's configuration is rendered to `.iac/<name>-kafka-rendered`.

use std::path::Path;

use iac_cli::{Error, NoFlags, NoVerbs, StackProgram};
use iac_core::{Providers, Stack};
use kafka_components::{KafkaNetwork, KafkaPlatform, PlatformConfig};

/// Which of the two stacks a run is of.
enum Part {
    Network,
    /// The Kafka stack, with the name of the network stack it is in.
    Kafka {
        network: String,
    },
}

struct Split;

impl StackProgram for Split {
    const NAME: &'static str = "split";
    const ABOUT: &'static str = "The platform as a network stack and a Kafka stack in it";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STACK_HELP: &'static str = "The stack: `<name>-network` or `<name>-kafka`";
    type Flags = NoFlags;
    type PlanFlags = NoFlags;
    type Verbs = NoVerbs;
    type Env = (PlatformConfig, Part);

    fn load(&self, stack: &str, _: &NoFlags) -> Result<Self::Env, Error> {
        let part = if stack.ends_with("-network") {
            Part::Network
        } else if let Some(name) = stack.strip_suffix("-kafka") {
            Part::Kafka {
                network: format!("{name}-network"),
            }
        } else {
            return Err(Error::user(format!(
                "`{stack}`: a stack of this example is `<name>-network` or `<name>-kafka`"
            )));
        };
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let config = PlatformConfig::load(&dir, "split").map_err(Error::user)?;
        Ok((config, part))
    }

    fn register(&self, env: &mut Self::Env, stack: &mut Stack) -> Result<(), Error> {
        let (config, part) = env;
        match part {
            Part::Network => KafkaNetwork::register(stack, config)
                .map_err(Error::user)?
                .export(stack),
            Part::Kafka { network } => {
                let net = KafkaNetwork::from_stack(stack, "network", network, config)
                    .map_err(Error::user)?;
                let rendered = format!(".iac/{}-rendered", stack.name());
                KafkaPlatform::register_in(stack, config, &rendered, net).map_err(Error::user)?;
            }
        }
        Ok(())
    }

    async fn providers(&self, (config, _): &Self::Env) -> Result<Providers, Error> {
        kafka_components::providers(config)
            .await
            .map_err(Error::failed)
    }
}

fn main() -> std::process::ExitCode {
    iac_cli::main(&Split)
}
