"""What the AWS emulator holds for one stack, read with boto3 (independently of the stacks
CLI and of the Rust SDK): one [kind, iac:resource tag] pair per live object, one
[rule, description] pair per security group rule, and the stack's IAM role and profile.

usage: inventory.py STACK  (AWS_ENDPOINT_URL names the emulator)
"""
import json
import os
import sys

import boto3

stack = sys.argv[1]
kw = dict(endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="eu-central-1")
ec2, iam = boto3.client("ec2", **kw), boto3.client("iam", **kw)
owned = [{"Name": "tag:iac:stack", "Values": [stack]}]


def resource(tags):
    return next((t["Value"] for t in tags or [] if t["Key"] == "iac:resource"), None)


found = []
for vpc in ec2.describe_vpcs(Filters=owned)["Vpcs"]:
    found.append(["vpc", resource(vpc.get("Tags"))])
for subnet in ec2.describe_subnets(Filters=owned)["Subnets"]:
    found.append(["subnet", resource(subnet.get("Tags"))])
for gateway in ec2.describe_internet_gateways(Filters=owned)["InternetGateways"]:
    found.append(["internet_gateway", resource(gateway.get("Tags"))])
for table in ec2.describe_route_tables(Filters=owned)["RouteTables"]:
    found.append(["route_table", resource(table.get("Tags"))])
for key in ec2.describe_key_pairs(Filters=owned)["KeyPairs"]:
    found.append(["key_pair", resource(key.get("Tags"))])
for address in ec2.describe_addresses(Filters=owned)["Addresses"]:
    found.append(["elastic_ip", resource(address.get("Tags"))])
for reservation in ec2.describe_instances(Filters=owned)["Reservations"]:
    for instance in reservation["Instances"]:
        if instance["State"]["Name"] not in ("terminated", "shutting-down"):
            found.append(["instance", resource(instance.get("Tags"))])
for group in ec2.describe_security_groups(Filters=owned)["SecurityGroups"]:
    found.append(["security_group", resource(group.get("Tags"))])
    for perm in group["IpPermissions"]:
        peers = [r["CidrIp"] for r in perm.get("IpRanges", [])]
        peers += [p["GroupId"] for p in perm.get("UserIdGroupPairs", [])]
        for peer in peers:
            rule = f'{group["GroupId"]} {perm["IpProtocol"]} {perm.get("FromPort")}-{perm.get("ToPort")} {peer}'
            found.append(["rule", rule])
name = f"{stack}-kafka-node"
try:
    iam.get_role(RoleName=name)
    found.append(["role", name])
except iam.exceptions.NoSuchEntityException:
    pass
try:
    profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    found.append(["instance_profile", name])
    for role in profile["Roles"]:
        found.append(["profile_role", role["RoleName"]])
except iam.exceptions.NoSuchEntityException:
    pass
print(json.dumps(found))
