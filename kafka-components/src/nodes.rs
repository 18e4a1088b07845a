//! The platform's `nodes` stack output: one typed record per node, serialised once by
//! [`crate::KafkaPlatform::register`] and parsed once by [`NodeFacts::from_outputs`] for the
//! renderers, so the two cannot disagree on a key.

use iac_core::PropertyMap;
use serde::{Deserialize, Serialize};

use crate::role::Role;

/// The name of the stack output that lists the nodes.
pub const NODES_OUTPUT: &str = "nodes";

/// One node as the applied stack reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFacts {
    /// `<stack>-<role>-<n>`.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// 1-based index within the role.
    pub index: u32,
    /// Availability zone.
    pub zone: String,
    /// The instance id.
    pub id: String,
    /// Private IP.
    pub private_ip: String,
    /// Public IP (empty when it has none).
    pub public_ip: String,
    /// Private DNS name (the name Kafka advertises).
    pub private_dns: String,
    /// What the node adds to each port of `[ports]`: 0 on AWS (a host per node); on this
    /// machine, where every node shares 127.0.0.1, [`crate::ports::LOCAL_PORT_STEP`] for
    /// each node of its role before it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub port_shift: u16,
}

fn is_zero(shift: &u16) -> bool {
    *shift == 0
}

impl NodeFacts {
    /// The nodes of an applied stack, in a stable order (role, then index).
    pub fn from_outputs(stack: &str, outputs: &PropertyMap) -> Result<Vec<Self>, NodesError> {
        let nodes = outputs
            .get(NODES_OUTPUT)
            .ok_or_else(|| NodesError::NotApplied {
                stack: stack.to_owned(),
            })?;
        let mut nodes: Vec<Self> =
            serde_json::from_value(nodes.clone()).map_err(|e| NodesError::BadOutputs {
                stack: stack.to_owned(),
                reason: e.to_string(),
            })?;
        nodes.sort_by_key(|n| (n.role, n.index));
        Ok(nodes)
    }

    /// The node's port for the `[ports]` port `port` (the policy keeps the sum a port).
    pub fn port(&self, port: u16) -> u16 {
        port.saturating_add(self.port_shift)
    }

    /// `<private DNS name>:<its port for port>`: where the node's service on `port` is
    /// reached.
    pub fn endpoint(&self, port: u16) -> String {
        format!("{}:{}", self.private_dns, self.port(port))
    }

    /// The address Ansible connects to: the public IP, or the private one without it.
    pub fn address(&self) -> &str {
        if self.public_ip.is_empty() {
            &self.private_ip
        } else {
            &self.public_ip
        }
    }
}

/// Why an applied stack's nodes cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodesError {
    /// The stack has no node outputs yet.
    #[error("stack `{stack}` has no `nodes` output: apply it first")]
    NotApplied {
        /// The stack.
        stack: String,
    },
    /// The outputs are not what the platform exports.
    #[error("the `nodes` output of stack `{stack}` is not the platform's: {reason}")]
    BadOutputs {
        /// The stack.
        stack: String,
        /// What is wrong.
        reason: String,
    },
}
