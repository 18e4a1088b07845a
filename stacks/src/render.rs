//! `render`: the configuration files written again from the applied environment.

use iac_cli::{Error, exit};
use iac_core::Engine;
use kafka_components::{NodeFacts, RenderError};

use crate::environment::Env;
use crate::error::StacksError;

/// Renders every configuration file from the applied stack of `env` into
/// `<render dir>/<env>`.
pub(crate) async fn run(env: &Env, engine: &Engine, json: bool) -> Result<u8, Error> {
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
    if !json {
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
