# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""site.yml, playbooks/deploy.yml and playbooks/teardown.yml through ansible-runner, the engine AWX and
Automation Platform use, with a private data dir, against the local stack. Asserts on the runner's status and
per-host stats, on idempotence (a second site.yml run reports changed=0), and that the generated database
password appears in none of the job events, even at -vvv.

One fresh stack per test run (a random stack name), torn down at the end.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import uuid

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ENV_FILE = os.path.join(ROOT, ".local-stack", "env")

pytestmark = pytest.mark.skipif(not os.path.exists(ENV_FILE), reason="local stack not up (scripts/local-stack up)")


def stack_env():
    env = {}
    with open(ENV_FILE) as handle:
        for line in handle:
            line = line.strip()
            if line.startswith("export "):
                key, dummy, value = line[len("export "):].partition("=")
                env[key] = value
    return env


def run(tmp_path, playbook, extravars, verbosity=0, cmdline=None):
    ansible_runner = pytest.importorskip("ansible_runner")
    data_dir = tmp_path / ("runner-" + uuid.uuid4().hex[:6])
    data_dir.mkdir()
    env = stack_env()
    env.update(
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        PATH=os.path.join(ROOT, ".venv", "bin") + os.pathsep + os.environ.get("PATH", ""),
    )
    result = ansible_runner.run(
        private_data_dir=str(data_dir),
        project_dir=ROOT,
        playbook=os.path.join(ROOT, playbook),
        inventory=os.path.join(ROOT, "inventories", "local"),
        extravars=extravars,
        envvars=env,
        verbosity=verbosity,
        cmdline=cmdline,
        quiet=True,
    )
    events = list(result.events)
    text = "\n".join(e.get("stdout", "") for e in events) + "\n".join(json.dumps(e.get("event_data", {}), default=str) for e in events)
    return result, events, text


def changed(result):
    return sum(result.stats.get("changed", {}).values())


def secret_password(stack):
    import boto3

    env = stack_env()
    client = boto3.client(
        "secretsmanager", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    for page in client.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            if stack in secret["Name"]:
                return json.loads(client.get_secret_value(SecretId=secret["ARN"])["SecretString"])["password"]
    raise AssertionError("no database secret for stack %s" % stack)


def test_site_deploy_teardown_through_ansible_runner(tmp_path):
    stack = "runner-" + uuid.uuid4().hex[:6]
    extravars = {"appdeploy_stack": stack}
    teardown_vars = dict(extravars, teardown_confirm=stack, teardown_delete_images=True)
    try:
        first, _events, first_text = run(tmp_path, "site.yml", extravars, verbosity=3)
        assert first.status == "successful", first_text[-4000:]
        assert first.rc == 0
        assert changed(first) > 0
        assert sum(first.stats.get("failures", {}).values()) == 0

        second, _events, second_text = run(tmp_path, "site.yml", extravars, verbosity=3)
        assert second.status == "successful", second_text[-4000:]
        assert changed(second) == 0, second_text[-4000:]

        # an AWX job template of job type "check": on the unchanged stack it predicts no change
        check, _events, check_text = run(tmp_path, "site.yml", extravars, cmdline="--check")
        assert check.status == "successful", check_text[-4000:]
        assert changed(check) == 0, check_text[-4000:]

        deploy, _events, deploy_text = run(tmp_path, "playbooks/deploy.yml", dict(extravars, app_version="ci-1"), verbosity=3)
        assert deploy.status == "successful", deploy_text[-4000:]
        # the image is already in the registry and the service on it: only the new tag is a change
        assert changed(deploy) == 1, deploy_text[-4000:]
        assert "nothing built" in deploy_text

        password = secret_password(stack)
        assert len(password) >= 16
        for name, text in (("site.yml", first_text), ("site.yml rerun", second_text), ("deploy.yml", deploy_text)):
            assert password not in text, "the database password leaked into the %s job events" % name

        refused, _events, refused_text = run(tmp_path, "playbooks/teardown.yml", extravars)
        assert refused.status == "failed" and "teardown_confirm" in refused_text
    finally:
        down, _events, down_text = run(tmp_path, "playbooks/teardown.yml", teardown_vars)
    assert down.status == "successful", down_text[-4000:]
    again, _events, again_text = run(tmp_path, "playbooks/teardown.yml", teardown_vars)
    assert again.status == "successful", again_text[-4000:]
    assert changed(again) == 0, again_text[-4000:]
