//! # services
//!
//! What runs on the platform. [`admin_api`]: the Kafka admin REST API (`kafka-admin-api`).
//! [`http_source`]: the HTTP source connector (`http-source-connector`), which polls a REST
//! API into a Kafka topic. Services depend on no IaC crate; the platform deploys them.

// Functions read in one screen (`clippy.toml` sets the length); a table of cases may not.
#![warn(clippy::too_many_lines)]

pub mod admin_api;
pub mod http_source;
pub mod kafka_security;
pub mod process;
pub mod topic_name;
