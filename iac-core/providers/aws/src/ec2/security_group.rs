//! `aws:ec2:SecurityGroup` and `aws:ec2:SecurityGroupRule`.
//!
//! The diff table is declared below and rendered in the provider's `RESOURCES.md`.
//!
//! Rules are separate resources, so adding or removing one changes the group in place. A
//! rule's id is derived from what it allows: `<group>:<direction>:<protocol>:<from>-<to>:<peer>`.

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, ResourceType, SecurityGroupRule as AwsRule,
    SecurityGroupRuleRequest, SecurityGroupRuleUpdate, UserIdGroupPair,
};
use serde_json::Value;

use super::{owner_filters, tag_spec, update_tags, user_tags};
use crate::cidr::check_cidr;
use crate::{
    Aws, AwsKind, SecurityGroup, SecurityGroupArgs, SecurityGroupRule, SecurityGroupRuleArgs,
    SecurityGroupRuleValues, SecurityGroupValues, aws_error, deleted, found, with_retries,
};
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::provider::known::{known_str, require};
use iac_core::{
    CheckFailure, CreateRequest, DeleteRequest, ProviderError, ReadRequest, ReadResponse,
    UpdateRequest,
};
use iac_core::{Properties, PropertyMap};

/// The diff table of `SecurityGroup` (rendered in the provider's RESOURCES.md).
pub(crate) const SECURITY_GROUP_TABLE: DiffTable = DiffTable {
    type_token: SecurityGroup::TYPE,
    rows: &[
        DiffRow {
            inputs: &["name", "description", "vpc_id"],
            change: Change::ReplaceDeletingFirst,
            note: "names are unique per VPC",
        },
        DiffRow {
            inputs: &["tags"],
            change: Change::InPlace,
            note: "",
        },
    ],
};

pub(crate) struct SecurityGroupKind;
/// The diff table of `SecurityGroupRule` (rendered in the provider's RESOURCES.md).
pub(crate) const RULE_TABLE: DiffTable = DiffTable {
    type_token: SecurityGroupRule::TYPE,
    rows: &[
        DiffRow {
            inputs: &[
                "security_group_id",
                "direction",
                "protocol",
                "from_port",
                "to_port",
                "cidr_ipv4",
                "source_security_group_id",
                "self_referencing",
            ],
            change: Change::Replace,
            note: "a rule is revoked and authorised again; the group is untouched",
        },
        DiffRow {
            inputs: &["description"],
            change: Change::InPlace,
            note: "set on the rule by its id",
        },
    ],
};

pub(crate) struct RuleKind;

async fn describe(
    aws: &Aws,
    id: &str,
) -> Result<Option<aws_sdk_ec2::types::SecurityGroup>, ProviderError> {
    Ok(found(
        aws.ec2
            .describe_security_groups()
            .group_ids(id)
            .send()
            .await
            .map_err(|e| aws_error("DescribeSecurityGroups", e)),
    )?
    .and_then(|out| out.security_groups().first().cloned()))
}

#[async_trait]
impl AwsKind for SecurityGroupKind {
    fn token(&self) -> &'static str {
        SecurityGroup::TYPE
    }

    fn diff_table(&self) -> &'static DiffTable {
        &SECURITY_GROUP_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &SecurityGroupArgs::required(), &mut failures);
        if known_str(inputs, "name").is_some_and(|n| n.len() > 255 || n.starts_with("sg-")) {
            failures.push(CheckFailure::new(
                "name",
                "must be at most 255 characters and not start with `sg-`",
            ));
        }
        failures
    }

    async fn make(&self, aws: &Aws, r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        let group = SecurityGroupValues::from_known(r.inputs)?;
        let out = aws
            .ec2_once
            .create_security_group()
            .group_name(group.name)
            .description(group.description)
            .vpc_id(group.vpc_id)
            .tag_specifications(tag_spec(
                ResourceType::SecurityGroup,
                r.stack,
                r.name,
                &group.tags,
            ))
            .send()
            .await
            .map_err(|e| aws_error("CreateSecurityGroup", e))?;
        Ok(out
            .group_id()
            .ok_or_else(|| ProviderError::new("CreateSecurityGroup returned no group id"))?
            .to_owned())
    }

    fn removal(&self, r: &CreateRequest<'_>) -> Option<String> {
        let group = SecurityGroupValues::from_known(r.inputs).ok()?;
        Some(format!(
            "aws ec2 delete-security-group --group-id <the id of group {} in {}>",
            group.name, group.vpc_id
        ))
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let group = match r.id {
            Some(id) => describe(aws, id).await?,
            None => aws
                .ec2
                .describe_security_groups()
                .set_filters(Some(owner_filters(r.stack, r.name)))
                .send()
                .await
                .map_err(|e| aws_error("DescribeSecurityGroups", e))?
                .security_groups()
                .first()
                .cloned(),
        };
        let Some(group) = group else { return Ok(None) };
        let inputs = SecurityGroupValues {
            name: group.group_name().unwrap_or_default().to_owned(),
            description: group.description().unwrap_or_default().to_owned(),
            vpc_id: group.vpc_id().unwrap_or_default().to_owned(),
            tags: user_tags(r.stack, r.name, group.tags()),
        }
        .to_properties();
        Ok(Some(ReadResponse {
            id: group.group_id().unwrap_or_default().to_owned(),
            outputs: inputs.clone(),
            inputs: Some(inputs),
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let (old, new) = (
            SecurityGroupValues::from_known(r.old_inputs)?,
            SecurityGroupValues::from_known(r.new_inputs)?,
        );
        update_tags(aws, r, &old.tags, &new.tags).await?;
        Ok(r.new_inputs.clone())
    }

    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        // Instances still terminating keep the group in use for a while.
        with_retries(&aws.settings, || async {
            deleted(
                aws.ec2
                    .delete_security_group()
                    .group_id(r.id)
                    .send()
                    .await
                    .map_err(|e| aws_error("DeleteSecurityGroup", e)),
            )
        })
        .await
    }
}

/// A rule's inputs, validated.
struct Rule<'a> {
    group: &'a str,
    ingress: bool,
    protocol: &'static str,
    from: i32,
    to: i32,
    peer: Peer<'a>,
    description: Option<&'a str>,
}

enum Peer<'a> {
    Cidr(&'a str),
    Group(&'a str),
}

fn protocol(name: &str) -> Option<&'static str> {
    match name {
        "tcp" | "6" => Some("tcp"),
        "udp" | "17" => Some("udp"),
        "icmp" | "1" => Some("icmp"),
        "all" | "-1" => Some("-1"),
        _ => None,
    }
}

impl<'a> Rule<'a> {
    fn parse(inputs: &'a SecurityGroupRuleValues) -> Result<Self, ProviderError> {
        let group = inputs.security_group_id.as_str();
        let bad = |m: String| ProviderError::with_code("InvalidInput", m);
        let ingress = match inputs.direction.as_str() {
            "ingress" => true,
            "egress" => false,
            other => {
                return Err(bad(format!(
                    "direction `{other}` must be `ingress` or `egress`"
                )));
            }
        };
        let protocol = protocol(&inputs.protocol)
            .ok_or_else(|| bad("protocol must be tcp, udp, icmp or all".to_owned()))?;
        let port = |port: Option<i64>| port.and_then(|p| i32::try_from(p).ok()).unwrap_or(-1);
        let peer = match (
            inputs.cidr_ipv4.as_deref(),
            inputs.source_security_group_id.as_deref(),
            inputs.self_referencing == Some(true),
        ) {
            (Some(cidr), None, false) => Peer::Cidr(cidr),
            (None, Some(source), false) => Peer::Group(source),
            (None, None, true) => Peer::Group(group),
            _ => {
                return Err(bad(
                    "set exactly one of cidr_ipv4, source_security_group_id, self_referencing"
                        .to_owned(),
                ));
            }
        };
        Ok(Self {
            group,
            ingress,
            protocol,
            from: port(inputs.from_port),
            to: port(inputs.to_port),
            peer,
            description: inputs.description.as_deref(),
        })
    }

    fn id(&self) -> String {
        let peer = match self.peer {
            Peer::Cidr(c) => c,
            Peer::Group(g) => g,
        };
        let direction = if self.ingress { "ingress" } else { "egress" };
        format!(
            "{}:{direction}:{}:{}-{}:{peer}",
            self.group, self.protocol, self.from, self.to
        )
    }

    fn permission(&self) -> IpPermission {
        let mut p = IpPermission::builder().ip_protocol(self.protocol);
        if self.protocol != "-1" {
            p = p.from_port(self.from).to_port(self.to);
        }
        match self.peer {
            Peer::Cidr(cidr) => p.ip_ranges(
                IpRange::builder()
                    .cidr_ip(cidr)
                    .set_description(self.description.map(str::to_owned))
                    .build(),
            ),
            Peer::Group(group) => p.user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id(group)
                    .set_description(self.description.map(str::to_owned))
                    .build(),
            ),
        }
        .build()
    }

    /// Whether AWS's rule `found` is exactly this one.
    fn is(&self, found: &AwsRule) -> bool {
        let ports = self.protocol == "-1"
            || (found.from_port() == Some(self.from) && found.to_port() == Some(self.to));
        let peer = match self.peer {
            Peer::Cidr(cidr) => found.cidr_ipv4() == Some(cidr),
            Peer::Group(group) => {
                found.referenced_group_info().and_then(|g| g.group_id()) == Some(group)
            }
        };
        found.is_egress() == Some(!self.ingress)
            && protocol(found.ip_protocol().unwrap_or_default()) == Some(self.protocol)
            && ports
            && peer
    }
}

#[async_trait]
impl AwsKind for RuleKind {
    fn token(&self) -> &'static str {
        SecurityGroupRule::TYPE
    }

    fn diff_table(&self) -> &'static DiffTable {
        &RULE_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &SecurityGroupRuleArgs::required(), &mut failures);
        check_cidr(inputs, "cidr_ipv4", &mut failures);
        if let Some(d) =
            known_str(inputs, "direction").filter(|d| !matches!(*d, "ingress" | "egress"))
        {
            failures.push(CheckFailure::new(
                "direction",
                format!("`{d}` must be `ingress` or `egress`"),
            ));
        }
        let proto = known_str(inputs, "protocol");
        if let Some(p) = proto.filter(|p| protocol(p).is_none()) {
            failures.push(CheckFailure::new(
                "protocol",
                format!("`{p}` is unknown: use tcp, udp, icmp or all"),
            ));
        }
        let port = |key| inputs.known(key).and_then(Value::as_i64);
        if proto
            .and_then(protocol)
            .is_some_and(|p| p == "tcp" || p == "udp")
        {
            for key in ["from_port", "to_port"] {
                match port(key) {
                    Some(p) if (0..=65535).contains(&p) => {}
                    Some(p) => failures.push(CheckFailure::new(
                        key,
                        format!("{p} is not a port (0-65535)"),
                    )),
                    None if !inputs.is_unknown(key) => {
                        failures.push(CheckFailure::new(key, "is required for tcp and udp"))
                    }
                    None => {}
                }
            }
        }
        if let (Some(from), Some(to)) = (port("from_port"), port("to_port"))
            && from > to
        {
            failures.push(CheckFailure::new(
                "from_port",
                format!("the range {from}-{to} is reversed: from_port must not exceed to_port"),
            ));
        }
        let peers = ["cidr_ipv4", "source_security_group_id"]
            .iter()
            .filter(|k| {
                inputs
                    .get(k)
                    .is_some_and(|v| v.known().is_none_or(|v| !v.is_null()))
            })
            .count()
            + usize::from(
                inputs
                    .known("self_referencing")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            );
        if peers != 1 {
            failures.push(CheckFailure::new(
                "cidr_ipv4",
                "set exactly one of cidr_ipv4, source_security_group_id, self_referencing",
            ));
        }
        failures
    }

    async fn make(&self, aws: &Aws, r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        let asked = SecurityGroupRuleValues::from_known(r.inputs)?;
        let rule = Rule::parse(&asked)?;
        let made = if rule.ingress {
            aws.ec2_once
                .authorize_security_group_ingress()
                .group_id(rule.group)
                .ip_permissions(rule.permission())
                .send()
                .await
                .map_err(|e| aws_error("AuthorizeSecurityGroupIngress", e))?
                .security_group_rules()
                .to_vec()
        } else {
            aws.ec2_once
                .authorize_security_group_egress()
                .group_id(rule.group)
                .ip_permissions(rule.permission())
                .send()
                .await
                .map_err(|e| aws_error("AuthorizeSecurityGroupEgress", e))?
                .security_group_rules()
                .to_vec()
        };
        let made = made
            .first()
            .and_then(AwsRule::security_group_rule_id)
            .map(str::to_owned);
        match made {
            Some(id) => Ok(id),
            // The rule exists but its id was not returned: look it up by its permission.
            None => Ok(find_rule(aws, &rule)
                .await?
                .and_then(|found| found.security_group_rule_id().map(str::to_owned))
                .unwrap_or_else(|| rule.id())),
        }
    }

    /// By its rule id (`sgr-…`): what AWS holds under it now, so a rule changed in place
    /// shows as drift. A record from before rule ids (or a lookup) finds the rule by its
    /// exact permission.
    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let found = match r.id.filter(|id| id.starts_with("sgr-")) {
            Some(id) => found(
                aws.ec2
                    .describe_security_group_rules()
                    .security_group_rule_ids(id)
                    .send()
                    .await
                    .map_err(|e| aws_error("DescribeSecurityGroupRules", e)),
            )?
            .and_then(|out| out.security_group_rules().first().cloned()),
            None => {
                let recorded = SecurityGroupRuleValues::from_known(r.inputs)?;
                find_rule(aws, &Rule::parse(&recorded)?).await?
            }
        };
        let Some(found) = found else { return Ok(None) };
        let description = match found.description().filter(|d| !d.is_empty()) {
            Some(d) => Some(d.to_owned()),
            None => pair_description(aws, &found).await?,
        };
        let recorded = SecurityGroupRuleValues::from_recorded(r.inputs)?;
        let now = reported(&found, description, &recorded).to_properties();
        Ok(Some(ReadResponse {
            id: found
                .security_group_rule_id()
                .map_or_else(|| r.id.unwrap_or_default().to_owned(), str::to_owned),
            outputs: now.clone(),
            inputs: Some(now),
        }))
    }

    /// Only the description changes in place (every other input replaces the rule).
    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let new = SecurityGroupRuleValues::from_known(r.new_inputs)?;
        let rule = Rule::parse(&new)?;
        let id = match r.id.starts_with("sgr-") {
            true => Some(r.id.to_owned()),
            false => find_rule(aws, &rule)
                .await?
                .and_then(|f| f.security_group_rule_id().map(str::to_owned)),
        };
        let id = id.ok_or_else(|| {
            ProviderError::with_code(
                "InvalidSecurityGroupRuleId.NotFound",
                format!(
                    "no rule of {} has the permission {}: it was removed outside the program; run refresh, and the next apply makes it again",
                    rule.group,
                    rule.id()
                ),
            )
        })?;
        let mut request = SecurityGroupRuleRequest::builder()
            .ip_protocol(rule.protocol)
            .from_port(rule.from)
            .to_port(rule.to)
            .set_description(rule.description.map(str::to_owned));
        request = match rule.peer {
            Peer::Cidr(cidr) => request.cidr_ipv4(cidr),
            Peer::Group(group) => request.referenced_group_id(group),
        };
        with_retries(&aws.settings, || async {
            aws.ec2
                .modify_security_group_rules()
                .group_id(rule.group)
                .security_group_rules(
                    SecurityGroupRuleUpdate::builder()
                        .security_group_rule_id(&id)
                        .security_group_rule(request.clone().build())
                        .build(),
                )
                .send()
                .await
                .map_err(|e| aws_error("ModifySecurityGroupRules", e))
        })
        .await?;
        Ok(r.new_inputs.clone())
    }

    /// By its rule id when it has one, whatever the rule says now (a rule widened in place
    /// goes, not just the permission on record).
    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        let recorded = SecurityGroupRuleValues::from_known(r.inputs)?;
        let rule = Rule::parse(&recorded)?;
        let by_id = r.id.starts_with("sgr-").then_some(r.id);
        let result = if rule.ingress {
            let call = aws.ec2.revoke_security_group_ingress().group_id(rule.group);
            match by_id {
                Some(id) => call.security_group_rule_ids(id),
                None => call.ip_permissions(rule.permission()),
            }
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("RevokeSecurityGroupIngress", e))
        } else {
            let call = aws.ec2.revoke_security_group_egress().group_id(rule.group);
            match by_id {
                Some(id) => call.security_group_rule_ids(id),
                None => call.ip_permissions(rule.permission()),
            }
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_error("RevokeSecurityGroupEgress", e))
        };
        deleted(result)
    }
}

/// The rule of `rule`'s group with exactly its permission.
async fn find_rule(aws: &Aws, rule: &Rule<'_>) -> Result<Option<AwsRule>, ProviderError> {
    let Some(out) = found(
        aws.ec2
            .describe_security_group_rules()
            .filters(
                Filter::builder()
                    .name("group-id")
                    .values(rule.group)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws_error("DescribeSecurityGroupRules", e)),
    )?
    else {
        return Ok(None);
    };
    Ok(out
        .security_group_rules()
        .iter()
        .find(|found| rule.is(found))
        .cloned())
}

/// The description of a rule that references a group, from its group's permissions (where
/// some APIs keep it when the rule itself does not say).
async fn pair_description(aws: &Aws, found: &AwsRule) -> Result<Option<String>, ProviderError> {
    let Some(peer) = found.referenced_group_info().and_then(|g| g.group_id()) else {
        return Ok(None);
    };
    let Some(group) = describe(aws, found.group_id().unwrap_or_default()).await? else {
        return Ok(None);
    };
    let permissions = if found.is_egress() == Some(true) {
        group.ip_permissions_egress()
    } else {
        group.ip_permissions()
    };
    Ok(permissions
        .iter()
        .filter(|p| {
            p.ip_protocol() == found.ip_protocol()
                && (found.ip_protocol() == Some("-1")
                    || (p.from_port() == found.from_port() && p.to_port() == found.to_port()))
        })
        .flat_map(|p| p.user_id_group_pairs())
        .find(|pair| pair.group_id() == Some(peer))
        .and_then(|pair| pair.description())
        .filter(|d| !d.is_empty())
        .map(str::to_owned))
}

/// A rule's arguments as AWS holds them, written the way `recorded` writes them (a protocol
/// number or name, ports of an all-protocol rule, a self reference) so that only a real
/// change differs.
fn reported(
    found: &AwsRule,
    description: Option<String>,
    recorded: &SecurityGroupRuleValues,
) -> SecurityGroupRuleValues {
    let group = found.group_id().unwrap_or_default();
    let aws_protocol = found.ip_protocol().unwrap_or_default();
    let all = aws_protocol == "-1";
    let protocol = match protocol(&recorded.protocol) {
        Some(p) if protocol(aws_protocol) == Some(p) => recorded.protocol.clone(),
        _ if all => "all".to_owned(),
        _ => aws_protocol.to_owned(),
    };
    let port = |recorded: Option<i64>, found: Option<i32>| {
        if all { recorded } else { found.map(i64::from) }
    };
    let referenced = found
        .referenced_group_info()
        .and_then(|g| g.group_id())
        .map(str::to_owned);
    let self_referencing =
        referenced.as_deref() == Some(group) && recorded.self_referencing == Some(true);
    SecurityGroupRuleValues {
        security_group_id: group.to_owned(),
        direction: if found.is_egress() == Some(true) {
            "egress"
        } else {
            "ingress"
        }
        .to_owned(),
        protocol,
        from_port: port(recorded.from_port, found.from_port()),
        to_port: port(recorded.to_port, found.to_port()),
        cidr_ipv4: found.cidr_ipv4().map(str::to_owned),
        source_security_group_id: if self_referencing {
            recorded.source_security_group_id.clone()
        } else {
            referenced
        },
        self_referencing: if self_referencing {
            Some(true)
        } else {
            recorded.self_referencing.map(|_| false)
        },
        description,
    }
}
