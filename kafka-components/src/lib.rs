//! # kafka-components
//!
//! The Kafka platform as a component of `iac-core` stacks: its typed configuration
//! ([`PlatformConfig`], loaded from an environment's TOML file), the policy checks that
//! refuse what the platform we replace learnt the hard way ([`policy`]), and
//! [`KafkaPlatform::register`], which puts every AWS resource of the platform on a stack.

// Functions read in one screen (`clippy.toml` sets the length); a table of cases may not.
#![warn(clippy::too_many_lines)]

mod aws;
pub mod config;
pub mod gate;
mod local;
pub mod nodes;
pub mod policy;
pub mod ports;
mod programs;
mod providers;
pub mod render;
pub mod role;
pub mod security;
mod triggers;

pub use aws::{
    KafkaNetwork, KafkaPlatform, NetworkSubnet, Node, VPC_ID_OUTPUT, deploy, subnet_output,
};
pub use config::{ConfigError, PlatformConfig, Site};
pub use ipnet::Ipv4Net;
pub use local::{LocalPlatform, LocalService, local_nodes};
pub use nodes::{NodeFacts, NodesError};
pub use policy::{PolicyErrors, Violation};
pub use providers::providers;
pub use render::{RenderError, RenderedConfig, RenderedFile};
pub use role::Role;
pub use security::Credentials;

/// The repository's pages with Rust snippets: they compile as doc-tests of this crate, the
/// one that depends on every crate they use.
#[doc = include_str!("../../docs/writing-a-stack.md")]
#[cfg(doctest)]
pub struct WritingAStackDoctests;

/// The README's snippet, compiled the same way.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
