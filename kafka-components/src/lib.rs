//! # kafka-components
//!
//! The Kafka platform as a component of `iac-core` stacks: its typed configuration
//! ([`PlatformConfig`], loaded from an environment's TOML file), the policy checks that
//! refuse what the platform we replace learnt the hard way ([`policy`]), and
//! [`KafkaPlatform::register`], which puts every AWS resource of the platform on a stack.

pub mod config;
pub mod deploy;
mod local;
pub mod nodes;
mod platform;
pub mod policy;
pub mod render;
pub mod security;

pub use config::{ConfigError, PlatformConfig, Role, Site};
pub use local::{LocalPlatform, LocalService, local_nodes};
pub use nodes::NodeFacts;
pub use platform::{
    KafkaNetwork, KafkaPlatform, NetworkSubnet, Node, VPC_ID_OUTPUT, subnet_output,
};
pub use policy::{PolicyErrors, Violation};
pub use render::{RenderError, RenderedConfig, RenderedFile};
pub use security::Credentials;

/// The repository's README: its Rust snippets compile as doc-tests of this crate, the one
/// that depends on every crate they use.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
