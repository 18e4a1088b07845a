//! `aws:ec2:Instance` and the `aws:ec2:Ami` data source.
//!
//! The diff table is declared below and rendered in the provider's `RESOURCES.md`.
//!
//! The instance is launched through a network interface that is deleted with it, so a fixed
//! private IP is freed when the instance terminates. Every create carries a client token, so
//! a retried RunInstances never makes a second instance. Create waits until the instance is
//! running; delete waits until it is terminated.

use std::net::Ipv4Addr;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AttributeValue, BlockDeviceMapping, EbsBlockDevice, Filter, IamInstanceProfileSpecification,
    InstanceNetworkInterfaceSpecification, InstanceStateName, InstanceType, ResourceType,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use super::{owner_filters, tag_spec, update_tags, user_tags};
use crate::{
    Ami, AmiArgs, AmiValues, Aws, AwsKind, Instance, InstanceArgs, InstanceValues, aws_error,
    found, wait_for,
};
use iac_core::ResourceType as _;
use iac_core::provider::diff_table::{Change, DiffRow, DiffTable};
use iac_core::provider::known::{known_str, require};
use iac_core::provider::retry;
use iac_core::{
    CheckFailure, CreateRequest, DeleteRequest, ProviderError, ReadRequest, ReadResponse,
    UpdateRequest,
};
use iac_core::{Properties, PropertyMap};

/// The diff table of `Instance` (rendered in the provider's RESOURCES.md).
pub(crate) const INSTANCE_TABLE: DiffTable = DiffTable {
    type_token: Instance::TYPE,
    rows: &[
        DiffRow {
            inputs: &["instance_type"],
            change: Change::InPlace,
            note: "stop, modify, start; the public IP may change",
        },
        DiffRow {
            inputs: &["security_group_ids", "tags"],
            change: Change::InPlace,
            note: "",
        },
        DiffRow {
            inputs: &[
                "ami",
                "subnet_id",
                "private_ip",
                "key_name",
                "iam_instance_profile",
                "user_data",
                "root_volume_size",
                "associate_public_ip",
            ],
            change: Change::Replace,
            note: "",
        },
    ],
};

pub(crate) struct InstanceKind;
/// The diff table of `Ami` (rendered in the provider's RESOURCES.md).
pub(crate) const AMI_TABLE: DiffTable = DiffTable {
    type_token: Ami::TYPE,
    rows: &[DiffRow {
        inputs: &["owners", "name", "architecture"],
        change: Change::Replace,
        note: "a data source: read again at every plan",
    }],
};

pub(crate) struct AmiKind;

type Ec2Instance = aws_sdk_ec2::types::Instance;

async fn describe(aws: &Aws, id: &str) -> Result<Option<Ec2Instance>, ProviderError> {
    Ok(found(
        aws.ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(|e| aws_error("DescribeInstances", e)),
    )?
    .and_then(|out| {
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
            .cloned()
    }))
}

fn state(instance: &Ec2Instance) -> Option<&InstanceStateName> {
    instance.state().and_then(|s| s.name())
}

fn gone(instance: &Ec2Instance) -> bool {
    matches!(
        state(instance),
        Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown)
    )
}

/// Waits until the instance is in `want`; fails at once if it terminates instead.
async fn wait_state(
    aws: &Aws,
    id: &str,
    want: InstanceStateName,
) -> Result<Ec2Instance, ProviderError> {
    let what = format!("instance {id} reaching state {}", want.as_str());
    wait_for(&aws.settings, &what, || async {
        let Some(instance) = describe(aws, id).await? else {
            return Ok(None);
        };
        match state(&instance) {
            Some(s) if *s == want => Ok(Some(instance)),
            Some(InstanceStateName::Terminated) if want != InstanceStateName::Terminated => {
                Err(ProviderError::with_code(
                    "InstanceTerminated",
                    format!(
                        "instance {id} terminated while waiting for {}",
                        want.as_str()
                    ),
                ))
            }
            _ => Ok(None),
        }
    })
    .await
}

fn outputs(inputs: &PropertyMap, instance: &Ec2Instance) -> PropertyMap {
    let mut outputs = inputs.clone();
    for (key, value) in [
        ("private_ip", instance.private_ip_address()),
        ("public_ip", instance.public_ip_address()),
        ("private_dns", instance.private_dns_name()),
        ("public_dns", instance.public_dns_name()),
        (
            "availability_zone",
            instance.placement().and_then(|p| p.availability_zone()),
        ),
    ] {
        outputs.insert(key.to_owned(), Value::from(value.unwrap_or_default()));
    }
    outputs
}

/// The device name of an image's root volume.
async fn root_device(aws: &Aws, ami: &str) -> Result<String, ProviderError> {
    let out = aws
        .ec2
        .describe_images()
        .image_ids(ami)
        .send()
        .await
        .map_err(|e| aws_error("DescribeImages", e))?;
    Ok(out
        .images()
        .first()
        .and_then(|i| i.root_device_name())
        .unwrap_or("/dev/xvda")
        .to_owned())
}

#[async_trait]
impl AwsKind for InstanceKind {
    fn token(&self) -> &'static str {
        Instance::TYPE
    }

    fn diff_table(&self) -> &'static DiffTable {
        &INSTANCE_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &InstanceArgs::required(), &mut failures);
        if let Some(ip) = known_str(inputs, "private_ip")
            && ip.parse::<Ipv4Addr>().is_err()
        {
            failures.push(CheckFailure::new(
                "private_ip",
                format!("`{ip}` is not an IPv4 address"),
            ));
        }
        if let Some(t) = known_str(inputs, "instance_type")
            && !InstanceType::values().contains(&t)
        {
            failures.push(CheckFailure::new(
                "instance_type",
                format!("`{t}` is not an EC2 instance type"),
            ));
        }
        if let Some(size) = inputs.known("root_volume_size").and_then(Value::as_i64)
            && !(1..=16_384).contains(&size)
        {
            failures.push(CheckFailure::new(
                "root_volume_size",
                format!("{size} GiB is outside 1-16384"),
            ));
        }
        failures
    }

    async fn make(&self, aws: &Aws, r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        let instance = InstanceValues::from_known(r.inputs)?;
        let ami = instance.ami.as_str();
        let mut interface = InstanceNetworkInterfaceSpecification::builder()
            .device_index(0)
            .subnet_id(&instance.subnet_id)
            .delete_on_termination(true)
            .set_groups(Some(instance.security_group_ids.clone()))
            .set_private_ip_address(instance.private_ip.clone());
        if instance.associate_public_ip == Some(true) {
            interface = interface.associate_public_ip_address(true);
        }
        let mut call = aws
            .ec2_once
            .run_instances()
            .image_id(ami)
            .instance_type(InstanceType::from(instance.instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            .network_interfaces(interface.build())
            .set_key_name(instance.key_name.clone())
            .set_user_data(instance.user_data.as_ref().map(|u| BASE64.encode(u)))
            .tag_specifications(tag_spec(
                ResourceType::Instance,
                r.stack,
                r.name,
                &instance.tags,
            ))
            // AWS makes one instance per token, however often the call is sent.
            .client_token(r.idempotency_token);
        if let Some(profile) = &instance.iam_instance_profile {
            call = call.iam_instance_profile(
                IamInstanceProfileSpecification::builder()
                    .name(profile)
                    .build(),
            );
        }
        if let Some(size) = instance.root_volume_size {
            let size = i32::try_from(size).map_err(|_| {
                ProviderError::with_code("InvalidInput", "root_volume_size is too large")
            })?;
            call = call.block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name(root_device(aws, ami).await?)
                    .ebs(
                        EbsBlockDevice::builder()
                            .volume_size(size)
                            .delete_on_termination(true)
                            .build(),
                    )
                    .build(),
            );
        }
        // A just-created instance profile takes a while to be usable by EC2.
        let out = retry::with_retries(aws.settings.wait(), profile_propagating, || async {
            call.clone()
                .send()
                .await
                .map_err(|e| aws_error("RunInstances", e))
        })
        .await?;
        Ok(out
            .instances()
            .first()
            .and_then(|i| i.instance_id())
            .ok_or_else(|| ProviderError::new("RunInstances returned no instance"))?
            .to_owned())
    }

    async fn complete(
        &self,
        aws: &Aws,
        r: &CreateRequest<'_>,
        id: &str,
    ) -> Result<PropertyMap, ProviderError> {
        let running = wait_state(aws, id, InstanceStateName::Running).await?;
        Ok(outputs(r.inputs, &running))
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let instance = match r.id {
            Some(id) => describe(aws, id).await?,
            None => aws
                .ec2
                .describe_instances()
                .set_filters(Some(owner_filters(r.stack, r.name)))
                .send()
                .await
                .map_err(|e| aws_error("DescribeInstances", e))?
                .reservations()
                .iter()
                .flat_map(|res| res.instances())
                .find(|i| !gone(i))
                .cloned(),
        };
        let Some(instance) = instance.filter(|i| !gone(i)) else {
            return Ok(None);
        };
        let recorded = InstanceValues::from_recorded(r.inputs)?;
        let mut groups = security_groups(&instance);
        if sorted(&groups) == sorted(&recorded.security_group_ids) {
            groups = recorded.security_group_ids.clone();
        }
        let inputs = InstanceValues {
            ami: instance.image_id().unwrap_or_default().to_owned(),
            instance_type: instance
                .instance_type()
                .map(InstanceType::as_str)
                .unwrap_or_default()
                .to_owned(),
            subnet_id: instance.subnet_id().unwrap_or_default().to_owned(),
            security_group_ids: groups,
            tags: user_tags(r.stack, r.name, instance.tags()),
            // A fixed address is read back; one AWS chose stays unset, so it is not drift.
            private_ip: recorded
                .private_ip
                .as_ref()
                .map(|_| instance.private_ip_address().unwrap_or_default().to_owned()),
            // What AWS does not report back is as recorded.
            ..recorded
        }
        .to_properties();
        Ok(Some(ReadResponse {
            id: instance.instance_id().unwrap_or_default().to_owned(),
            outputs: outputs(&inputs, &instance),
            inputs: Some(inputs),
        }))
    }

    async fn update(&self, aws: &Aws, r: &UpdateRequest<'_>) -> Result<PropertyMap, ProviderError> {
        let (old, new) = (
            InstanceValues::from_known(r.old_inputs)?,
            InstanceValues::from_known(r.new_inputs)?,
        );
        let new_type = new.instance_type.as_str();
        if old.instance_type != new_type {
            aws.ec2
                .stop_instances()
                .instance_ids(r.id)
                .send()
                .await
                .map_err(|e| aws_error("StopInstances", e))?;
            wait_state(aws, r.id, InstanceStateName::Stopped).await?;
            aws.ec2
                .modify_instance_attribute()
                .instance_id(r.id)
                .instance_type(AttributeValue::builder().value(new_type).build())
                .send()
                .await
                .map_err(|e| aws_error("ModifyInstanceAttribute", e))?;
            aws.ec2
                .start_instances()
                .instance_ids(r.id)
                .send()
                .await
                .map_err(|e| aws_error("StartInstances", e))?;
            wait_state(aws, r.id, InstanceStateName::Running).await?;
        }
        let groups = new.security_group_ids.clone();
        if sorted(&old.security_group_ids) != sorted(&groups) {
            let instance = describe(aws, r.id).await?;
            let interface = instance
                .as_ref()
                .and_then(primary_interface)
                .and_then(|n| n.network_interface_id())
                .ok_or_else(|| {
                    ProviderError::new(format!("instance {} has no network interface", r.id))
                })?;
            aws.ec2
                .modify_network_interface_attribute()
                .network_interface_id(interface)
                .set_groups(Some(groups))
                .send()
                .await
                .map_err(|e| aws_error("ModifyNetworkInterfaceAttribute", e))?;
        }
        update_tags(aws, r, &old.tags, &new.tags).await?;
        let instance = describe(aws, r.id).await?.ok_or_else(|| {
            ProviderError::with_code(
                "InvalidInstanceID.NotFound",
                format!("instance {} vanished during update", r.id),
            )
        })?;
        Ok(outputs(r.new_inputs, &instance))
    }

    async fn delete(&self, aws: &Aws, r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        if found(
            aws.ec2
                .terminate_instances()
                .instance_ids(r.id)
                .send()
                .await
                .map_err(|e| aws_error("TerminateInstances", e)),
        )?
        .is_none()
        {
            return Ok(());
        }
        let what = format!("instance {} terminating", r.id);
        wait_for(&aws.settings, &what, || async {
            Ok(match describe(aws, r.id).await? {
                None => Some(()),
                Some(i) if state(&i) == Some(&InstanceStateName::Terminated) => Some(()),
                Some(_) => None,
            })
        })
        .await
    }
}

/// The primary network interface, which carries the instance's security groups.
fn primary_interface(
    instance: &Ec2Instance,
) -> Option<&aws_sdk_ec2::types::InstanceNetworkInterface> {
    instance
        .network_interfaces()
        .iter()
        .find(|n| n.attachment().and_then(|a| a.device_index()) == Some(0))
        .or_else(|| instance.network_interfaces().first())
}

fn security_groups(instance: &Ec2Instance) -> Vec<String> {
    let groups = match primary_interface(instance) {
        Some(interface) => interface.groups(),
        None => instance.security_groups(),
    };
    groups
        .iter()
        .filter_map(|g| g.group_id())
        .map(str::to_owned)
        .collect()
}

fn sorted(values: &[String]) -> Vec<&String> {
    let mut v: Vec<&String> = values.iter().collect();
    v.sort();
    v
}

/// AWS's answer while an instance profile it has just made is not yet known to EC2.
fn profile_propagating(error: &ProviderError) -> bool {
    error.code.as_deref() == Some("InvalidParameterValue")
        && error.message.contains("Invalid IAM Instance Profile")
}

fn data_source_only(token: &str) -> ProviderError {
    ProviderError::with_code(
        "DataSource",
        format!("`{token}` is a data source: register it with Stack::data_source"),
    )
    .refused()
}

#[async_trait]
impl AwsKind for AmiKind {
    fn token(&self) -> &'static str {
        Ami::TYPE
    }

    fn diff_table(&self) -> &'static DiffTable {
        &AMI_TABLE
    }

    fn check(&self, inputs: &Properties) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        require(inputs, &AmiArgs::required(), &mut failures);
        let no_owner = match inputs.known("owners") {
            Some(Value::Array(owners)) => owners.is_empty(),
            Some(Value::Null) => true,
            _ => !inputs.is_unknown("owners"),
        };
        if no_owner {
            failures.push(CheckFailure::new(
                "owners",
                "name at least one owner (`amazon`, an account id): any account may publish an image of that name",
            ));
        }
        failures
    }

    async fn make(&self, _aws: &Aws, _r: &CreateRequest<'_>) -> Result<String, ProviderError> {
        Err(data_source_only(Ami::TYPE))
    }

    async fn complete(
        &self,
        _aws: &Aws,
        _r: &CreateRequest<'_>,
        _id: &str,
    ) -> Result<PropertyMap, ProviderError> {
        Err(data_source_only(Ami::TYPE))
    }

    async fn read(
        &self,
        aws: &Aws,
        r: &ReadRequest<'_>,
    ) -> Result<Option<ReadResponse>, ProviderError> {
        let asked = AmiValues::from_known(r.inputs)?;
        let mut call = aws
            .ec2
            .describe_images()
            .set_owners(Some(asked.owners))
            .filters(Filter::builder().name("name").values(asked.name).build());
        if let Some(arch) = asked.architecture {
            call = call.filters(Filter::builder().name("architecture").values(arch).build());
        }
        let out = call
            .send()
            .await
            .map_err(|e| aws_error("DescribeImages", e))?;
        let newest = out.images().iter().max_by(|a, b| {
            a.creation_date()
                .unwrap_or_default()
                .cmp(b.creation_date().unwrap_or_default())
        });
        let Some(image) = newest else { return Ok(None) };
        let id = image.image_id().unwrap_or_default().to_owned();
        let mut outputs = r.inputs.clone();
        outputs.insert("image_id".to_owned(), Value::from(id.as_str()));
        outputs.insert(
            "image_name".to_owned(),
            Value::from(image.name().unwrap_or_default()),
        );
        outputs.insert(
            "creation_date".to_owned(),
            Value::from(image.creation_date().unwrap_or_default()),
        );
        Ok(Some(ReadResponse {
            id,
            inputs: None,
            outputs,
        }))
    }

    async fn update(
        &self,
        _aws: &Aws,
        _r: &UpdateRequest<'_>,
    ) -> Result<PropertyMap, ProviderError> {
        Err(data_source_only(Ami::TYPE))
    }

    async fn delete(&self, _aws: &Aws, _r: &DeleteRequest<'_>) -> Result<(), ProviderError> {
        Err(data_source_only(Ami::TYPE))
    }
}
