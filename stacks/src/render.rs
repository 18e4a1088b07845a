//! `render`: the configuration files written again from the applied environment.

use iac_cli::{Error, Target, exit};
use iac_core::Providers;
use kafka_components::{NodeFacts, RenderError};

use crate::environment;
use crate::error::StacksError;
use crate::platform::Platform;

/// Renders every configuration file from the applied stack into `<render dir>/<env>`.
pub(crate) async fn run(target: &Target<Platform>) -> Result<u8, Error> {
    let env = environment::load(&target.stack, &target.program)?;
    // Only the state is read: no provider is called.
    let engine = target.engine(Providers::new())?;
    let outputs = engine
        .state(&env.name)
        .await?
        .map(|s| s.outputs)
        .unwrap_or_default();
    let rendered = || -> Result<_, RenderError> {
        let nodes = NodeFacts::from_outputs(&env.name, &outputs)?;
        let files = kafka_components::render::render(&env.name, &env.config, &nodes)?;
        kafka_components::render::write(&env.rendered, &files)?;
        Ok(files)
    };
    let files = rendered().map_err(StacksError::from)?;
    if !target.json {
        println!(
            "\nRendered {} files to {}:",
            files.len(),
            env.rendered.display()
        );
        for file in &files {
            println!("  {}", file.path);
        }
    }
    Ok(exit::OK)
}
