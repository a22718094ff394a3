# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Security properties of the stack site.yml builds on the local stack (issue 7).

One stack, built once for the module under a unique name (site.yml, then playbooks/deploy.yml, both at -vvv), is
read back with boto3 describe calls and torn down at the end. One property cannot be read back from moto and is
asserted on what the role would send instead, saying why:
  - the RDS parameter group with rds.force_ssl: inventories/local uses the engine's default group because moto
    cannot create groups (DescribeDBParameterGroups answers [] instead of DBParameterGroupNotFound).
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import subprocess
import time
import uuid

import pytest
import yaml

from deploy_helpers import BIN, ROOT, STACK, boto, requires_stack, inventory_value, delete_registry_repo

pytestmark = requires_stack

# Searched: every file written during the runs under the repository, and the elb role's certificate directory
# wherever the local inventory puts it (elb_certificate_dir). Skipped under the repository: the VCS, the venv, the
# symlink back to the root, and the Docker engine's and the registry's storage under .local-stack/ (written by those
# daemons, not by the project, and holding layer tarballs that are compressed, so a byte search there would prove
# nothing either way). The rest of .local-stack/ (env, logs) is searched.
SKIP_DIRS = {os.path.join(ROOT, p) for p in (".git", ".venv", ".collections", ".cache",
                                             os.path.join(".local-stack", "docker-data"),
                                             os.path.join(".local-stack", "registry-data"))}
SECRETISH = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE|CREDENTIAL|API_?KEY|ACCESS_?KEY)", re.I)


def _env():
    env = dict(os.environ)
    env.update(STACK)
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return env


def _playbook(args, timeout=600):
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook")] + args, cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _written_since(start, root):
    paths = []
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in SKIP_DIRS]
        for name in files:
            path = os.path.join(top, name)
            try:
                if os.path.isfile(path) and os.path.getmtime(path) >= start:
                    paths.append(path)
            except OSError:
                pass
    return paths


@pytest.fixture(scope="module")
def stack():
    name = "it-sec-%s" % uuid.uuid4().hex[:6]
    stack_args = ["-e", "appdeploy_stack=%s" % name]
    # where the elb role keeps the self-signed certificate and key (the one file the run must write)
    cert_dir = inventory_value(name, "elb_certificate_dir")
    start = time.time() - 1
    try:
        rc, site_out = _playbook(["site.yml", "-vvv"] + stack_args)
        assert rc == 0, site_out[-5000:]
        rc, deploy_out = _playbook(["playbooks/deploy.yml", "-vvv", "-e", "app_version=sec1"] + stack_args)
        assert rc == 0, deploy_out[-5000:]
        yield {"name": name, "site_out": site_out, "deploy_out": deploy_out, "cert_dir": cert_dir,
               "written": _written_since(start, ROOT) + _written_since(start, cert_dir)}
    finally:
        _playbook(["playbooks/teardown.yml", "-e", "teardown_confirm=%s" % name, "-e", "teardown_delete_images=true"]
                  + stack_args)
        if os.path.isdir(cert_dir) and cert_dir.rstrip("/").endswith("/" + name):
            subprocess.run(["rm", "-rf", "--", cert_dir], check=False)
        delete_registry_repo(STACK["LOCAL_REGISTRY"], name)
        try:  # the teardown keeps the final DB snapshot by design; this test's snapshot is not worth keeping
            boto("rds").delete_db_snapshot(DBSnapshotIdentifier=name + "-final")
        except Exception:  # best effort on a shared stack
            pass


@pytest.fixture(scope="module")
def password(stack):
    rds = boto("rds")
    db = rds.describe_db_instances(DBInstanceIdentifier=stack["name"])["DBInstances"][0]
    tags = {t["Key"]: t["Value"] for t in db.get("TagList", [])}
    secret = json.loads(boto("secretsmanager").get_secret_value(SecretId=tags["appdeploy:master-secret"])["SecretString"])
    assert len(secret["password"]) >= 16, "the generated password is unexpectedly short"
    return secret["password"]


@pytest.fixture(scope="module")
def task_definition(stack):
    ecs = boto("ecs")
    service = ecs.describe_services(cluster=stack["name"], services=[stack["name"]])["services"][0]
    return ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]


def test_password_absent_from_playbook_output(stack, password):
    # the runs really were verbose and really reached the database wiring, so absence means something
    assert "<127.0.0.1> EXEC" in stack["site_out"] or "ESTABLISH LOCAL CONNECTION" in stack["site_out"]
    assert "CUBA_DB_PASSWORD=<present" in stack["site_out"]
    assert password not in stack["site_out"]
    assert password not in stack["deploy_out"]


def test_password_absent_from_files_the_runs_wrote(stack, password):
    written = stack["written"]
    # the run wrote the self-signed certificate and its key: the search did see what the run wrote
    assert [p for p in written if p.startswith(stack["cert_dir"].rstrip("/") + "/")], written
    needle = password.encode()
    leaks = []
    for path in written:
        try:
            with open(path, "rb") as f:
                if needle in f.read():
                    leaks.append(path)
        except OSError:
            pass
    assert leaks == []


def test_task_definition_keeps_the_password_in_secrets_only(task_definition, password):
    assert password not in json.dumps(task_definition, default=str)
    containers = task_definition["containerDefinitions"]
    assert containers
    for container in containers:
        env_names = [e["name"] for e in container.get("environment", [])]
        assert [n for n in env_names if SECRETISH.search(n)] == [], env_names
        assert not container.get("privileged", False)
    app = [c for c in containers if any(s["name"] == "CUBA_DB_PASSWORD" for s in c.get("secrets", []))]
    assert len(app) == 1, "CUBA_DB_PASSWORD must come from secrets"
    value_from = [s["valueFrom"] for s in app[0]["secrets"] if s["name"] == "CUBA_DB_PASSWORD"][0]
    assert value_from.startswith("arn:aws:secretsmanager:") and ":password::" in value_from, value_from


def _role_statements(iam, role_name):
    statements = []
    for policy_name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        doc = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
        if isinstance(doc, str):
            doc = json.loads(doc)
        stmts = doc["Statement"]
        statements.extend(stmts if isinstance(stmts, list) else [stmts])
    return statements


def _as_list(value):
    return value if isinstance(value, list) else [value]


def test_execution_role_is_scoped(task_definition, stack):
    iam = boto("iam")
    role_name = task_definition["executionRoleArn"].split("/")[-1]
    assert iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
    statements = _role_statements(iam, role_name)
    assert statements, "the execution role has no inline policy"
    wildcard_resources = []
    for stmt in statements:
        actions = _as_list(stmt["Action"])
        assert not [a for a in actions if a == "*" or a.endswith(":*")], stmt
        if "*" in _as_list(stmt["Resource"]):
            wildcard_resources.append(actions)
    assert wildcard_resources == [["ecr:GetAuthorizationToken"]]
    # the exception is explained next to it in the role
    with open(os.path.join(ROOT, "roles", "ecs_cluster", "tasks", "present.yml")) as f:
        lines = f.read().splitlines()
    idx = [i for i, line in enumerate(lines) if "Action: ecr:GetAuthorizationToken" in line][0]
    comment = " ".join(line for line in lines[max(0, idx - 6):idx] if line.strip().startswith("#"))
    assert "GetAuthorizationToken" in comment and '"*"' in comment, comment
    # the task role grants nothing unless ecs_cluster_task_role_statements says so
    task_role = task_definition["taskRoleArn"].split("/")[-1]
    assert _role_statements(iam, task_role) == []


def test_rds_is_private_and_encrypted(stack):
    db = boto("rds").describe_db_instances(DBInstanceIdentifier=stack["name"])["DBInstances"][0]
    assert db["PubliclyAccessible"] is False
    assert db["StorageEncrypted"] is True


def test_rds_parameter_group_enforces_tls_even_when_overridden(tmp_path):
    # Not readable from moto (see the module docstring): render the parameters the role sends, with a user trying
    # to switch TLS off, and check the role's default group name is not empty (the local inventory's override).
    with open(os.path.join(ROOT, "roles", "rds", "defaults", "main.yml")) as f:
        assert yaml.safe_load(f)["rds_parameter_group_name"].strip() != ""
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"rds_engine_version": "16", "rds_parameters": {"rds.force_ssl": 0, "log_connections": 1}},
             "tasks": [{"name": "Load the role's vars",
                        "ansible.builtin.include_vars": os.path.join(ROOT, "roles", "rds", "vars", "main.yml")},
                       {"name": "Show", "ansible.builtin.debug": {"var": "__rds_parameters"}}]}]
    pb = tmp_path / "render.yml"
    pb.write_text(json.dumps(play))
    env = _env()
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", str(pb)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rendered = json.loads(proc.stdout)["plays"][0]["tasks"][1]["hosts"]["localhost"]["__rds_parameters"]
    assert int(rendered["rds.force_ssl"]) == 1
    assert int(rendered["log_connections"]) == 1


def test_launch_template_requires_imdsv2_and_encrypts_the_root_volume(stack):
    ec2 = boto("ec2")
    asg = boto("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[stack["name"] + "-ecs"])
    template = asg["AutoScalingGroups"][0]["LaunchTemplate"]
    version = ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"],
                                                    Versions=[template.get("Version", "$Default")])
    data = version["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"].get("HttpEndpoint", "enabled") == "enabled"
    mappings = data["BlockDeviceMappings"]
    assert mappings and all(m["Ebs"]["Encrypted"] is True for m in mappings if "Ebs" in m), mappings


def test_ecr_scans_on_push_and_is_immutable(stack):
    repo = boto("ecr").describe_repositories(repositoryNames=[stack["name"]])["repositories"][0]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert repo["imageTagMutability"] == "IMMUTABLE"


def test_alb_redirects_http_and_uses_the_tls13_policy(stack):
    elb = boto("elbv2")
    lb = elb.describe_load_balancers(Names=[stack["name"]])["LoadBalancers"][0]
    listeners = {lst["Port"]: lst for lst in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]}
    assert sorted(listeners) == [80, 443]
    action = listeners[80]["DefaultActions"][0]
    assert action["Type"] == "redirect"
    assert action["RedirectConfig"]["StatusCode"] == "HTTP_301"
    assert action["RedirectConfig"]["Protocol"] == "HTTPS"
    assert str(action["RedirectConfig"]["Port"]) == "443"
    assert listeners[443]["Protocol"] == "HTTPS"
    assert listeners[443]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"


def test_alb_drops_invalid_headers_and_keeps_sessions_sticky(stack):
    # FSBP ELB.4, read back from the load balancer; and the Vaadin UI's sticky sessions on the target group.
    elb = boto("elbv2")
    lb = elb.describe_load_balancers(Names=[stack["name"]])["LoadBalancers"][0]
    attrs = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(
        LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]}
    assert attrs["routing.http.drop_invalid_header_fields.enabled"] == "true"
    tg = elb.describe_target_groups(Names=[stack["name"] + "-app"])["TargetGroups"][0]
    attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(
        TargetGroupArn=tg["TargetGroupArn"])["Attributes"]}
    assert attrs["stickiness.enabled"] == "true" and attrs["stickiness.type"] == "lb_cookie"
    assert attrs["stickiness.lb_cookie.duration_seconds"] == "86400"


def test_security_groups(stack):
    ec2 = boto("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [stack["name"]]}])["Vpcs"]
    assert len(vpcs) == 1
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}])["SecurityGroups"]
    by_name = {g["GroupName"]: g for g in groups}
    alb, app, db = (by_name["%s-%s" % (stack["name"], k)] for k in ("alb", "app", "db"))

    # db: PostgreSQL from the app group, nothing else
    assert db["IpPermissions"], "db group has no ingress"
    for perm in db["IpPermissions"]:
        assert (perm["IpProtocol"], perm.get("FromPort"), perm.get("ToPort")) == ("tcp", 5432, 5432), perm
        assert [p["GroupId"] for p in perm.get("UserIdGroupPairs", [])] == [app["GroupId"]], perm
        assert not perm.get("IpRanges") and not perm.get("Ipv6Ranges") and not perm.get("PrefixListIds"), perm

    # the app group is reached only from the load balancer's group
    for perm in app["IpPermissions"]:
        assert not perm.get("IpRanges") and not perm.get("Ipv6Ranges"), perm
        assert [p["GroupId"] for p in perm.get("UserIdGroupPairs", [])] == [alb["GroupId"]], perm

    # no open ingress anywhere but the load balancer's 80 and 443
    open_ports = set()
    for group in groups:
        for perm in group["IpPermissions"]:
            opened = [r for r in perm.get("IpRanges", []) if r.get("CidrIp") == "0.0.0.0/0"] + \
                     [r for r in perm.get("Ipv6Ranges", []) if r.get("CidrIpv6") == "::/0"]
            if opened:
                assert group["GroupId"] == alb["GroupId"], (group["GroupName"], perm)
                assert perm["IpProtocol"] == "tcp" and perm["FromPort"] == perm["ToPort"], perm
                open_ports.add(perm["FromPort"])
    assert open_ports <= {80, 443}
    # the default group has no rules at all
    default = by_name["default"]
    assert default["IpPermissions"] == []
