//! The typed AWS resources a stack program registers. Type tokens are `aws:<service>:<Kind>`.
//! Where AWS has its own default, the input is an `Option` and `None` leaves it alone. How a
//! change of each input is made (in place or by replacement) is the kind's diff table, listed
//! in the provider's `RESOURCES.md` (the crate documentation shows it).

use std::collections::BTreeMap;

/// User tags of a resource (`Name` and the ownership tags are added by the provider).
pub type Tags = BTreeMap<String, String>;

iac_core::resource! {
    /// A VPC.
    pub resource Vpc("aws:ec2:Vpc") {
        args VpcArgs, values VpcValues {
            /// IPv4 CIDR block, /16 to /28.
            cidr_block: String,
            /// Give instances public DNS hostnames.
            enable_dns_hostnames: Option<bool>,
            /// Resolve DNS through the Amazon resolver (AWS default: on).
            enable_dns_support: Option<bool>,
            /// Tags.
            tags: Tags,
        }
        outputs {
            /// The VPC's main route table.
            main_route_table_id: String,
        }
    }
}

iac_core::resource! {
    /// A subnet.
    pub resource Subnet("aws:ec2:Subnet") {
        args SubnetArgs, values SubnetValues {
            /// The VPC.
            vpc_id: String,
            /// IPv4 CIDR block inside the VPC's.
            cidr_block: String,
            /// Availability zone (AWS picks one when unset).
            availability_zone: Option<String> => String,
            /// Give instances launched here a public IP.
            map_public_ip_on_launch: Option<bool>,
            /// Tags.
            tags: Tags,
        }
        outputs {}
    }
}

iac_core::resource! {
    /// An internet gateway, attached to `vpc_id` when set.
    pub resource InternetGateway("aws:ec2:InternetGateway") {
        args InternetGatewayArgs, values InternetGatewayValues {
            /// The VPC to attach to.
            vpc_id: Option<String>,
            /// Tags.
            tags: Tags,
        }
        outputs {}
    }
}

iac_core::resource! {
    /// A route table of a VPC.
    pub resource RouteTable("aws:ec2:RouteTable") {
        args RouteTableArgs, values RouteTableValues {
            /// The VPC.
            vpc_id: String,
            /// Tags.
            tags: Tags,
        }
        outputs {}
    }
}

iac_core::resource! {
    /// One route of a route table.
    pub resource Route("aws:ec2:Route") {
        args RouteArgs, values RouteValues {
            /// The route table.
            route_table_id: String,
            /// Destination, e.g. `0.0.0.0/0`.
            destination_cidr_block: String,
            /// Target internet gateway.
            gateway_id: String,
        }
        outputs {}
    }
}

iac_core::resource! {
    /// Associates a subnet with a route table.
    pub resource RouteTableAssociation("aws:ec2:RouteTableAssociation") {
        args RouteTableAssociationArgs, values RouteTableAssociationValues {
            /// The route table.
            route_table_id: String,
            /// The subnet.
            subnet_id: String,
        }
        outputs {}
    }
}

iac_core::resource! {
    /// A security group (its rules are separate [`SecurityGroupRule`]s).
    pub resource SecurityGroup("aws:ec2:SecurityGroup") {
        args SecurityGroupArgs, values SecurityGroupValues {
            /// Group name, unique in the VPC.
            name: String,
            /// Description.
            description: String,
            /// The VPC.
            vpc_id: String,
            /// Tags.
            tags: Tags,
        }
        outputs {}
    }
}

iac_core::resource! {
    /// One ingress or egress rule of a security group.
    pub resource SecurityGroupRule("aws:ec2:SecurityGroupRule") {
        args SecurityGroupRuleArgs, values SecurityGroupRuleValues {
            /// The group the rule belongs to.
            security_group_id: String,
            /// `ingress` or `egress`.
            direction: String,
            /// `tcp`, `udp`, `icmp` or `all`.
            protocol: String,
            /// First port (tcp and udp; unset for `all`).
            from_port: Option<i64>,
            /// Last port (tcp and udp; unset for `all`).
            to_port: Option<i64>,
            /// Peer CIDR (one of `cidr_ipv4`, `source_security_group_id`, `self_referencing`).
            cidr_ipv4: Option<String>,
            /// Peer security group.
            source_security_group_id: Option<String>,
            /// Peer is the group itself.
            self_referencing: Option<bool>,
            /// Description.
            description: Option<String>,
        }
        outputs {}
    }
}

iac_core::resource! {
    /// An imported SSH public key.
    pub resource KeyPair("aws:ec2:KeyPair") {
        args KeyPairArgs, values KeyPairValues {
            /// Key name.
            key_name: String,
            /// OpenSSH public key.
            public_key: String,
            /// Tags.
            tags: Tags,
        }
        outputs {
            /// Fingerprint AWS computed.
            key_fingerprint: String,
        }
    }
}

iac_core::resource! {
    /// An EC2 instance. A fixed `private_ip` is set through a network interface deleted with
    /// the instance, so the address is freed with it.
    pub resource Instance("aws:ec2:Instance") {
        args InstanceArgs, values InstanceValues {
            /// AMI id (see [`Ami`] to look one up by owner and name).
            ami: String,
            /// Instance type.
            instance_type: String,
            /// Subnet.
            subnet_id: String,
            /// Fixed private IP inside the subnet (AWS picks one when unset).
            private_ip: Option<String> => String,
            /// Security groups.
            security_group_ids: Vec<String>,
            /// Key pair name.
            key_name: Option<String>,
            /// Instance profile name.
            iam_instance_profile: Option<String>,
            /// User data (plain text; encoded by the provider).
            user_data: Option<String>,
            /// Root volume size in GiB.
            root_volume_size: Option<i64>,
            /// Give the instance a public IP.
            associate_public_ip: Option<bool>,
            /// Tags.
            tags: Tags,
        }
        outputs {
            /// Public IP (empty when it has none).
            public_ip: String,
            /// Private DNS name.
            private_dns: String,
            /// Public DNS name (empty when it has none).
            public_dns: String,
            /// Availability zone.
            availability_zone: String,
        }
    }
}

iac_core::resource! {
    /// Data source: the most recent AMI of `owners` whose name matches `name` (wildcards `*`).
    pub resource Ami("aws:ec2:Ami") {
        args AmiArgs, values AmiValues {
            /// Owner account ids or aliases (`amazon`, `self`, …).
            owners: Vec<String>,
            /// Name pattern.
            name: String,
            /// Architecture (`x86_64`, `arm64`).
            architecture: Option<String>,
        }
        outputs {
            /// The image id.
            image_id: String,
            /// The image name.
            image_name: String,
            /// When it was created.
            creation_date: String,
        }
    }
}

iac_core::resource! {
    /// An Elastic IP, associated with `instance_id` when set.
    pub resource ElasticIp("aws:ec2:ElasticIp") {
        args ElasticIpArgs, values ElasticIpValues {
            /// Instance to associate with.
            instance_id: Option<String>,
            /// Tags.
            tags: Tags,
        }
        outputs {
            /// The public IP.
            public_ip: String,
        }
    }
}

iac_core::resource! {
    /// An IAM role.
    pub resource IamRole("aws:iam:Role") {
        args IamRoleArgs, values IamRoleValues {
            /// Role name.
            name: String,
            /// Trust policy (JSON).
            assume_role_policy: String,
            /// Description.
            description: Option<String>,
            /// Tags.
            tags: Tags,
        }
        outputs {
            /// The role's ARN.
            arn: String,
        }
    }
}

iac_core::resource! {
    /// An inline policy of a role.
    pub resource IamRolePolicy("aws:iam:RolePolicy") {
        args IamRolePolicyArgs, values IamRolePolicyValues {
            /// The role's name.
            role: String,
            /// Policy name.
            name: String,
            /// Policy document (JSON).
            policy: String,
        }
        outputs {}
    }
}

iac_core::resource! {
    /// An instance profile carrying one role.
    pub resource IamInstanceProfile("aws:iam:InstanceProfile") {
        args IamInstanceProfileArgs, values IamInstanceProfileValues {
            /// Profile name.
            name: String,
            /// The role's name.
            role: Option<String>,
        }
        outputs {
            /// The profile's ARN.
            arn: String,
        }
    }
}
