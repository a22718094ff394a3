# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input from issue 7 that test_*_bad_input.py did not cover: the deploy module driven through ansible-playbook,
teardown and deploy playbooks, and missing credentials or region.

Like the other bad-input tests, most cases point the AWS endpoint at a closed loopback port: had anything made an AWS
call before failing, the error would be a connection error, not the expected message. The cases that need one read
(an unknown cluster or service) run against the local stack and assert that nothing was registered or created.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import uuid

import pytest

from deploy_helpers import BIN, ROOT, STACK, boto, requires_stack, revisions, spec, unique, write_app, delete_registry_repo

CLOSED = "http://127.0.0.1:9"
CONNECTION_ERRORS = ("Could not connect", "Connection refused", "EndpointConnectionError", "connect timeout")
AWS_VARS = ("AWS_ENDPOINT_URL", "AWS_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "EC2_REGION",
            "AWS_SECURITY_TOKEN", "EC2_URL", "EC2_ACCESS_KEY", "EC2_SECRET_KEY")


def _env(endpoint=CLOSED, drop=()):
    env = dict(os.environ)
    env.update(STACK or {})
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_URL=endpoint, AWS_MAX_ATTEMPTS="1",
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="eu-central-1",
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               # no profile or config file may supply what a case removes
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    env.pop("AWS_SESSION_TOKEN", None)
    for var in drop:
        env.pop(var, None)
    return env


def _task(tmp_path, task, env, module_defaults=None):
    """Run one task; return (rc, result dict of that task, whole output)."""
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": os.path.join(BIN, "python")},
             "module_defaults": module_defaults or {}, "tasks": [task]}]
    pb = tmp_path / ("pb-%s.yml" % uuid.uuid4().hex[:6])
    pb.write_text(json.dumps(play))
    env = dict(env, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", str(pb)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    try:
        result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        result = {}
    return proc.returncode, result, proc.stdout + proc.stderr


def _playbook(args, env):
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook")] + args, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _assert_refused(rc, out, needles):
    assert rc != 0, out
    for needle in needles:
        assert needle in out, out
    assert "Traceback" not in out and "MODULE FAILURE" not in out, out
    assert not [e for e in CONNECTION_ERRORS if e in out], out


@pytest.fixture
def ctx(tmp_path):
    path = tmp_path / "ctx"
    if STACK:
        write_app(str(path))
    else:
        path.mkdir()
        (path / "Dockerfile").write_text("FROM scratch\n")
    return str(path)


def _deploy(ctx, **extra):
    args = {"path": ctx, "repository": "it-bad/app", "cluster": "it-bad", "service": "web", "container": "app",
            "wait": False, "task_definition": spec("it-bad-web") if STACK else {
                "family": "it-bad-web", "containerDefinitions": [{"name": "app", "image": "x", "memory": 64}]}}
    args.update(extra)
    return {"name": "Deploy", "appdeploy.ecs.deploy": {k: v for k, v in args.items() if v is not None}}


DEPLOY_CASES = [
    ("missing Dockerfile", {"dockerfile": "Dockerfile.missing"}, ["dockerfile:", "Dockerfile.missing not found"]),
    ("missing build context", {"path": "/nonexistent/app"}, ["path: build context /nonexistent/app is not a directory"]),
    ("unknown container", {"container": "worker"}, ["container: 'worker' is not in task_definition.containerDefinitions"]),
    ("negative wait_timeout", {"wait_timeout": -30}, ["wait_timeout: must be a positive number of seconds"]),
    ("negative wait_delay", {"wait_delay": -1}, ["wait_delay: must be a positive number of seconds"]),
    ("negative smoke test timeout", {"smoke_test": {"port": 18080, "timeout": -5}},
     ["smoke_test.timeout: must be a positive number of seconds"]),
    ("smoke test port out of range", {"smoke_test": {"port": 70000}}, ["smoke_test.port: 70000 is not a TCP port"]),
    ("invalid repository name", {"repository": "Bad Repo"}, ["repository: 'Bad Repo' is not a valid repository name"]),
    ("invalid tag", {"tags": [".hidden"]}, ["tags: '.hidden' is not a valid image tag"]),
    ("service without cluster", {"cluster": None}, ["cluster: required when service is given"]),
    ("non-numeric timeout", {"wait_timeout": "soon"}, ["wait_timeout", "int"]),
]


@pytest.mark.parametrize("extra, needles", [c[1:] for c in DEPLOY_CASES], ids=[c[0] for c in DEPLOY_CASES])
def test_deploy_bad_input_fails_before_any_call(tmp_path, ctx, extra, needles):
    rc, result, out = _task(tmp_path, _deploy(ctx, **extra), _env())
    _assert_refused(rc, out, needles)
    assert result.get("changed") is False or "changed" not in result
    assert "\n" not in result.get("msg", "")


MISSING = [
    ("no region", ("AWS_DEFAULT_REGION", "AWS_REGION", "EC2_REGION"), ["requires a region and none was found"]),
    ("no credentials", ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), ["credentials"]),
]


@pytest.mark.parametrize("drop, needles", [m[1:] for m in MISSING], ids=[m[0] for m in MISSING])
def test_deploy_without_region_or_credentials(tmp_path, ctx, drop, needles):
    # valid arguments: the module gets as far as its first AWS client, which must fail clearly and locally
    rc, result, out = _task(tmp_path, _deploy(ctx), _env(drop=drop))
    _assert_refused(rc, out, needles)
    assert result.get("built") is not True and result.get("pushed") is not True


@pytest.mark.parametrize("drop, needles", [m[1:] for m in MISSING], ids=[m[0] for m in MISSING])
def test_role_without_region_or_credentials(tmp_path, drop, needles):
    task = {"name": "ECR role", "ansible.builtin.include_role": {"name": "appdeploy.ecs.ecr"},
            "vars": {"ecr_repository_name": "it-bad-missing"}}
    rc, dummy, out = _playbook_for_role(tmp_path, task, _env(drop=drop))
    _assert_refused(rc, out, needles)


def _playbook_for_role(tmp_path, task, env):
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": os.path.join(BIN, "python")}, "tasks": [task]}]
    pb = tmp_path / "role.yml"
    pb.write_text(json.dumps(play))
    rc, out = _playbook(["-i", "localhost,", str(pb)], env)
    return rc, None, out


@pytest.mark.parametrize("confirm", [None, "", "some-other-stack"], ids=["absent", "empty", "wrong stack"])
def test_teardown_refuses_without_the_stack_name(confirm):
    args = ["playbooks/teardown.yml", "-e", "appdeploy_stack=it-bad-teardown", "-e", "appdeploy_aws_endpoint_url=" + CLOSED]
    if confirm is not None:
        args += ["-e", "teardown_confirm=%s" % confirm]
    rc, out = _playbook(args, _env())
    _assert_refused(rc, out, ["teardown_confirm", "-e teardown_confirm=it-bad-teardown"])
    assert "Remove the service" not in out


def test_deploy_playbook_refuses_a_bad_app_version():
    rc, out = _playbook(["playbooks/deploy.yml", "-e", "appdeploy_stack=it-bad-version", "-e",
                         "appdeploy_aws_endpoint_url=" + CLOSED, "-e", "app_version=-not/a tag"], _env())
    _assert_refused(rc, out, ["app_version", "is not a valid image tag"])


def test_local_inventory_refuses_a_non_loopback_endpoint():
    # The guard must stop before any AWS call; the endpoint is never contacted (an unresolvable .invalid name, so
    # even a broken guard could not reach anything).
    rc, out = _playbook(["site.yml", "-e", "appdeploy_stack=it-bad-guard", "-e",
                         "appdeploy_aws_endpoint_url=https://aws.example.invalid"], _env())
    assert rc != 0, out
    assert "only talks to the local stack on 127.0.0.1" in out, out
    assert "Create or update the VPC" not in out and "Traceback" not in out


# ---------------------------------------------------------------------------------- cases that need one AWS read


@pytest.fixture
def stack_app(tmp_path):
    name = unique("it-bad")
    ecr, ecs = boto("ecr"), boto("ecs")
    repo = "%s/app" % name
    ecr.create_repository(repositoryName=repo)
    ctx = str(tmp_path / "ctx")
    write_app(ctx)
    yield {"name": name, "repo": repo, "ctx": ctx, "ecs": ecs, "ecr": ecr}
    try:
        ecr.delete_repository(repositoryName=repo, force=True)
        for cluster in ecs.list_clusters()["clusterArns"]:
            if cluster.endswith("/" + name):
                ecs.delete_cluster(cluster=name)
    except Exception:  # best effort on a shared stack
        pass
    delete_registry_repo(STACK["LOCAL_REGISTRY"], repo)


def _stack_deploy(app, **extra):
    args = {"path": app["ctx"], "repository": app["repo"], "registry": STACK["LOCAL_REGISTRY"], "network_mode": "host",
            "cluster": app["name"], "service": "web", "container": "app", "wait": False,
            "task_definition": spec(app["name"] + "-web")}
    args.update(extra)
    return {"name": "Deploy", "appdeploy.ecs.deploy": {k: v for k, v in args.items() if v is not None}}


@requires_stack
def test_unknown_cluster_changes_nothing(tmp_path, stack_app):
    rc, result, out = _task(tmp_path, _stack_deploy(stack_app), _env(endpoint=STACK["AWS_ENDPOINT_URL"]))
    assert rc != 0, out
    assert "cluster %s not found" % stack_app["name"] in result.get("msg", ""), out
    assert "Traceback" not in out
    assert revisions(stack_app["ecs"], stack_app["name"] + "-web") == []
    assert not [c for c in stack_app["ecs"].list_clusters()["clusterArns"] if c.endswith("/" + stack_app["name"])]


@requires_stack
def test_unknown_service_without_task_definition_changes_nothing(tmp_path, stack_app):
    stack_app["ecs"].create_cluster(clusterName=stack_app["name"])
    rc, result, out = _task(tmp_path, _stack_deploy(stack_app, task_definition=None),
                            _env(endpoint=STACK["AWS_ENDPOINT_URL"]))
    assert rc != 0, out
    msg = result.get("msg", "")
    assert msg.startswith("service: web not found in cluster %s; give task_definition" % stack_app["name"]), out
    assert "Traceback" not in out
    assert stack_app["ecs"].list_services(cluster=stack_app["name"])["serviceArns"] == []
    assert revisions(stack_app["ecs"], stack_app["name"] + "-web") == []
