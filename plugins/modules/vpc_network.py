#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: appdeploy.ecs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vpc_network
short_description: Converge the whole network of one stack (VPC, subnets, gateways, route tables, security groups) in one call
version_added: 0.1.0
description:
  - Creates or updates, for the stack O(name), a VPC with DNS support and DNS hostnames, an internet gateway, one
    public and one private subnet per availability zone, NAT gateways with their Elastic IPs, one public route table
    and one private route table per zone, the rules of the VPC's default security group, and a set of security
    groups whose rules may name each other.
  - It reads the current state with one C(Describe*) call per resource type, filtered by the VPC, compares it with
    the desired state and only calls the APIs for what differs. A run that finds everything in place makes nine
    read requests and no write.
  - Why not the amazon.aws modules, which the collection used before? Converging this network with
    M(amazon.aws.ec2_vpc_net), M(amazon.aws.ec2_vpc_subnet), M(amazon.aws.ec2_vpc_nat_gateway),
    M(amazon.aws.ec2_vpc_route_table) and M(amazon.aws.ec2_security_group) takes 29 tasks and 80 requests when
    nothing changes, and sleeps a fixed 5 s per changed route table and 3 s per created security group on a first
    run; a security group chain that refers to itself needs two passes. See C(docs/benchmarks.md).
  - Resources are found by the stack's tags (C(appdeploy:stack) and C(Name)), subnets by their CIDR, NAT gateways by
    their subnet. Elastic IPs are tagged with the subnet they are for before the NAT gateway is created, so a run
    interrupted between the two reuses the address instead of leaking it.
  - Deleting the network is done by the C(appdeploy.ecs.vpc) role with the amazon.aws modules.
author:
  - appdeploy.ecs contributors (@appdeploy)
options:
  name:
    description:
      - Name of the stack. The VPC is tagged C(Name=<name>) and C(appdeploy:stack=<name>); every other resource gets
        a C(Name) starting with O(name) and the same C(appdeploy:stack) tag.
    type: str
    required: true
  cidr_block:
    description:
      - IPv4 CIDR of the VPC. The CIDR of an existing VPC cannot change; the module fails when it differs.
    type: str
    required: true
  azs:
    description:
      - Availability zones, in order, one public and one private subnet each.
      - Empty picks the first O(az_count) available zones of the region, sorted by name.
    type: list
    elements: str
    default: []
  az_count:
    description: Number of zones to pick when O(azs) is empty. At least 2.
    type: int
    default: 2
  public_subnet_cidrs:
    description: CIDRs of the public subnets, one per zone, in zone order.
    type: list
    elements: str
    required: true
  private_subnet_cidrs:
    description: CIDRs of the private subnets, one per zone, in zone order.
    type: list
    elements: str
    required: true
  nat_gateway_mode:
    description:
      - V(per_az) gives each zone its own NAT gateway, V(single) one gateway (in the first zone) for all private
        subnets, V(none) no NAT gateway and no default route for the private subnets.
      - NAT gateways in the stack's public subnets that the mode no longer needs are deleted, after no route uses
        them any more, and their Elastic IPs released.
    type: str
    choices: [per_az, single, none]
    default: per_az
  restrict_default_security_group:
    description: Remove every rule from the VPC's default security group (AWS FSBP control EC2.2).
    type: bool
    default: true
  security_groups:
    description:
      - Security groups of the stack. Each group's rules are exactly the ones listed (others are revoked, including
        the allow-all egress rule AWS adds to a new group).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Short name; the group is called C(<name>-<short name>).
        type: str
        required: true
      description:
        description:
          - Description of the group. AWS cannot change it on an existing group; the module warns when it differs.
        type: str
        required: true
      rules:
        description:
          - Ingress rules. Each has C(proto) (V(tcp), V(udp), V(icmp) or V(-1)), C(ports) (for tcp and udp, a list of
            ports and C(from-to) ranges), exactly one of C(cidr_ip) (a list of IPv4 CIDRs) and C(group) (the short
            name of a group in this list), and C(rule_desc).
        type: list
        elements: dict
        default: []
      rules_egress:
        description: Egress rules, in the same form as O(security_groups[].rules).
        type: list
        elements: dict
        default: []
  tags:
    description: Extra tags for every resource. Tags not listed (other than C(aws:*)) are removed.
    type: dict
    default: {}
  wait_timeout:
    description: Seconds to wait for new NAT gateways to become available.
    type: int
    default: 600
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Nothing is created or modified; C(changes) lists what a real run would do. Ids of resources that do not exist yet are empty.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff lists the changes, one per line.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: A second run with the same inputs reports no change and calls no mutating API.
"""

EXAMPLES = r"""
- name: Converge the network of the ordermanagement stack
  appdeploy.ecs.vpc_network:
    name: ordermanagement
    cidr_block: 10.0.0.0/16
    az_count: 2
    public_subnet_cidrs: [10.0.0.0/20, 10.0.16.0/20]
    private_subnet_cidrs: [10.0.128.0/20, 10.0.144.0/20]
    nat_gateway_mode: per_az
    security_groups:
      - name: alb
        description: load balancer
        rules:
          - {proto: tcp, ports: [80, 443], cidr_ip: [0.0.0.0/0], rule_desc: HTTP and HTTPS}
        rules_egress:
          - {proto: tcp, ports: [8080], group: app, rule_desc: to the app}
      - name: app
        description: app tasks
        rules:
          - {proto: tcp, ports: [8080], group: alb, rule_desc: from the load balancer}
        rules_egress:
          - {proto: tcp, ports: [443], cidr_ip: [0.0.0.0/0], rule_desc: HTTPS to AWS APIs}
  register: network
"""

RETURN = r"""
vpc_id:
  description: Id of the VPC; empty in check mode when it does not exist yet.
  returned: always
  type: str
  sample: vpc-0123456789abcdef0
azs:
  description: The zones used, in order.
  returned: always
  type: list
  elements: str
  sample: [eu-central-1a, eu-central-1b]
public_subnet_ids:
  description: Ids of the public subnets in zone order (empty strings for subnets check mode would create).
  returned: always
  type: list
  elements: str
private_subnet_ids:
  description: Ids of the private subnets in zone order (empty strings for subnets check mode would create).
  returned: always
  type: list
  elements: str
internet_gateway_id:
  description: Id of the internet gateway.
  returned: always
  type: str
nat_gateway_ids:
  description: Ids of the NAT gateways the private subnets route to, in zone order.
  returned: always
  type: list
  elements: str
route_table_ids:
  description: Ids of the stack's route tables by their Name tag.
  returned: always
  type: dict
security_group_ids:
  description: Ids of the security groups by short name.
  returned: always
  type: dict
  sample: {alb: sg-0123, app: sg-0456}
changes:
  description: What the run changed (or, in check mode, would change), one line each.
  returned: always
  type: list
  elements: str
  sample: ["create subnet 10.0.0.0/20 in eu-central-1a", "authorize ingress on ordermanagement-alb: tcp 443 from 0.0.0.0/0"]
"""

import ipaddress

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags
from ansible_collections.appdeploy.ecs.plugins.module_utils.retries import retry_decorator

STACK_TAG = "appdeploy:stack"
ANY = "0.0.0.0/0"


class NetworkError(Exception):
    """A problem with the input or the account that the user must fix; reported as one line."""


def parse_ports(proto, ports, where):
    """The (from, to) pairs of a rule: [(None, None)] for all protocols, (-1, -1) for all ICMP."""
    if proto == "-1":
        if ports:
            raise NetworkError("%s: proto -1 means all traffic; leave ports empty" % where)
        return [(None, None)]
    if proto == "icmp":
        return [(-1, -1)]
    if not ports:
        raise NetworkError("%s: proto %s needs ports (a list of ports and from-to ranges)" % (where, proto))
    pairs = []
    for port in ports:
        text = str(port)
        low, sep, high = text.partition("-")
        try:
            low, high = int(low), int(high if sep else low)
        except ValueError:
            raise NetworkError("%s: port %r is not a number or a from-to range" % (where, port))
        if not 0 <= low <= high <= 65535:
            raise NetworkError("%s: port range %r must be within 0-65535, low to high" % (where, port))
        pairs.append((low, high))
    return pairs


def desired_rules(group, direction, group_names):
    """The rules of one direction of one group as {key: description}; a key is (proto, from, to, kind, target)."""
    wanted = {}
    for index, rule in enumerate(group.get(direction) or []):
        where = "security_groups[%s].%s[%d]" % (group["name"], direction, index)
        if not isinstance(rule, dict):
            raise NetworkError("%s must be a dict with proto, ports, cidr_ip or group, rule_desc" % where)
        unknown = set(rule) - {"proto", "ports", "cidr_ip", "group", "rule_desc"}
        if unknown:
            raise NetworkError("%s: unknown key(s) %s; allowed: proto, ports, cidr_ip, group, rule_desc"
                               % (where, ", ".join(sorted(unknown))))
        proto = str(rule.get("proto", "tcp")).lower()
        if proto in ("all", "-1"):
            proto = "-1"
        if proto not in ("tcp", "udp", "icmp", "-1"):
            raise NetworkError("%s: proto %r is not allowed; allowed: tcp, udp, icmp, -1" % (where, rule.get("proto")))
        cidrs, peer = rule.get("cidr_ip"), rule.get("group")
        if (cidrs is None) == (peer is None):
            raise NetworkError("%s: give exactly one of cidr_ip and group" % where)
        if isinstance(cidrs, str):
            cidrs = [cidrs]
        targets = []
        if peer is not None:
            if peer not in group_names:
                raise NetworkError("%s: group %r is not one of the security_groups (%s)"
                                   % (where, peer, ", ".join(group_names)))
            targets.append(("group", peer))
        for cidr in cidrs or []:
            try:
                targets.append(("cidr", str(ipaddress.IPv4Network(cidr, strict=True))))
            except ValueError as e:
                raise NetworkError("%s: cidr_ip %r is not an IPv4 CIDR (%s)" % (where, cidr, e))
        description = rule.get("rule_desc") or None
        for low, high in parse_ports(proto, rule.get("ports") or [], where):
            for kind, target in targets:
                wanted[(proto, low, high, kind, target)] = description
    return wanted


def current_rules(permissions, group_names_by_id):
    """The rules of an IpPermissions list as {key: description}, keys as in desired_rules.

    Security groups are keyed by the short name of the stack's group when they are one (so desired and current keys
    compare), by id otherwise; IPv6 ranges and prefix lists are kept so that they are revoked too.
    """
    found = {}
    for perm in permissions:
        proto = perm.get("IpProtocol")
        low, high = (None, None) if proto == "-1" else (perm.get("FromPort"), perm.get("ToPort"))
        for item in perm.get("IpRanges", []):
            found[(proto, low, high, "cidr", item["CidrIp"])] = item.get("Description")
        for item in perm.get("Ipv6Ranges", []):
            found[(proto, low, high, "ipv6", item["CidrIpv6"])] = item.get("Description")
        for item in perm.get("UserIdGroupPairs", []):
            gid = item.get("GroupId")
            if gid in group_names_by_id:
                found[(proto, low, high, "group", group_names_by_id[gid])] = item.get("Description")
            else:
                found[(proto, low, high, "group-id", gid)] = item.get("Description")
        for item in perm.get("PrefixListIds", []):
            found[(proto, low, high, "prefix", item["PrefixListId"])] = item.get("Description")
    return found


def to_permission(key, description, group_ids):
    """One IpPermissions entry for one rule key."""
    proto, low, high, kind, target = key
    perm = {"IpProtocol": proto}
    if low is not None:
        perm["FromPort"], perm["ToPort"] = low, high
    extra = {"Description": description} if description else {}
    if kind == "cidr":
        perm["IpRanges"] = [dict(CidrIp=target, **extra)]
    elif kind == "ipv6":
        perm["Ipv6Ranges"] = [dict(CidrIpv6=target, **extra)]
    elif kind == "group":
        perm["UserIdGroupPairs"] = [dict(GroupId=group_ids[target], **extra)]
    elif kind == "group-id":
        perm["UserIdGroupPairs"] = [dict(GroupId=target, **extra)]
    else:
        perm["PrefixListIds"] = [dict(PrefixListId=target, **extra)]
    return perm


def describe_rule(key, direction):
    proto, low, high, kind, target = key
    if proto == "-1":
        what = "all traffic"
    elif low == high:
        what = "%s %s" % (proto, low)
    else:
        what = "%s %s-%s" % (proto, low, high)
    return "%s %s %s" % (what, "from" if direction == "ingress" else "to", target)


class Network:
    """Reads the stack's network once, then converges it, recording every change as one line."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check = module.check_mode
        self.ec2 = module.client("ec2", retry_decorator=retry_decorator())
        self.name = self.params["name"]
        self.changes = []
        self.result = {
            "vpc_id": "",
            "azs": [],
            "public_subnet_ids": [],
            "private_subnet_ids": [],
            "internet_gateway_id": "",
            "nat_gateway_ids": [],
            "route_table_ids": {},
            "security_group_ids": {},
        }

    # --- helpers -------------------------------------------------------------------------------------------------

    def tags_for(self, name, **extra):
        tags = dict(self.params["tags"] or {})
        tags.update({STACK_TAG: self.name, "appdeploy:role": "vpc", "Name": name})
        tags.update(extra)
        return tags

    def tag_spec(self, resource_type, tags):
        return [{"ResourceType": resource_type, "Tags": ansible_dict_to_boto3_tag_list(tags)}]

    def change(self, line):
        self.changes.append(line)

    def ensure_tags(self, resource_id, current_list, wanted, label):
        current = boto3_tag_list_to_ansible_dict(current_list or [])
        to_set, to_unset = compare_aws_tags(current, wanted)
        if to_set:
            self.change("tag %s: %s" % (label, ", ".join(sorted(to_set))))
            if not self.check:
                self.ec2.create_tags(aws_retry=True, Resources=[resource_id], Tags=ansible_dict_to_boto3_tag_list(to_set))
        if to_unset:
            self.change("untag %s: %s" % (label, ", ".join(sorted(to_unset))))
            if not self.check:
                self.ec2.delete_tags(aws_retry=True, Resources=[resource_id], Tags=[{"Key": k} for k in to_unset])

    def wait(self, waiter_name, **kwargs):
        delay = 5
        self.ec2.get_waiter(waiter_name).wait(
            WaiterConfig={"Delay": delay, "MaxAttempts": max(1, self.params["wait_timeout"] // delay)}, **kwargs)

    # --- inputs --------------------------------------------------------------------------------------------------

    def validate(self):
        p = self.params
        try:
            vpc_net = ipaddress.IPv4Network(p["cidr_block"], strict=True)
        except ValueError as e:
            raise NetworkError("cidr_block %r is not an IPv4 network (%s)" % (p["cidr_block"], e))
        if p["az_count"] < 2 and not p["azs"]:
            raise NetworkError("az_count is %d; allowed: 2 or more" % p["az_count"])
        count = len(p["azs"]) or p["az_count"]
        for option in ("public_subnet_cidrs", "private_subnet_cidrs"):
            if len(p[option]) != count:
                raise NetworkError("%s lists %d CIDRs; one per zone (%d) is needed" % (option, len(p[option]), count))
            for cidr in p[option]:
                try:
                    net = ipaddress.IPv4Network(cidr, strict=True)
                except ValueError as e:
                    raise NetworkError("%s: %r is not an IPv4 network (%s)" % (option, cidr, e))
                if not net.subnet_of(vpc_net):
                    raise NetworkError("%s: %s is outside cidr_block %s" % (option, cidr, p["cidr_block"]))
        names = [g["name"] for g in p["security_groups"]]
        if len(set(names)) != len(names):
            raise NetworkError("security_groups: each name must be unique (got %s)" % ", ".join(names))
        self.wanted_rules = {}
        for group in p["security_groups"]:
            self.wanted_rules[group["name"]] = {
                "rules": desired_rules(group, "rules", names),
                "rules_egress": desired_rules(group, "rules_egress", names),
            }

    def zones(self):
        p = self.params
        available = sorted(z["ZoneName"] for z in self.ec2.describe_availability_zones(
            aws_retry=True, Filters=[{"Name": "state", "Values": ["available"]}])["AvailabilityZones"])
        if p["azs"]:
            unknown = [z for z in p["azs"] if z not in available]
            if unknown:
                raise NetworkError("azs: unknown zone(s) %s; this region has %s" % (", ".join(unknown), ", ".join(available)))
            return list(p["azs"])
        if len(available) < p["az_count"]:
            raise NetworkError("az_count is %d but the region has only %d available zones (%s)"
                               % (p["az_count"], len(available), ", ".join(available)))
        return available[:p["az_count"]]

    # --- VPC -----------------------------------------------------------------------------------------------------

    def ensure_vpc(self):
        found = self.ec2.describe_vpcs(aws_retry=True, Filters=[
            {"Name": "tag:Name", "Values": [self.name]}, {"Name": "tag:" + STACK_TAG, "Values": [self.name]}])["Vpcs"]
        cidr = self.params["cidr_block"]
        if len(found) > 1:
            raise NetworkError("more than one VPC is tagged as stack %s (%s); delete the extra ones"
                               % (self.name, ", ".join(v["VpcId"] for v in found)))
        if found:
            vpc = found[0]
            if vpc["CidrBlock"] != str(ipaddress.IPv4Network(cidr)):
                raise NetworkError("cidr_block is %s but VPC %s of stack %s has %s; the CIDR of a VPC cannot change"
                                   % (cidr, vpc["VpcId"], self.name, vpc["CidrBlock"]))
            self.ensure_tags(vpc["VpcId"], vpc.get("Tags"), self.tags_for(self.name), "VPC")
            for attribute, key in (("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames")):
                value = self.ec2.describe_vpc_attribute(aws_retry=True, VpcId=vpc["VpcId"], Attribute=attribute)
                if not value[key]["Value"]:
                    self.set_dns(vpc["VpcId"], key)
            return vpc["VpcId"]
        self.change("create VPC %s" % cidr)
        if self.check:
            return ""
        vpc_id = self.ec2.create_vpc(aws_retry=True, CidrBlock=cidr,
                                     TagSpecifications=self.tag_spec("vpc", self.tags_for(self.name)))["Vpc"]["VpcId"]
        self.wait("vpc_available", VpcIds=[vpc_id])
        # DNS support is on by default; hostnames are not. One attribute per call, as the API requires.
        self.set_dns(vpc_id, "EnableDnsHostnames", record=False)
        return vpc_id

    def set_dns(self, vpc_id, key, record=True):
        if record:
            self.change("enable %s on the VPC" % key)
        if not self.check:
            self.ec2.modify_vpc_attribute(aws_retry=True, VpcId=vpc_id, **{key: {"Value": True}})

    # --- internet gateway ----------------------------------------------------------------------------------------

    def ensure_igw(self, vpc_id):
        tags = self.tags_for(self.name + "-igw")
        attached = self.ec2.describe_internet_gateways(aws_retry=True, Filters=[
            {"Name": "attachment.vpc-id", "Values": [vpc_id]}])["InternetGateways"] if vpc_id else []
        if attached:
            igw = attached[0]
            self.ensure_tags(igw["InternetGatewayId"], igw.get("Tags"), tags, "internet gateway")
            return igw["InternetGatewayId"]
        self.change("create and attach an internet gateway")
        if self.check:
            return ""
        # A gateway created by a run interrupted before it was attached: attach that one instead of a second.
        loose = [g for g in self.ec2.describe_internet_gateways(aws_retry=True, Filters=[
            {"Name": "tag:" + STACK_TAG, "Values": [self.name]}])["InternetGateways"] if not g.get("Attachments")]
        if loose:
            igw_id = loose[0]["InternetGatewayId"]
        else:
            igw_id = self.ec2.create_internet_gateway(
                aws_retry=True, TagSpecifications=self.tag_spec("internet-gateway", tags))["InternetGateway"]["InternetGatewayId"]
        self.ec2.attach_internet_gateway(aws_retry=True, InternetGatewayId=igw_id, VpcId=vpc_id)
        return igw_id

    # --- subnets -------------------------------------------------------------------------------------------------

    def ensure_subnets(self, vpc_id, zones):
        existing = self.ec2.describe_subnets(aws_retry=True, Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"] if vpc_id else []
        by_cidr = dict((s["CidrBlock"], s) for s in existing)
        ids = {}
        for tier in ("public", "private"):
            ids[tier] = []
            for zone, cidr in zip(zones, self.params[tier + "_subnet_cidrs"]):
                cidr = str(ipaddress.IPv4Network(cidr))
                tags = self.tags_for("%s-%s-%s" % (self.name, tier, zone), **{"appdeploy:tier": tier})
                subnet = by_cidr.get(cidr)
                if subnet is None:
                    self.change("create %s subnet %s in %s" % (tier, cidr, zone))
                    if self.check:
                        ids[tier].append("")
                        continue
                    subnet = self.ec2.create_subnet(aws_retry=True, VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone,
                                                    TagSpecifications=self.tag_spec("subnet", tags))["Subnet"]
                    ids[tier].append(subnet["SubnetId"])
                    continue
                if subnet["AvailabilityZone"] != zone:
                    raise NetworkError("%s subnet %s exists in %s (%s), not in %s; a subnet cannot move zones: delete it "
                                       "or keep its zone in azs" % (tier, cidr, subnet["AvailabilityZone"], subnet["SubnetId"], zone))
                self.ensure_tags(subnet["SubnetId"], subnet.get("Tags"), tags, "subnet %s" % cidr)
                # No public IPs on launch, in either tier (FSBP EC2.15): the load balancer is what faces the internet.
                if subnet.get("MapPublicIpOnLaunch"):
                    self.change("stop mapping public IPs on launch in subnet %s" % cidr)
                    if not self.check:
                        self.ec2.modify_subnet_attribute(aws_retry=True, SubnetId=subnet["SubnetId"],
                                                         MapPublicIpOnLaunch={"Value": False})
                ids[tier].append(subnet["SubnetId"])
        new = [i for i in ids["public"] + ids["private"] if i and i not in set(s["SubnetId"] for s in existing)]
        if new:
            self.wait("subnet_available", SubnetIds=new)
        return ids

    # --- NAT gateways --------------------------------------------------------------------------------------------

    def ensure_nat(self, vpc_id, public_ids):
        mode = self.params["nat_gateway_mode"]
        wanted_subnets = [] if mode == "none" else (public_ids[:1] if mode == "single" else public_ids)
        existing = self.ec2.describe_nat_gateways(aws_retry=True, Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "state", "Values": ["pending", "available"]}])["NatGateways"] if vpc_id else []
        by_subnet = {}
        for nat in existing:
            by_subnet.setdefault(nat["SubnetId"], nat)
        ids, pending = [], []
        for subnet_id in wanted_subnets:
            nat = by_subnet.get(subnet_id) if subnet_id else None
            if nat is not None:
                if nat["State"] == "pending":
                    pending.append(nat["NatGatewayId"])
                ids.append(nat["NatGatewayId"])
                continue
            self.change("create a NAT gateway and an Elastic IP in subnet %s" % (subnet_id or "(new)"))
            if self.check:
                ids.append("")
                continue
            nat_id = self.create_nat(subnet_id)
            pending.append(nat_id)
            ids.append(nat_id)
        if pending:
            self.wait("nat_gateway_available", NatGatewayIds=pending)
        # Gateways in the stack's public subnets that the mode does not use any more; deleted after the routes.
        self.unused_nats = [n for n in existing if n["SubnetId"] in public_ids and n["NatGatewayId"] not in ids]
        return ids

    def create_nat(self, subnet_id):
        name = "%s-nat-%s" % (self.name, subnet_id)
        # The address is tagged with its subnet first: a run interrupted before CreateNatGateway finds it again.
        spare = [a for a in self.ec2.describe_addresses(aws_retry=True, Filters=[
            {"Name": "tag:" + STACK_TAG, "Values": [self.name]}, {"Name": "tag:appdeploy:nat-subnet", "Values": [subnet_id]},
        ])["Addresses"] if not a.get("AssociationId")]
        if spare:
            allocation_id = spare[0]["AllocationId"]
        else:
            allocation_id = self.ec2.allocate_address(aws_retry=True, Domain="vpc", TagSpecifications=self.tag_spec(
                "elastic-ip", self.tags_for(name, **{"appdeploy:nat-subnet": subnet_id})))["AllocationId"]
        return self.ec2.create_nat_gateway(
            aws_retry=True, SubnetId=subnet_id, AllocationId=allocation_id,
            TagSpecifications=self.tag_spec("natgateway", self.tags_for(name)))["NatGateway"]["NatGatewayId"]

    def delete_unused_nats(self):
        for nat in self.unused_nats:
            self.change("delete unused NAT gateway %s and release its Elastic IP" % nat["NatGatewayId"])
            if self.check:
                continue
            self.ec2.delete_nat_gateway(aws_retry=True, NatGatewayId=nat["NatGatewayId"])
        if self.unused_nats and not self.check:
            self.wait("nat_gateway_deleted", NatGatewayIds=[n["NatGatewayId"] for n in self.unused_nats])
            for nat in self.unused_nats:
                for address in nat.get("NatGatewayAddresses", []):
                    if address.get("AllocationId"):
                        self.ec2.release_address(aws_retry=True, AllocationId=address["AllocationId"])

    # --- route tables --------------------------------------------------------------------------------------------

    def ensure_route_tables(self, vpc_id, zones, subnets, igw_id, nat_ids):
        mode = self.params["nat_gateway_mode"]
        tables = [(self.name + "-public", subnets["public"], {ANY: ("GatewayId", igw_id)})]
        for index, zone in enumerate(zones):
            routes = {}
            if mode != "none":
                routes[ANY] = ("NatGatewayId", nat_ids[0 if mode == "single" else index])
            tables.append(("%s-private-%s" % (self.name, zone), [subnets["private"][index]], routes))
        existing = self.ec2.describe_route_tables(aws_retry=True, Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"] if vpc_id else []
        by_name = {}
        for table in existing:
            tags = boto3_tag_list_to_ansible_dict(table.get("Tags", []))
            if tags.get(STACK_TAG) == self.name and tags.get("Name"):
                if tags["Name"] in by_name:
                    raise NetworkError("two route tables of stack %s are called %s (%s, %s); delete one"
                                       % (self.name, tags["Name"], by_name[tags["Name"]]["RouteTableId"], table["RouteTableId"]))
                by_name[tags["Name"]] = table
        # Which table each subnet is explicitly associated with, across the VPC (a subnet has at most one).
        association_of = {}
        self.desired_owner = dict((s, name) for name, subnet_ids, routes in tables for s in subnet_ids if s)
        for table in existing:
            for assoc in table.get("Associations", []):
                if assoc.get("SubnetId") and not assoc.get("Main"):
                    association_of[assoc["SubnetId"]] = (table["RouteTableId"], assoc["RouteTableAssociationId"])
        for name, subnet_ids, routes in tables:
            table = by_name.get(name)
            if table is None:
                self.change("create route table %s" % name)
                if self.check:
                    self.result["route_table_ids"][name] = ""
                    continue
                table = self.ec2.create_route_table(aws_retry=True, VpcId=vpc_id, TagSpecifications=self.tag_spec(
                    "route-table", self.tags_for(name)))["RouteTable"]
            else:
                self.ensure_tags(table["RouteTableId"], table.get("Tags"), self.tags_for(name), "route table %s" % name)
            table_id = table["RouteTableId"]
            self.result["route_table_ids"][name] = table_id
            self.ensure_routes(name, table, routes)
            self.ensure_associations(name, table, [s for s in subnet_ids if s], association_of)

    def ensure_routes(self, name, table, routes):
        current = {}
        for route in table.get("Routes", []):
            dest = route.get("DestinationCidrBlock")
            # The VPC's own local route, endpoint and prefix-list routes are not the stack's to manage.
            if not dest or route.get("GatewayId") == "local" or str(route.get("GatewayId", "")).startswith("vpce-"):
                continue
            keys = ("GatewayId", "NatGatewayId", "InstanceId", "NetworkInterfaceId", "TransitGatewayId", "VpcPeeringConnectionId")
            target = next(((k, route[k]) for k in keys if route.get(k)), (None, None))
            current[dest] = (target, route.get("State"))
        table_id = table["RouteTableId"]
        for dest, (key, target) in routes.items():
            if not target:
                continue  # check mode: the gateway does not exist yet, its creation is already listed
            if dest not in current:
                self.change("route %s in %s to %s" % (dest, name, target))
                if not self.check:
                    self.ec2.create_route(aws_retry=True, RouteTableId=table_id, DestinationCidrBlock=dest, **{key: target})
            elif current[dest][0] != (key, target) or current[dest][1] == "blackhole":
                self.change("reroute %s in %s from %s to %s" % (dest, name, current[dest][0][1], target))
                if not self.check:
                    self.ec2.replace_route(aws_retry=True, RouteTableId=table_id, DestinationCidrBlock=dest, **{key: target})
        for dest in current:
            if dest not in routes:
                self.change("remove route %s from %s" % (dest, name))
                if not self.check:
                    self.ec2.delete_route(aws_retry=True, RouteTableId=table_id, DestinationCidrBlock=dest)

    def ensure_associations(self, name, table, subnet_ids, association_of):
        table_id = table["RouteTableId"]
        for subnet_id in subnet_ids:
            owner = association_of.get(subnet_id)
            if owner and owner[0] == table_id:
                continue
            if owner:
                self.change("move subnet %s to route table %s" % (subnet_id, name))
                if not self.check:
                    self.ec2.replace_route_table_association(aws_retry=True, AssociationId=owner[1], RouteTableId=table_id)
            else:
                self.change("associate subnet %s with route table %s" % (subnet_id, name))
                if not self.check:
                    self.ec2.associate_route_table(aws_retry=True, RouteTableId=table_id, SubnetId=subnet_id)
        for assoc in table.get("Associations", []):
            # A subnet another of the stack's tables wants is moved by that table's pass (a replaced association).
            if (assoc.get("SubnetId") and not assoc.get("Main") and assoc["SubnetId"] not in subnet_ids
                    and assoc["SubnetId"] not in self.desired_owner):
                self.change("disassociate subnet %s from route table %s" % (assoc["SubnetId"], name))
                if not self.check:
                    self.ec2.disassociate_route_table(aws_retry=True, AssociationId=assoc["RouteTableAssociationId"])

    # --- security groups -----------------------------------------------------------------------------------------

    def ensure_security_groups(self, vpc_id):
        groups = self.params["security_groups"]
        full = dict((g["name"], "%s-%s" % (self.name, g["name"])) for g in groups)
        names = list(full.values()) + (["default"] if self.params["restrict_default_security_group"] else [])
        existing = self.ec2.describe_security_groups(aws_retry=True, Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": names}])["SecurityGroups"] if vpc_id and names else []
        by_name = dict((g["GroupName"], g) for g in existing)
        if self.params["restrict_default_security_group"] and "default" in by_name:
            default = by_name["default"]
            for direction, perms in (("ingress", default.get("IpPermissions")), ("egress", default.get("IpPermissionsEgress"))):
                if perms:
                    self.change("remove every %s rule of the default security group" % direction)
                    if not self.check:
                        self.revoke(direction, default["GroupId"], perms)
        ids, created = {}, []
        for group in groups:
            sg = by_name.get(full[group["name"]])
            tags = self.tags_for(full[group["name"]])
            if sg is None:
                self.change("create security group %s" % full[group["name"]])
                if self.check:
                    ids[group["name"]] = ""
                    continue
                ids[group["name"]] = self.ec2.create_security_group(
                    aws_retry=True, GroupName=full[group["name"]], Description=group["description"], VpcId=vpc_id,
                    TagSpecifications=self.tag_spec("security-group", tags))["GroupId"]
                created.append(ids[group["name"]])
                continue
            ids[group["name"]] = sg["GroupId"]
            self.ensure_tags(sg["GroupId"], sg.get("Tags"), tags, "security group %s" % full[group["name"]])
            if sg.get("Description") != group["description"]:
                self.module.warn("security group %s keeps its description %r: AWS cannot change the description of an "
                                 "existing group (delete the group to change it)" % (full[group["name"]], sg.get("Description")))
        if created:
            # A new group comes with AWS's allow-all egress rule; read the new groups back to see their rules.
            for sg in self.ec2.describe_security_groups(aws_retry=True, GroupIds=created)["SecurityGroups"]:
                by_name[sg["GroupName"]] = sg
        self.result["security_group_ids"] = ids
        names_by_id = dict((v, k) for k, v in ids.items() if v)
        for group in groups:
            sg = by_name.get(full[group["name"]])
            for option, direction, key in (("rules", "ingress", "IpPermissions"), ("rules_egress", "egress", "IpPermissionsEgress")):
                wanted = self.wanted_rules[group["name"]][option]
                if sg is None:
                    for rule in sorted(wanted, key=str):
                        self.change("authorize %s on %s: %s" % (direction, full[group["name"]], describe_rule(rule, direction)))
                    continue
                self.ensure_rules(full[group["name"]], sg["GroupId"], direction, wanted,
                                  current_rules(sg.get(key, []), names_by_id), ids)

    def ensure_rules(self, label, group_id, direction, wanted, current, ids):
        add = [k for k in wanted if k not in current]
        remove = [k for k in current if k not in wanted]
        redescribe = [k for k in wanted if k in current and (current[k] or None) != wanted[k]]
        for key in sorted(add, key=str):
            self.change("authorize %s on %s: %s" % (direction, label, describe_rule(key, direction)))
        for key in sorted(remove, key=str):
            self.change("revoke %s on %s: %s" % (direction, label, describe_rule(key, direction)))
        for key in sorted(redescribe, key=str):
            self.change("describe %s rule on %s: %s" % (direction, label, describe_rule(key, direction)))
        if self.check:
            return
        # New rules first, then the old ones go: traffic the new rules allow is never cut in between.
        if add:
            perms = [to_permission(k, wanted[k], ids) for k in sorted(add, key=str)]
            if direction == "ingress":
                self.ec2.authorize_security_group_ingress(aws_retry=True, GroupId=group_id, IpPermissions=perms)
            else:
                self.ec2.authorize_security_group_egress(aws_retry=True, GroupId=group_id, IpPermissions=perms)
        if redescribe:
            perms = [to_permission(k, wanted[k], ids) for k in sorted(redescribe, key=str)]
            if direction == "ingress":
                self.ec2.update_security_group_rule_descriptions_ingress(aws_retry=True, GroupId=group_id, IpPermissions=perms)
            else:
                self.ec2.update_security_group_rule_descriptions_egress(aws_retry=True, GroupId=group_id, IpPermissions=perms)
        if remove:
            self.revoke(direction, group_id, [to_permission(k, None, ids) for k in sorted(remove, key=str)])

    def revoke(self, direction, group_id, perms):
        if direction == "ingress":
            self.ec2.revoke_security_group_ingress(aws_retry=True, GroupId=group_id, IpPermissions=perms)
        else:
            self.ec2.revoke_security_group_egress(aws_retry=True, GroupId=group_id, IpPermissions=perms)

    # --- the whole run -------------------------------------------------------------------------------------------

    def converge(self):
        self.validate()
        zones = self.zones()
        self.result["azs"] = zones
        vpc_id = self.ensure_vpc()
        self.result["vpc_id"] = vpc_id
        self.result["internet_gateway_id"] = self.ensure_igw(vpc_id)
        subnets = self.ensure_subnets(vpc_id, zones)
        self.result["public_subnet_ids"] = subnets["public"]
        self.result["private_subnet_ids"] = subnets["private"]
        nat_ids = self.ensure_nat(vpc_id, subnets["public"])
        self.result["nat_gateway_ids"] = nat_ids
        self.ensure_route_tables(vpc_id, zones, subnets, self.result["internet_gateway_id"], nat_ids)
        self.delete_unused_nats()
        self.ensure_security_groups(vpc_id)
        return self.result


def main():
    rule_spec = dict(type="list", elements="dict", default=[])
    argument_spec = dict(
        name=dict(type="str", required=True),
        cidr_block=dict(type="str", required=True),
        azs=dict(type="list", elements="str", default=[]),
        az_count=dict(type="int", default=2),
        public_subnet_cidrs=dict(type="list", elements="str", required=True),
        private_subnet_cidrs=dict(type="list", elements="str", required=True),
        nat_gateway_mode=dict(type="str", choices=["per_az", "single", "none"], default="per_az"),
        restrict_default_security_group=dict(type="bool", default=True),
        security_groups=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str", required=True),
            description=dict(type="str", required=True),
            rules=rule_spec,
            rules_egress=rule_spec,
        )),
        tags=dict(type="dict", default={}),
        wait_timeout=dict(type="int", default=600),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    network = Network(module)
    try:
        result = network.converge()
    except NetworkError as e:
        module.fail_json(msg=str(e), changes=network.changes)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, botocore.exceptions.WaiterError) as e:
        module.fail_json_aws(e, msg="EC2 call failed after: %s" % ("; ".join(network.changes) or "nothing changed"))
    changed = bool(network.changes)
    diff = {"before": "", "after": "".join(line + "\n" for line in network.changes)}
    module.exit_json(changed=changed, changes=network.changes, diff=diff, **result)


if __name__ == "__main__":
    main()
