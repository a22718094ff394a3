"""appdeploy.ecs.alb driven through main() against moto in-process (mock_aws): create, no change in six reads,
check mode, drift repair, settings that cannot change, and bad input."""
import boto3
import pytest
from moto import mock_aws

from ansible_collections.appdeploy.ecs.plugins.modules import alb as m
from harness import REGION, run_module

pytestmark = pytest.mark.usefixtures("module_exits")


@pytest.fixture
def aws(no_aws_env):
    with mock_aws():
        kw = dict(region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
        ec2 = boto3.client("ec2", **kw)
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.%d.0/24" % i, AvailabilityZone=REGION + z)["Subnet"]["SubnetId"]
                   for i, z in enumerate("ab")]
        sg = ec2.create_security_group(GroupName="alb", Description="alb", VpcId=vpc)["GroupId"]
        cert = boto3.client("acm", **kw).request_certificate(DomainName="web.example.test")["CertificateArn"]
        args = dict(name="web", subnets=subnets, security_groups=[sg], certificate_arn=cert, tags={"appdeploy:stack": "web"},
                    drop_invalid_header_fields=True,
                    target_group=dict(name="web-app", vpc_id=vpc, port=8080, health_check_path="/health", stickiness=True,
                                      stickiness_duration=3600, deregistration_delay=30))
        yield dict(elb=boto3.client("elbv2", **kw), args=args, vpc=vpc)


def run(args, check=False):
    return run_module(m.main, args, check)


def changed(args, **change):
    out = dict(args)
    out.update(change)
    return out


def listeners(elb, arn):
    return dict((li["Port"], li) for li in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"])


def test_create_then_no_change_in_six_reads(aws, calls):
    elb, args = aws["elb"], aws["args"]
    first = run(args)
    assert not first.get("failed"), first
    assert first["changes"][:1] == ["create target group web-app (HTTP:8080, instance targets)"]
    assert "create load balancer web (internet-facing)" in first["changes"]
    lb = elb.describe_load_balancers(Names=["web"])["LoadBalancers"][0]
    assert first["load_balancer_arn"] == lb["LoadBalancerArn"] and first["dns_name"] == lb["DNSName"]
    tg = elb.describe_target_groups(Names=["web-app"])["TargetGroups"][0]
    assert tg["HealthCheckPath"] == "/health" and tg["Port"] == 8080
    attrs = dict((a["Key"], a["Value"]) for a in elb.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"])
    assert attrs["stickiness.enabled"] == "true" and attrs["stickiness.type"] == "lb_cookie"
    assert attrs["stickiness.lb_cookie.duration_seconds"] == "3600" and attrs["deregistration_delay.timeout_seconds"] == "30"
    found = listeners(elb, lb["LoadBalancerArn"])
    assert sorted(found) == [80, 443]
    assert found[80]["DefaultActions"][0]["RedirectConfig"]["StatusCode"] == "HTTP_301"
    assert found[443]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert m.action_key(found[443]["DefaultActions"][0]) == ("forward", tg["TargetGroupArn"])
    assert sorted(li["port"] for li in first["listeners"]) == [80, 443]

    del calls[:]
    second = run(args)
    assert not second["changed"] and second["changes"] == [], second["changes"]
    assert all(op.startswith("Describe") for op in calls), calls
    assert len(calls) == 6, calls
    assert second["listeners"] == first["listeners"]


def test_check_mode_creates_nothing(aws):
    res = run(aws["args"], check=True)
    assert res["changed"] and res["load_balancer_arn"] == "" and res["target_group_arn"] == ""
    assert aws["elb"].describe_load_balancers()["LoadBalancers"] == []
    assert aws["elb"].describe_target_groups()["TargetGroups"] == []
    assert res["diff"]["after"].splitlines() == res["changes"]


def test_drift_is_predicted_then_repaired(aws):
    elb, args = aws["elb"], aws["args"]
    first = run(args)
    lb_arn, tg_arn = first["load_balancer_arn"], first["target_group_arn"]
    elb.modify_target_group(TargetGroupArn=tg_arn, HealthCheckPath="/")
    elb.modify_target_group_attributes(TargetGroupArn=tg_arn, Attributes=[{"Key": "stickiness.enabled", "Value": "false"}])
    found = listeners(elb, lb_arn)
    elb.modify_listener(ListenerArn=found[80]["ListenerArn"], DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
    elb.create_listener(LoadBalancerArn=lb_arn, Port=8080, Protocol="HTTP",
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
    elb.add_tags(ResourceArns=[lb_arn], Tags=[{"Key": "owner", "Value": "someone"}])
    expected = [
        "modify the health check of target group web-app: HealthCheckPath",
        "set stickiness.enabled=true on target group web-app",
        "untag load balancer web: owner",
        "modify listener HTTP:80: default action",
        "delete listener HTTP:8080",
    ]
    assert run(args, check=True)["changes"] == expected
    assert sorted(listeners(elb, lb_arn)) == [80, 443, 8080]
    assert run(args)["changes"] == expected
    assert sorted(listeners(elb, lb_arn)) == [80, 443]
    assert listeners(elb, lb_arn)[80]["DefaultActions"][0]["Type"] == "redirect"
    assert run(args)["changes"] == []


def test_settings_that_cannot_change_are_refused(aws):
    args = aws["args"]
    run(args)
    res = run(changed(args, target_group=dict(args["target_group"], port=9090)))
    assert res.get("failed")
    assert res["msg"].startswith("target_group.port is 9090 but target group web-app has 8080, which cannot change")
    res = run(changed(args, scheme="internal"))
    assert res["msg"].startswith("scheme is internal but load balancer web is internet-facing, which cannot change")
    assert aws["elb"].describe_target_groups()["TargetGroups"][0]["Port"] == 8080


@pytest.mark.parametrize("change, message", [
    (dict(name="-web"), "name '-web' is not allowed"),
    (dict(subnets=["subnet-1"]), "subnets lists 1 subnet(s); an Application Load Balancer needs at least 2"),
    (dict(certificate_arn="web.example.test"), "certificate_arn 'web.example.test' is not an ARN"),
    (dict(security_groups=[]), "security_groups is empty"),
])
def test_bad_input_fails_before_any_change(aws, change, message):
    res = run(changed(aws["args"], **change))
    assert res.get("failed") and res["msg"].startswith(message), res
    assert aws["elb"].describe_target_groups()["TargetGroups"] == []
