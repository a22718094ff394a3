"""appdeploy.ecs.vpc_network driven through main() against moto in-process (mock_aws): create, no change (and how
many requests a no-op costs), check mode, drift repair, NAT mode changes, a NAT run interrupted after its Elastic IP,
and bad input (one-line errors, nothing created)."""
import boto3
import pytest
from moto import mock_aws

from ansible_collections.appdeploy.ecs.plugins.modules import vpc_network as m
from harness import REGION, run_module

pytestmark = pytest.mark.usefixtures("module_exits")


@pytest.fixture
def ec2(no_aws_env):
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")


def run(check=False, **args):
    return run_module(m.main, args, check)


def ok(check=False, **args):
    res = run(check=check, **args)
    assert not res.get("failed"), res.get("msg")
    return res


def failure(**args):
    res = run(**args)
    assert res.get("failed"), res
    return res["msg"]


GROUPS = [
    dict(name="alb", description="load balancer",
         rules=[dict(proto="tcp", ports=[80, 443], cidr_ip=["0.0.0.0/0"], rule_desc="web")],
         rules_egress=[dict(proto="tcp", ports=[8080, "32768-65535"], group="app", rule_desc="to app")]),
    dict(name="app", description="app",
         rules=[dict(proto="tcp", ports=[8080, "32768-65535"], group="alb", rule_desc="from alb")],
         rules_egress=[dict(proto="tcp", ports=[443], cidr_ip=["0.0.0.0/0"], rule_desc="https"),
                       dict(proto="tcp", ports=[5432], group="db", rule_desc="to db")]),
    dict(name="db", description="db",
         rules=[dict(proto="tcp", ports=[5432], group="app", rule_desc="from app")], rules_egress=[]),
]
NET = dict(name="web", cidr_block="10.42.0.0/16", az_count=2,
           public_subnet_cidrs=["10.42.0.0/20", "10.42.16.0/20"],
           private_subnet_cidrs=["10.42.128.0/20", "10.42.144.0/20"],
           nat_gateway_mode="per_az", security_groups=GROUPS, tags={"team": "shop"})


def net(change):
    """NET with some options changed."""
    args = dict(NET)
    args.update(change)
    return args


def vpcs(ec2):
    return ec2.describe_vpcs(Filters=[{"Name": "tag:appdeploy:stack", "Values": ["web"]}])["Vpcs"]


def live_nats(ec2, vpc_id):
    return ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                              {"Name": "state", "Values": ["pending", "available"]}])["NatGateways"]


def group(ec2, vpc_id, name):
    return ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                 {"Name": "group-name", "Values": [name]}])["SecurityGroups"][0]


def rules(sg, key):
    """(proto, from, to, cidr or group id, description) of every rule in one direction."""
    out = set()
    for p in sg[key]:
        for r in p.get("IpRanges", []):
            out.add((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r["CidrIp"], r.get("Description")))
        for r in p.get("UserIdGroupPairs", []):
            out.add((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r["GroupId"], r.get("Description")))
    return out


def default_route(table):
    return [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]


def test_create_then_no_change_in_nine_reads(ec2, calls):
    first = ok(**NET)
    assert first["changed"]
    assert "create VPC 10.42.0.0/16" in first["changes"]
    assert [v["VpcId"] for v in vpcs(ec2)] == [first["vpc_id"]]
    vpc_id = first["vpc_id"]
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]

    subnets = dict((s["SubnetId"], s) for s in ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"])
    assert [subnets[i]["CidrBlock"] for i in first["public_subnet_ids"]] == NET["public_subnet_cidrs"]
    assert [subnets[i]["AvailabilityZone"] for i in first["private_subnet_ids"]] == first["azs"]
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets.values())
    tier = dict((i, {t["Key"]: t["Value"] for t in subnets[i]["Tags"]}["appdeploy:tier"]) for i in subnets)
    assert sorted(tier.values()) == ["private", "private", "public", "public"]

    igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])["InternetGateways"]
    assert [g["InternetGatewayId"] for g in igws] == [first["internet_gateway_id"]]
    nats = live_nats(ec2, vpc_id)
    assert sorted(n["SubnetId"] for n in nats) == sorted(first["public_subnet_ids"])
    assert len(first["nat_gateway_ids"]) == 2

    tables = dict((t["RouteTableId"], t) for t in ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"])
    public = tables[first["route_table_ids"]["web-public"]]
    assert [r["GatewayId"] for r in default_route(public)] == [first["internet_gateway_id"]]
    assert sorted(a["SubnetId"] for a in public["Associations"]) == sorted(first["public_subnet_ids"])
    for index, zone in enumerate(first["azs"]):
        private = tables[first["route_table_ids"]["web-private-" + zone]]
        assert [r["NatGatewayId"] for r in default_route(private)] == [first["nat_gateway_ids"][index]]
        assert [a["SubnetId"] for a in private["Associations"]] == [first["private_subnet_ids"][index]]

    ids = first["security_group_ids"]
    alb, app, db = (group(ec2, vpc_id, "web-" + n) for n in ("alb", "app", "db"))
    assert rules(alb, "IpPermissions") == {("tcp", 80, 80, "0.0.0.0/0", "web"), ("tcp", 443, 443, "0.0.0.0/0", "web")}
    assert rules(alb, "IpPermissionsEgress") == {("tcp", 8080, 8080, ids["app"], "to app"),
                                                 ("tcp", 32768, 65535, ids["app"], "to app")}
    assert rules(app, "IpPermissionsEgress") == {("tcp", 443, 443, "0.0.0.0/0", "https"), ("tcp", 5432, 5432, ids["db"], "to db")}
    assert rules(db, "IpPermissions") == {("tcp", 5432, 5432, ids["app"], "from app")}
    assert rules(db, "IpPermissionsEgress") == set()  # AWS's allow-all egress rule is gone
    default = group(ec2, vpc_id, "default")
    assert default["IpPermissions"] == [] and default["IpPermissionsEgress"] == []
    assert {t["Key"]: t["Value"] for t in db["Tags"]} == {"Name": "web-db", "appdeploy:stack": "web",
                                                          "appdeploy:role": "vpc", "team": "shop"}

    del calls[:]
    second = ok(**NET)
    assert not second["changed"], second["changes"]
    assert second["changes"] == []
    assert {k: second[k] for k in first if k not in ("changed", "changes", "diff")} == \
        {k: first[k] for k in first if k not in ("changed", "changes", "diff")}
    # One read per resource type (and two for the VPC's DNS attributes), nothing written.
    assert all(op.startswith("Describe") for op in calls), calls
    assert len(calls) == 9, calls


def test_check_mode_on_an_empty_account_creates_nothing(ec2):
    res = ok(check=True, **NET)
    assert res["changed"]
    assert res["vpc_id"] == ""
    assert "create VPC 10.42.0.0/16" in res["changes"]
    assert "create security group web-db" in res["changes"]
    assert res["diff"]["after"].splitlines() == res["changes"]
    assert vpcs(ec2) == []
    assert ec2.describe_addresses()["Addresses"] == []


def test_drift_is_predicted_by_check_mode_then_repaired(ec2):
    first = ok(**NET)
    vpc_id, ids = first["vpc_id"], first["security_group_ids"]
    zone_b_table = first["route_table_ids"]["web-private-" + first["azs"][1]]
    # Someone opens the database to the world, points a private subnet at the internet gateway, turns on public IPs
    # in a subnet and drops a tag.
    ec2.authorize_security_group_ingress(GroupId=ids["db"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.replace_route(RouteTableId=zone_b_table, DestinationCidrBlock="0.0.0.0/0", GatewayId=first["internet_gateway_id"])
    ec2.modify_subnet_attribute(SubnetId=first["private_subnet_ids"][0], MapPublicIpOnLaunch={"Value": True})
    ec2.delete_tags(Resources=[vpc_id], Tags=[{"Key": "team"}])

    check = ok(check=True, **NET)
    expected = [
        "tag VPC: team",
        "stop mapping public IPs on launch in subnet 10.42.128.0/20",
        "reroute 0.0.0.0/0 in web-private-%s from %s to %s" % (
            first["azs"][1], first["internet_gateway_id"], first["nat_gateway_ids"][1]),
        "revoke ingress on web-db: tcp 5432 from 0.0.0.0/0",
    ]
    assert check["changes"] == expected
    assert rules(group(ec2, vpc_id, "web-db"), "IpPermissions") >= {("tcp", 5432, 5432, "0.0.0.0/0", None)}

    fixed = ok(**NET)
    assert fixed["changes"] == expected
    assert rules(group(ec2, vpc_id, "web-db"), "IpPermissions") == {("tcp", 5432, 5432, ids["app"], "from app")}
    table = ec2.describe_route_tables(RouteTableIds=[zone_b_table])["RouteTables"][0]
    assert [r.get("NatGatewayId") for r in default_route(table)] == [first["nat_gateway_ids"][1]]
    assert ok(**NET)["changes"] == []


def test_nat_mode_single_deletes_the_unused_gateway_after_rerouting(ec2):
    first = ok(**NET)
    single = ok(**net(dict(nat_gateway_mode="single")))
    assert single["nat_gateway_ids"] == first["nat_gateway_ids"][:1]
    assert "delete unused NAT gateway %s and release its Elastic IP" % first["nat_gateway_ids"][1] in single["changes"]
    assert [n["NatGatewayId"] for n in live_nats(ec2, first["vpc_id"])] == first["nat_gateway_ids"][:1]
    table = ec2.describe_route_tables(RouteTableIds=[first["route_table_ids"]["web-private-" + first["azs"][1]]])["RouteTables"][0]
    assert [r["NatGatewayId"] for r in default_route(table)] == first["nat_gateway_ids"][:1]
    assert len(ec2.describe_addresses()["Addresses"]) == 1
    assert not ok(**net(dict(nat_gateway_mode="single")))["changed"]

    none = ok(**net(dict(nat_gateway_mode="none")))
    assert live_nats(ec2, first["vpc_id"]) == []
    assert ec2.describe_addresses()["Addresses"] == []
    assert "remove route 0.0.0.0/0 from web-private-%s" % first["azs"][0] in none["changes"]


def test_an_elastic_ip_left_by_an_interrupted_run_is_reused(ec2):
    first = ok(**net(dict(nat_gateway_mode="none")))
    subnet = first["public_subnet_ids"][0]
    # What a run interrupted between AllocateAddress and CreateNatGateway leaves behind.
    left = ec2.allocate_address(Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": [
        {"Key": "appdeploy:stack", "Value": "web"}, {"Key": "appdeploy:nat-subnet", "Value": subnet}]}])
    res = ok(**net(dict(nat_gateway_mode="single")))
    nat = live_nats(ec2, first["vpc_id"])[0]
    assert nat["NatGatewayId"] == res["nat_gateway_ids"][0]
    assert nat["NatGatewayAddresses"][0]["AllocationId"] == left["AllocationId"]
    assert len(ec2.describe_addresses()["Addresses"]) == 1


def test_an_existing_vpc_with_another_cidr_is_refused_untouched(ec2):
    ok(**NET)
    msg = failure(**net(dict(cidr_block="10.43.0.0/16", public_subnet_cidrs=["10.43.0.0/20", "10.43.16.0/20"],
                             private_subnet_cidrs=["10.43.128.0/20", "10.43.144.0/20"])))
    assert msg.startswith("cidr_block is 10.43.0.0/16 but VPC vpc-")
    assert "the CIDR of a VPC cannot change" in msg
    assert len(vpcs(ec2)) == 1


@pytest.mark.parametrize("change, message", [
    (dict(public_subnet_cidrs=["10.42.0.0/20", "10.99.0.0/20"]), "public_subnet_cidrs: 10.99.0.0/20 is outside cidr_block 10.42.0.0/16"),
    (dict(private_subnet_cidrs=["10.42.128.0/20"]), "private_subnet_cidrs lists 1 CIDRs; one per zone (2) is needed"),
    (dict(cidr_block="10.42.0.1/16"), "cidr_block '10.42.0.1/16' is not an IPv4 network"),
    (dict(azs=["eu-central-1a", "mars-1a"]), "azs: unknown zone(s) mars-1a; this region has eu-central-1a"),
    (dict(az_count=9, public_subnet_cidrs=["10.42.%d.0/24" % i for i in range(9)],
          private_subnet_cidrs=["10.42.%d.0/24" % (100 + i) for i in range(9)]), "az_count is 9 but the region has only 3"),
    (dict(security_groups=[dict(name="db", description="db", rules=[dict(proto="tcp", ports=[5432], group="ap")])]),
     "security_groups[db].rules[0]: group 'ap' is not one of the security_groups (db)"),
    (dict(security_groups=[dict(name="db", description="db", rules=[dict(proto="tcp", ports=["5432-80"], cidr_ip="10.0.0.0/8")])]),
     "security_groups[db].rules[0]: port range '5432-80' must be within 0-65535, low to high"),
    (dict(security_groups=[dict(name="db", description="db", rules=[dict(proto="gre", cidr_ip=["10.0.0.0/8"])])]),
     "security_groups[db].rules[0]: proto 'gre' is not allowed; allowed: tcp, udp, icmp, -1"),
    (dict(security_groups=[dict(name="db", description="db", rules_egress=[dict(proto="tcp", ports=[1], cidr_ip=["10.0.0.0/33"])])]),
     "security_groups[db].rules_egress[0]: cidr_ip '10.0.0.0/33' is not an IPv4 CIDR"),
    (dict(security_groups=[dict(name="db", description="db", rules=[dict(proto="tcp", ports=[1])])]),
     "security_groups[db].rules[0]: give exactly one of cidr_ip and group"),
])
def test_bad_input_fails_in_one_line_before_any_change(ec2, change, message):
    msg = failure(**net(change))
    assert msg.startswith(message), msg
    assert "\n" not in msg
    assert vpcs(ec2) == []
