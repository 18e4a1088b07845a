//! # services
//!
//! What runs on the platform. [`admin_api`]: the Kafka admin REST API (`kafka-admin-api`).
//! Services depend on no IaC crate; the platform deploys them.

pub mod admin_api;
