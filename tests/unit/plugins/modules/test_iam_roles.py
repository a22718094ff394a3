"""appdeploy.ecs.iam_roles driven through main() against moto in-process (mock_aws): create, no change (and what a
no-op costs), check mode, drift repair, instance profiles, and bad input."""
import boto3
import pytest
from moto import mock_aws

from ansible_collections.appdeploy.ecs.plugins.modules import iam_roles as m
from harness import REGION, run_module

pytestmark = pytest.mark.usefixtures("module_exits")

TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
EC2_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
LOGS = {"Version": "2012-10-17", "Statement": [
    {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
     "Resource": "arn:aws:logs:eu-central-1:123456789012:log-group:web:*"}]}
SSM = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
ROLES = [
    dict(name="web-exec", description="agent", assume_role_policy=TRUST, inline_policies={"web-exec": LOGS},
         tags={"appdeploy:stack": "web"}),
    dict(name="web-instance", description="instances", assume_role_policy=EC2_TRUST, managed_policy_arns=[SSM],
         tags={"appdeploy:stack": "web"}, instance_profile=True),
]


@pytest.fixture
def iam(no_aws_env, monkeypatch):
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    with mock_aws():
        yield boto3.client("iam", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")


def run(roles, check=False):
    return run_module(m.main, dict(roles=roles), check)


def test_create_then_no_change_in_reads_only(iam, calls):
    first = run(ROLES)
    assert not first.get("failed"), first
    assert first["changes"] == [
        "create role web-exec", "put inline policy web-exec on role web-exec",
        "create role web-instance", "attach %s to role web-instance" % SSM,
        "create instance profile web-instance with role web-instance",
    ]
    role = iam.get_role(RoleName="web-exec")["Role"]
    assert first["roles"]["web-exec"]["arn"] == role["Arn"]
    assert role["AssumeRolePolicyDocument"] == TRUST
    assert iam.get_role_policy(RoleName="web-exec", PolicyName="web-exec")["PolicyDocument"] == LOGS
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName="web-instance")["AttachedPolicies"]] == [SSM]
    profile = iam.get_instance_profile(InstanceProfileName="web-instance")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == ["web-instance"]
    assert first["roles"]["web-instance"]["instance_profile_arn"] == profile["Arn"]

    del calls[:]
    second = run(ROLES)
    assert not second["changed"] and second["changes"] == [], second["changes"]
    assert second["roles"] == first["roles"]
    assert all(op.startswith(("Get", "List")) for op in calls), calls
    # GetRole, ListAttachedRolePolicies, ListRolePolicies per role; GetRolePolicy for the one inline policy;
    # GetInstanceProfile for the one profile.
    assert len(calls) == 8, calls


def test_check_mode_creates_nothing(iam):
    res = run(ROLES, check=True)
    assert res["changed"]
    assert res["roles"]["web-exec"]["arn"] == ""
    assert iam.list_roles()["Roles"] == []
    assert res["diff"]["after"].splitlines() == res["changes"]


def test_drift_is_predicted_then_repaired(iam):
    run(ROLES)
    iam.put_role_policy(RoleName="web-exec", PolicyName="web-exec", PolicyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'))
    iam.put_role_policy(RoleName="web-exec", PolicyName="extra", PolicyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'))
    iam.attach_role_policy(RoleName="web-instance", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    iam.update_assume_role_policy(RoleName="web-exec", PolicyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}'))
    iam.tag_role(RoleName="web-exec", Tags=[{"Key": "owner", "Value": "someone"}])
    iam.remove_role_from_instance_profile(InstanceProfileName="web-instance", RoleName="web-instance")
    expected = [
        "update the trust policy of role web-exec",
        "untag role web-exec: owner",
        "update inline policy web-exec of role web-exec",
        "delete inline policy extra of role web-exec",
        "detach arn:aws:iam::aws:policy/AdministratorAccess from role web-instance",
        "add role web-instance to instance profile web-instance",
    ]
    check = run(ROLES, check=True)
    assert check["changes"] == expected
    assert "extra" in iam.list_role_policies(RoleName="web-exec")["PolicyNames"]
    fixed = run(ROLES)
    assert fixed["changes"] == expected
    assert iam.list_role_policies(RoleName="web-exec")["PolicyNames"] == ["web-exec"]
    assert iam.get_role(RoleName="web-exec")["Role"]["AssumeRolePolicyDocument"] == TRUST
    assert run(ROLES)["changes"] == []


@pytest.mark.parametrize("change, message", [
    (dict(name="web exec"), "roles[].name 'web exec' is not allowed"),
    (dict(path="app"), "roles[web-exec].path 'app' must start and end with /"),
    (dict(inline_policies={"p": {"Version": "2012-10-17"}}), "roles[web-exec].inline_policies.p must be a policy document"),
    (dict(managed_policy_arns=["AdministratorAccess"]), "roles[web-exec].managed_policy_arns: 'AdministratorAccess' is not an ARN"),
])
def test_bad_input_fails_before_any_change(iam, change, message):
    res = run([dict(ROLES[0], **change)])
    assert res.get("failed") and res["msg"].startswith(message), res
    assert iam.list_roles()["Roles"] == []


def test_a_path_change_is_refused(iam):
    run(ROLES[:1])
    res = run([dict(ROLES[0], path="/app/")])
    assert res.get("failed")
    assert res["msg"] == "roles[web-exec].path is /app/ but the existing role has /; the path of a role cannot change"
