//! IAM: `aws:iam:Role`, `aws:iam:RolePolicy`, `aws:iam:InstanceProfile`.
//!
//! The diff table is declared below and rendered in the provider's `RESOURCES.md`.
//!
//! IAM returns policy documents URL-encoded; they are compared as JSON, so formatting alone
//! is never drift.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_iam::types::{InstanceProfile, Role, Tag};
use serde_json::Value;

use super::{
    Aws, AwsKind, IamInstanceProfile, IamInstanceProfileArgs, IamInstanceProfileValues, IamRole,
    IamRoleArgs, IamRolePolicy, IamRolePolicyArgs, IamRolePolicyValues, IamRoleValues, Tagging,
    aws_error, deleted, found, wait_for, with_retries,
};
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::provider::known::{known_str, needed, require};
use iac_core::provider::ownership::{self, RESOURCE_TAG, STACK_TAG};
use iac_core::{
    CheckFailure, CreateRequest, DeleteRequest, ProviderError, ReadRequest, ReadResponse,
    UpdateRequest,
};
use iac_core::{Properties, PropertyMap};

/// The diff table of `IamRole` (rendered in the provider's RESOURCES.md).
pub(crate) const ROLE_TABLE: DiffTable = DiffTable {
    type_token: IamRole::TYPE,
    rows: &[
        DiffRow {
            inputs: &["name"],
            change: Change::ReplaceDeletingFirst,
            note: "names are unique",
        },
        DiffRow {
            inputs: &["assume_role_policy", "description", "tags"],
            change: Change::InPlace,
            note: "",
        },
    ],
};

pub(crate) struct RoleKind;
/// The diff table of `IamRolePolicy` (rendered in the provider's RESOURCES.md).
pub(crate) const ROLE_POLICY_TABLE: DiffTable = DiffTable {
    type_token: IamRolePolicy::TYPE,
    rows: &[
        DiffRow {
            inputs: &["role", "name"],
            change: Change::ReplaceDeletingFirst,
            note: "names are unique",
        },
        DiffRow {
            inputs: &["policy"],
            change: Change::InPlace,
            note: "PutRolePolicy",
        },
    ],
};

pub(crate) struct RolePolicyKind;
/// The diff table of `IamInstanceProfile` (rendered in the provider's RESOURCES.md).
pub(crate) const INSTANCE_PROFILE_TABLE: DiffTable = DiffTable {
    type_token: IamInstanceProfile::TYPE,
    rows: &[
        DiffRow {
            inputs: &["name"],
            change: Change::ReplaceDeletingFirst,
            note: "names are unique",
        },
        DiffRow {
            inputs: &["role"],
            change: Change::InPlace,
            note: "remove, add",
        },
    ],
};

pub(crate) struct InstanceProfileKind;

fn check_name(inputs: &Properties, key: &str, failures: &mut Vec<CheckFailure>) {
    if let Some(name) = known_str(inputs, key) {
        let ok = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
        if !ok {
            failures.push(CheckFailure::new(
                key,
                format!("`{name}` must be 1-64 characters of [A-Za-z0-9+=,.@_-]"),
            ));
        }
    }
}

fn check_policy(inputs: &Properties, key: &str, failures: &mut Vec<CheckFailure>) {
    if let Some(text) = known_str(inputs, key) {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(doc)) if doc.contains_key("Statement") => {}
            Ok(_) => failures.push(CheckFailure::new(
                key,
                "is not a policy document: a JSON object with a `Statement`",
            )),
            Err(e) => failures.push(CheckFailure::new(key, format!("is not valid JSON: {e}"))),
        }
    }
}

/// Decodes `%XX` escapes (IAM returns policy documents URL-encoded).
fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The recorded document when AWS's is the same JSON, else AWS's (decoded).
fn policy_as_recorded(from_aws: &str, recorded: &str) -> String {
    let decoded = url_decode(from_aws);
    let parse = |t: &str| serde_json::from_str::<Value>(t).ok();
    if parse(recorded).is_some() && parse(recorded) == parse(&decoded) {
        recorded.to_owned()
    } else {
        decoded
    }
}

/// Whether IAM's tags say this stack's resource `name` owns the object.
fn owned(stack: &str, name: &str, tags: &[Tag]) -> bool {
    ownership::is_owned(stack, name, tags.iter().map(|t| (t.key(), t.value())))
}

async fn get_role(aws: &Aws, name: &str) -> Result<Option<Role>, ProviderError> {
    Ok(found(
        aws.iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .map_err(|e| aws_error("GetRole", e)),
    )?
    .and_then(|out| out.role().cloned()))
}

async fn get_profile(aws: &Aws, name: &str) -> Result<Option<InstanceProfile>, ProviderError> {
    Ok(found(
        aws.iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .map_err(|e| aws_error("GetInstanceProfile", e)),
    )?
    .and_then(|out| out.instance_profile().cloned()))
}

/// An import of the role or instance profile `id` as the stack's `name`: refused when another
/// stack or resource owns it (its tags), else tagged as this stack's.
pub(crate) async fn adopt(
    aws: &Aws,
    profile: bool,
    id: &str,
    stack: &str,
    name: &str,
) -> Result<(), ProviderError> {
    let tags = if profile {
        get_profile(aws, id).await?.map(|p| p.tags().to_vec())
    } else {
        get_role(aws, id).await?.map(|r| r.tags().to_vec())
    }
    .unwrap_or_default();
    let reported = tags.iter().map(|t| (t.key(), t.value()));
    if let Some(reason) = ownership::import_refusal(stack, name, reported) {
        return Err(ProviderError::new(reason).refused());
    }
    let owner = iam_tags(stack, name, &BTreeMap::new());
    if profile {
        aws.iam
            .tag_instance_profile()
            .instance_profile_name(id)
            .set_tags(Some(owner))
            .send()
            .await
            .map_err(|e| aws_error("TagInstanceProfile", e))?;
    } else {
        aws.iam
            .tag_role()
            .role_name(id)
            .set_tags(Some(owner))
            .send()
            .await
            .map_err(|e| aws_error("TagRole", e))?;
    }
    Ok(())
}

fn iam_tags(stack: &str, name: &str, user: &BTreeMap<String, String>) -> Vec<Tag> {
    let mut all = user.clone();
    all.insert(STACK_TAG.to_owned(), stack.to_owned());
    all.insert(RESOURCE_TAG.to_owned(), name.to_owned());
    all.into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .filter_map(Result::ok)
        .collect()
}

#[async_trait]
impl AwsKind for RoleKind {
    fn token(&self) -> &'static str {
        IamRole::TYPE
    }
    fn tagging(&self) -> Tagging {
        Tagging::Role
    }

    fn diff_table(&self) -> &'static DiffTable {
        &ROLE_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &IamRoleArgs::required(), &mut failures);
        check_name(inputs, "name", &mut failures);
        check_policy(inputs, "assume_role_policy", &mut failures);
        failures
    }

    async fn make(&self, aws: &Aws, r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        let role = IamRoleValues::from_known(r.inputs)?;
        let out = aws
            .iam_once
            .create_role()
            .role_name(role.name)
            .assume_role_policy_document(role.assume_role_policy)
            .set_description(role.description)
            .set_tags(Some(iam_tags(r.stack, r.name, &role.tags)))
            .send()
            .await
            .map_err(|e| aws_error("CreateRole", e))?;
        Ok(out
            .role()
            .ok_or_else(|| ProviderError::new("CreateRole returned no role"))?
            .role_name()
            .to_owned())
    }

    async fn complete(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
        id: &str,
    ) -> Result<PropertyMap, ProviderError> {
        let role = wait_for(&aws.settings, "the new role to show", || get_role(aws, id)).await?;
        let mut outputs = r.inputs.clone();
        outputs.insert("arn".to_owned(), Value::from(role.arn()));
        Ok(outputs)
    }

    fn removal(&self, r: &CreateRequest<'_>) -> Option<String> {
        let name = IamRoleValues::from_known(r.inputs).ok()?.name;
        Some(format!(
            "aws iam delete-role --role-name {name}, after removing its policies and instance profiles"
        ))
    }

    /// The role of that name, when this stack's resource owns it.
    async fn find(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
    ) -> Result<Option<String>, ProviderError> {
        let role = get_role(aws, &IamRoleValues::from_known(r.inputs)?.name).await?;
        Ok(role
            .filter(|role| owned(r.stack, r.name, role.tags()))
            .map(|role| role.role_name().to_owned()))
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let recorded = IamRoleValues::from_recorded(r.inputs)?;
        let name = r.id.map_or_else(|| needed(&recorded.name, "name"), Ok)?;
        let Some(role) = get_role(aws, name).await? else {
            return Ok(None);
        };
        let user_tags: BTreeMap<String, String> = role
            .tags()
            .iter()
            .filter(|t| t.key() != STACK_TAG && t.key() != RESOURCE_TAG)
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        let inputs = IamRoleValues {
            name: role.role_name().to_owned(),
            assume_role_policy: policy_as_recorded(
                role.assume_role_policy_document().unwrap_or_default(),
                &recorded.assume_role_policy,
            ),
            description: role.description().map(str::to_owned),
            tags: user_tags,
        }
        .to_properties();
        let mut outputs = inputs.clone();
        outputs.insert("arn".to_owned(), Value::from(role.arn()));
        Ok(Some(ReadResponse {
            id: role.role_name().to_owned(),
            inputs: Some(inputs),
            outputs,
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let (old, new) = (
            IamRoleValues::from_known(r.old_inputs)?,
            IamRoleValues::from_known(r.new_inputs)?,
        );
        if old.assume_role_policy != new.assume_role_policy {
            aws.iam
                .update_assume_role_policy()
                .role_name(r.id)
                .policy_document(&new.assume_role_policy)
                .send()
                .await
                .map_err(|e| aws_error("UpdateAssumeRolePolicy", e))?;
        }
        if old.description != new.description {
            aws.iam
                .update_role()
                .role_name(r.id)
                .description(new.description.clone().unwrap_or_default())
                .send()
                .await
                .map_err(|e| aws_error("UpdateRole", e))?;
        }
        let (old_tags, new_tags) = (old.tags, new.tags);
        let removed: Vec<String> = old_tags
            .keys()
            .filter(|k| !new_tags.contains_key(*k))
            .cloned()
            .collect();
        if !removed.is_empty() {
            aws.iam
                .untag_role()
                .role_name(r.id)
                .set_tag_keys(Some(removed))
                .send()
                .await
                .map_err(|e| aws_error("UntagRole", e))?;
        }
        if old_tags != new_tags {
            aws.iam
                .tag_role()
                .role_name(r.id)
                .set_tags(Some(iam_tags(r.stack, r.name, &new_tags)))
                .send()
                .await
                .map_err(|e| aws_error("TagRole", e))?;
        }
        let mut outputs = r.new_inputs.clone();
        outputs.insert(
            "arn".to_owned(),
            r.old_outputs.get("arn").cloned().unwrap_or(Value::Null),
        );
        Ok(outputs)
    }

    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        // Policies and profiles are deleted first by the engine; IAM may lag behind.
        with_retries(&aws.settings, || async {
            deleted(
                aws.iam
                    .delete_role()
                    .role_name(r.id)
                    .send()
                    .await
                    .map_err(|e| aws_error("DeleteRole", e)),
            )
        })
        .await
    }
}

#[async_trait]
impl AwsKind for RolePolicyKind {
    fn token(&self) -> &'static str {
        IamRolePolicy::TYPE
    }
    fn tagging(&self) -> Tagging {
        Tagging::Untagged
    }

    fn diff_table(&self) -> &'static DiffTable {
        &ROLE_POLICY_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &IamRolePolicyArgs::required(), &mut failures);
        check_name(inputs, "name", &mut failures);
        check_policy(inputs, "policy", &mut failures);
        failures
    }

    async fn make(&self, aws: &Aws, r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        let policy = IamRolePolicyValues::from_known(r.inputs)?;
        // A put: sent again, it sets the same document.
        aws.iam
            .put_role_policy()
            .role_name(&policy.role)
            .policy_name(&policy.name)
            .policy_document(policy.policy)
            .send()
            .await
            .map_err(|e| aws_error("PutRolePolicy", e))?;
        Ok(format!("{}:{}", policy.role, policy.name))
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let recorded = IamRolePolicyValues::from_recorded(r.inputs)?;
        let (role, name) = (
            needed(&recorded.role, "role")?,
            needed(&recorded.name, "name")?,
        );
        let out = found(
            aws.iam
                .get_role_policy()
                .role_name(role)
                .policy_name(name)
                .send()
                .await
                .map_err(|e| aws_error("GetRolePolicy", e)),
        )?;
        let Some(out) = out else { return Ok(None) };
        let now = IamRolePolicyValues {
            role: role.to_owned(),
            name: name.to_owned(),
            policy: policy_as_recorded(out.policy_document(), &recorded.policy),
        }
        .to_properties();
        Ok(Some(ReadResponse {
            id: format!("{role}:{name}"),
            outputs: now.clone(),
            inputs: Some(now),
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let policy = IamRolePolicyValues::from_known(r.new_inputs)?;
        aws.iam
            .put_role_policy()
            .role_name(policy.role)
            .policy_name(policy.name)
            .policy_document(policy.policy)
            .send()
            .await
            .map_err(|e| aws_error("PutRolePolicy", e))?;
        Ok(r.new_inputs.clone())
    }

    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        let policy = IamRolePolicyValues::from_recorded(r.inputs)?;
        deleted(
            aws.iam
                .delete_role_policy()
                .role_name(needed(&policy.role, "role")?)
                .policy_name(needed(&policy.name, "name")?)
                .send()
                .await
                .map_err(|e| aws_error("DeleteRolePolicy", e)),
        )
    }
}

/// Gives the profile its role; a profile that already has it (an earlier attempt whose
/// answer was lost) is done.
async fn add_role(aws: &Aws, profile: &str, role: &str) -> Result<(), ProviderError> {
    let added = aws
        .iam
        .add_role_to_instance_profile()
        .instance_profile_name(profile)
        .role_name(role)
        .send()
        .await
        .map_err(|e| aws_error("AddRoleToInstanceProfile", e));
    match added {
        Err(e) if e.code.as_deref() == Some("LimitExceeded") => {
            let has_it = get_profile(aws, profile)
                .await?
                .is_some_and(|p| p.roles().iter().any(|r| r.role_name() == role));
            if has_it { Ok(()) } else { Err(e) }
        }
        other => other.map(drop),
    }
}

async fn remove_role(aws: &Aws, profile: &str, role: &str) -> Result<(), ProviderError> {
    deleted(
        aws.iam
            .remove_role_from_instance_profile()
            .instance_profile_name(profile)
            .role_name(role)
            .send()
            .await
            .map_err(|e| aws_error("RemoveRoleFromInstanceProfile", e)),
    )
}

#[async_trait]
impl AwsKind for InstanceProfileKind {
    fn token(&self) -> &'static str {
        IamInstanceProfile::TYPE
    }
    fn tagging(&self) -> Tagging {
        Tagging::InstanceProfile
    }

    fn diff_table(&self) -> &'static DiffTable {
        &INSTANCE_PROFILE_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &IamInstanceProfileArgs::required(), &mut failures);
        check_name(inputs, "name", &mut failures);
        failures
    }

    async fn make(&self, aws: &Aws, r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        let name = IamInstanceProfileValues::from_known(r.inputs)?.name;
        aws.iam_once
            .create_instance_profile()
            .instance_profile_name(&name)
            .set_tags(Some(iam_tags(r.stack, r.name, &BTreeMap::new())))
            .send()
            .await
            .map_err(|e| aws_error("CreateInstanceProfile", e))?;
        Ok(name)
    }

    async fn complete(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
        id: &str,
    ) -> Result<PropertyMap, ProviderError> {
        let profile = wait_for(&aws.settings, "the new instance profile to show", || {
            get_profile(aws, id)
        })
        .await?;
        if let Some(role) = IamInstanceProfileValues::from_known(r.inputs)?.role {
            // An earlier run may have added it before its answer was lost.
            if !profile.roles().iter().any(|r| r.role_name() == role) {
                add_role(aws, id, &role).await?;
            }
        }
        let mut outputs = r.inputs.clone();
        outputs.insert("arn".to_owned(), Value::from(profile.arn()));
        Ok(outputs)
    }

    fn removal(&self, r: &CreateRequest<'_>) -> Option<String> {
        let name = IamInstanceProfileValues::from_known(r.inputs).ok()?.name;
        Some(format!(
            "aws iam delete-instance-profile --instance-profile-name {name}, after removing its role"
        ))
    }

    /// The instance profile of that name, when this stack's resource owns it.
    async fn find(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
    ) -> Result<Option<String>, ProviderError> {
        let profile =
            get_profile(aws, &IamInstanceProfileValues::from_known(r.inputs)?.name).await?;
        Ok(profile
            .filter(|p| owned(r.stack, r.name, p.tags()))
            .map(|p| p.instance_profile_name().to_owned()))
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let recorded = IamInstanceProfileValues::from_recorded(r.inputs)?;
        let name = r.id.map_or_else(|| needed(&recorded.name, "name"), Ok)?;
        let Some(profile) = get_profile(aws, name).await? else {
            return Ok(None);
        };
        let inputs = IamInstanceProfileValues {
            name: profile.instance_profile_name().to_owned(),
            role: profile
                .roles()
                .first()
                .map(|role| role.role_name().to_owned()),
        }
        .to_properties();
        let mut outputs = inputs.clone();
        outputs.insert("arn".to_owned(), Value::from(profile.arn()));
        Ok(Some(ReadResponse {
            id: name.to_owned(),
            inputs: Some(inputs),
            outputs,
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let (old, new) = (
            IamInstanceProfileValues::from_known(r.old_inputs)?.role,
            IamInstanceProfileValues::from_known(r.new_inputs)?.role,
        );
        if old != new {
            if let Some(role) = &old {
                remove_role(aws, r.id, role).await?;
            }
            if let Some(role) = &new {
                add_role(aws, r.id, role).await?;
            }
        }
        let mut outputs = r.new_inputs.clone();
        outputs.insert(
            "arn".to_owned(),
            r.old_outputs.get("arn").cloned().unwrap_or(Value::Null),
        );
        Ok(outputs)
    }

    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        if let Some(role) = IamInstanceProfileValues::from_recorded(r.inputs)?.role {
            remove_role(aws, r.id, &role).await?;
        }
        with_retries(&aws.settings, || async {
            deleted(
                aws.iam
                    .delete_instance_profile()
                    .instance_profile_name(r.id)
                    .send()
                    .await
                    .map_err(|e| aws_error("DeleteInstanceProfile", e)),
            )
        })
        .await
    }
}
