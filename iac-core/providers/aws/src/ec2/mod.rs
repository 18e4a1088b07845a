//! EC2 resources, and what they share: tags (the `Name` tag and the ownership tags), lookup
//! of an interrupted create by its ownership tags, and checks of relations between resources.

pub(crate) mod elastic_ip;
pub(crate) mod instance;
pub(crate) mod internet_gateway;
pub(crate) mod key_pair;
pub(crate) mod route_table;
pub(crate) mod security_group;
pub(crate) mod subnet;
pub(crate) mod vpc;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};

use super::{
    Aws, Cidr, IamInstanceProfile, IamRole, Instance, KeyPair, SecurityGroupRule, Subnet, aws_error,
};
use iac_core::ResourceType as _;
use iac_core::provider::known::known_str;
use iac_core::provider::ownership::{self, RESOURCE_TAG, STACK_TAG, all_tags};
use iac_core::{CheckFailure, CheckRequest, ProviderError, UpdateRequest};

fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Tags to apply at creation.
pub(crate) fn tag_spec(
    resource_type: ResourceType,
    stack: &str,
    name: &str,
    user: &BTreeMap<String, String>,
) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource_type)
        .set_tags(Some(to_tags(&all_tags(stack, name, user))))
        .build()
}

/// The user's tags among what AWS reports (see [`ownership::user_tags`]).
pub(crate) fn user_tags(stack: &str, name: &str, tags: &[Tag]) -> BTreeMap<String, String> {
    ownership::user_tags(
        stack,
        name,
        tags.iter()
            .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))),
    )
}

/// Whether EC2's tags say this stack's resource `name` owns the object.
pub(crate) fn owned(stack: &str, name: &str, tags: &[Tag]) -> bool {
    ownership::is_owned(
        stack,
        name,
        tags.iter()
            .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))),
    )
}

/// Brings the tags of `id` from `old` to `new` (user tags; the rest follows).
pub(crate) async fn sync_tags(
    aws: &Aws,
    id: &str,
    stack: &str,
    name: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Result<(), ProviderError> {
    let (old, new) = (all_tags(stack, name, old), all_tags(stack, name, new));
    let set: BTreeMap<String, String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let removed: Vec<Tag> = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(|k| Tag::builder().key(k).build())
        .collect();
    if !set.is_empty() {
        aws.ec2
            .create_tags()
            .resources(id)
            .set_tags(Some(to_tags(&set)))
            .send()
            .await
            .map_err(|e| aws_error("CreateTags", e))?;
    }
    if !removed.is_empty() {
        aws.ec2
            .delete_tags()
            .resources(id)
            .set_tags(Some(removed))
            .send()
            .await
            .map_err(|e| aws_error("DeleteTags", e))?;
    }
    Ok(())
}

/// An import of the EC2 object `id` as the stack's `name`: refused when another stack or
/// resource owns it (its tags), else tagged as this stack's.
pub(crate) async fn adopt(
    aws: &Aws,
    id: &str,
    stack: &str,
    name: &str,
) -> Result<(), ProviderError> {
    let out = aws
        .ec2
        .describe_tags()
        .filters(Filter::builder().name("resource-id").values(id).build())
        .send()
        .await
        .map_err(|e| aws_error("DescribeTags", e))?;
    let reported = out
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())));
    if let Some(reason) = ownership::import_refusal(stack, name, reported) {
        return Err(ProviderError::new(reason).refused());
    }
    let owner = BTreeMap::from([
        (STACK_TAG.to_owned(), stack.to_owned()),
        (RESOURCE_TAG.to_owned(), name.to_owned()),
    ]);
    aws.ec2
        .create_tags()
        .resources(id)
        .set_tags(Some(to_tags(&owner)))
        .send()
        .await
        .map_err(|e| aws_error("CreateTags", e))?;
    Ok(())
}

/// Brings the tags of an updated resource from its old arguments' to its new ones'.
pub(crate) async fn update_tags(
    aws: &Aws,
    r: &UpdateRequest<'_>,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Result<(), ProviderError> {
    sync_tags(aws, r.id, r.stack, r.name, old, new).await
}

/// Filters that find a resource by its ownership tags.
pub(crate) fn owner_filters(stack: &str, name: &str) -> Vec<Filter> {
    [(STACK_TAG, stack), (RESOURCE_TAG, name)]
        .into_iter()
        .map(|(k, v)| Filter::builder().name(format!("tag:{k}")).values(v).build())
        .collect()
}

fn cidr_of(r: &CheckRequest<'_>, key: &str) -> Option<Cidr> {
    known_str(r.inputs, key)?.parse().ok()
}

/// The resource a reference input points at, among `resources`.
fn referenced<'r, 'a>(
    resources: &'r [CheckRequest<'a>],
    r: &CheckRequest<'_>,
    key: &str,
) -> Option<&'r CheckRequest<'a>> {
    let reference = r.references.get(key)?;
    resources.iter().find(|o| o.name == reference.resource)
}

/// Relations `check` cannot see on one resource: a subnet inside its VPC and not overlapping
/// its siblings, a fixed IP inside its subnet and not reserved, unique names.
pub(crate) fn check_related(resources: &[CheckRequest<'_>]) -> Vec<(String, CheckFailure)> {
    let mut failures = Vec::new();
    let of_type = |token: &'static str| resources.iter().filter(move |r| r.type_token == token);
    subnets(resources, &mut failures);
    fixed_ips(resources, &mut failures);
    duplicate_rules(of_type(SecurityGroupRule::TYPE), &mut failures);
    for (token, key, what) in [
        (KeyPair::TYPE, "key_name", "key pair"),
        (IamRole::TYPE, "name", "IAM role"),
        (IamInstanceProfile::TYPE, "name", "instance profile"),
    ] {
        unique(of_type(token), key, what, &mut failures);
    }
    failures
}

/// Subnets: inside their VPC, no overlap with another subnet of the same VPC.
fn subnets(resources: &[CheckRequest<'_>], failures: &mut Vec<(String, CheckFailure)>) {
    let mut by_vpc: BTreeMap<String, Vec<(&str, Cidr)>> = BTreeMap::new();
    for subnet in resources.iter().filter(|r| r.type_token == Subnet::TYPE) {
        let Some(cidr) = cidr_of(subnet, "cidr_block") else {
            continue;
        };
        let vpc_key = match (
            subnet.references.get("vpc_id"),
            known_str(subnet.inputs, "vpc_id"),
        ) {
            (Some(reference), _) => format!("resource {}", reference.resource),
            (None, Some(id)) => format!("id {id}"),
            (None, None) => continue,
        };
        if let Some(vpc) = referenced(resources, subnet, "vpc_id")
            && let Some(vpc_cidr) = cidr_of(vpc, "cidr_block")
            && !vpc_cidr.contains(cidr)
        {
            failures.push((
                subnet.name.to_owned(),
                CheckFailure::new(
                    "cidr_block",
                    format!(
                        "{cidr} is outside VPC `{}` ({vpc_cidr}): choose a block inside it",
                        vpc.name
                    ),
                ),
            ));
        }
        let siblings = by_vpc.entry(vpc_key).or_default();
        if let Some((other, other_cidr)) = siblings.iter().find(|(_, c)| c.overlaps(cidr)) {
            failures.push((
                subnet.name.to_owned(),
                CheckFailure::new(
                    "cidr_block",
                    format!("{cidr} overlaps subnet `{other}` ({other_cidr}) in the same VPC: give each subnet its own block"),
                ),
            ));
        }
        siblings.push((subnet.name, cidr));
    }
}

/// Instances: a fixed private IP inside its subnet, not reserved, not taken twice.
fn fixed_ips(resources: &[CheckRequest<'_>], failures: &mut Vec<(String, CheckFailure)>) {
    let mut taken: BTreeMap<Ipv4Addr, &str> = BTreeMap::new();
    for instance in resources.iter().filter(|r| r.type_token == Instance::TYPE) {
        let Some(text) = known_str(instance.inputs, "private_ip") else {
            continue;
        };
        let Ok(ip) = text.parse::<Ipv4Addr>() else {
            continue;
        };
        if let Some(subnet) = referenced(resources, instance, "subnet_id")
            && let Some(cidr) = cidr_of(subnet, "cidr_block")
        {
            let problem = if !cidr.contains_ip(ip) {
                Some(format!("{ip} is outside subnet `{}` ({cidr})", subnet.name))
            } else if cidr.is_aws_reserved(ip) {
                Some(format!(
                    "{ip} is one of the five addresses AWS reserves in subnet `{}` ({cidr}): the first four and the last",
                    subnet.name
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                failures.push((
                    instance.name.to_owned(),
                    CheckFailure::new("private_ip", problem),
                ));
            }
        }
        if let Some(other) = taken.insert(ip, instance.name) {
            failures.push((
                instance.name.to_owned(),
                CheckFailure::new(
                    "private_ip",
                    format!("{ip} is already the fixed IP of `{other}`"),
                ),
            ));
        }
    }
}

/// What an input is: the resource output it references, its known value, or nothing (unset);
/// `None` while it is unknown and no reference says what it will be.
fn identity(r: &CheckRequest<'_>, key: &str) -> Option<String> {
    match (r.references.get(key), r.inputs.known(key)) {
        (Some(reference), _) => Some(format!("{}.{}", reference.resource, reference.property)),
        (None, Some(value)) if !value.is_null() => Some(value.to_string()),
        (None, _) if r.inputs.is_unknown(key) => None,
        (None, _) => Some(String::new()),
    }
}

/// Two rules with the same permission on one group: AWS holds one rule per permission, so
/// the second create would fail (or adopt the first's rule, and a delete of either would
/// take both away).
fn duplicate_rules<'r, 'a: 'r>(
    rules: impl Iterator<Item = &'r CheckRequest<'a>>,
    failures: &mut Vec<(String, CheckFailure)>,
) {
    let mut seen: BTreeMap<Vec<String>, &str> = BTreeMap::new();
    for rule in rules {
        let self_referencing = rule
            .inputs
            .known("self_referencing")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let group = identity(rule, "security_group_id");
        let peer = if self_referencing {
            group.clone()
        } else {
            identity(rule, "cidr_ipv4")
                .zip(identity(rule, "source_security_group_id"))
                .map(|(cidr, source)| format!("{cidr}{source}"))
        };
        let key: Option<Vec<String>> = [
            group,
            identity(rule, "direction"),
            identity(rule, "protocol"),
            identity(rule, "from_port"),
            identity(rule, "to_port"),
            peer,
        ]
        .into_iter()
        .collect();
        let Some(key) = key else { continue };
        if let Some(first) = seen.insert(key, rule.name) {
            failures.push((
                rule.name.to_owned(),
                CheckFailure::new(
                    "from_port",
                    format!(
                        "the same permission (group, direction, protocol, ports and peer) as rule `{first}`: AWS keeps one rule per permission; change the ports or drop one"
                    ),
                ),
            ));
        }
    }
}

/// Names that must be unique among resources of one type.
fn unique<'r, 'a: 'r>(
    resources: impl Iterator<Item = &'r CheckRequest<'a>>,
    key: &str,
    what: &str,
    failures: &mut Vec<(String, CheckFailure)>,
) {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for r in resources {
        let Some(value) = known_str(r.inputs, key) else {
            continue;
        };
        if let Some(first) = seen.insert(value, r.name) {
            failures.push((
                r.name.to_owned(),
                CheckFailure::new(
                    key,
                    format!(
                        "{what} name `{value}` is also used by `{first}`: names must be unique"
                    ),
                ),
            ));
        }
    }
}
