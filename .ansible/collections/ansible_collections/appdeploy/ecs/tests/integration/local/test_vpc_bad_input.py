# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input to the vpc role fails with one clear message, before any AWS call.

Most cases point the AWS endpoint at a closed loopback port: had the role made any AWS call before failing,
the error would be a connection error, not the role's message. The AZ checks need the region's zone list
(a read), so they run against the local stack and assert that no VPC appeared.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import textwrap

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ENV_FILE = os.path.join(ROOT, ".local-stack", "env")
CLOSED_ENDPOINT = "http://127.0.0.1:9"


def _stack_env():
    env = {}
    if os.path.exists(ENV_FILE):
        with open(ENV_FILE) as handle:
            for line in handle:
                line = line.strip()
                if line.startswith("export "):
                    key, dummy, value = line[len("export "):].partition("=")
                    env[key] = value
    return env


def run_role(tmp_path, role_vars, endpoint):
    playbook = tmp_path / "play.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          module_defaults:
            group/appdeploy.ecs.aws:
              endpoint_url: "{{ endpoint }}"
          roles:
            - role: appdeploy.ecs.vpc
        """))
    extra = dict(role_vars, endpoint=endpoint)
    env = dict(os.environ, **_stack_env())
    env.update(
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        AWS_ACCESS_KEY_ID=env.get("AWS_ACCESS_KEY_ID", "testing"),
        AWS_SECRET_ACCESS_KEY=env.get("AWS_SECRET_ACCESS_KEY", "testing"),
        AWS_DEFAULT_REGION=env.get("AWS_DEFAULT_REGION", "eu-central-1"),
        # retries would only slow the proof down: the closed port must never be asked at all
        AWS_MAX_ATTEMPTS="1",
    )
    proc = subprocess.run(
        [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", json.dumps(extra), "-e", "ansible_python_interpreter=" + os.path.join(ROOT, ".venv", "bin", "python"),
         str(playbook)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


CASES = [
    ({"vpc_cidr_block": "10.0.0.0"}, "vpc_cidr_block", "no prefix length"),
    ({"vpc_cidr_block": "10.0.0.0/8"}, "vpc_cidr_block", "allowed: /16 to /28"),
    ({"vpc_cidr_block": "10.0.0.1/16"}, "vpc_cidr_block", "host bits set"),
    ({"vpc_az_count": 1}, "vpc_az_count", "2 or more"),
    ({"vpc_az_count": "two"}, "vpc_az_count", "int"),
    ({"vpc_nat_gateway_mode": "both"}, "vpc_nat_gateway_mode", "per_az, single, none"),
    ({"vpc_state": "gone"}, "vpc_state", "present, absent"),
    ({"vpc_name": "bad_name!"}, "vpc_name", "letters, digits and hyphens"),
    ({"vpc_app_port": 70000}, "vpc_app_port", "1-65535"),
    ({"vpc_alb_ingress_cidrs": ["0.0.0.0"]}, "vpc_alb_ingress_cidrs", "no prefix length"),
    ({"vpc_public_subnet_cidrs": ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]}, "vpc_public_subnet_cidrs", "one per AZ"),
    ({"vpc_public_subnet_cidrs": ["10.0.0.0/24", "10.9.1.0/24"]}, "vpc subnet CIDRs", "not inside the VPC CIDR"),
    ({"vpc_private_subnet_cidrs": ["10.0.0.0/24", "10.0.0.128/25"]}, "vpc subnet CIDRs", "overlaps"),
    ({"vpc_cidr_block": "10.0.0.0/24", "vpc_subnet_newbits": 6}, "vpc_subnet_newbits", "/28 or larger"),
    ({"vpc_azs": ["eu-central-1a"], "vpc_az_count": 2}, "vpc_azs", "exactly vpc_az_count"),
]


@pytest.mark.parametrize("role_vars, option, fragment", CASES, ids=[c[1] + ":" + json.dumps(c[0]) for c in CASES])
def test_bad_input_fails_before_any_aws_call(tmp_path, role_vars, option, fragment):
    rc, out = run_role(tmp_path, role_vars, CLOSED_ENDPOINT)
    assert rc != 0, out
    assert option in out, out
    assert fragment in out, out
    assert "Traceback" not in out, out
    # the closed endpoint was never asked: no connection error anywhere
    assert "Could not connect" not in out and "Connection refused" not in out and "EndpointConnectionError" not in out, out


needs_stack = pytest.mark.skipif(not os.path.exists(ENV_FILE), reason="local stack not up (scripts/local-stack up)")


def _vpc_count():
    import boto3

    env = _stack_env()
    ec2 = boto3.client(
        "ec2", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    return len(ec2.describe_vpcs()["Vpcs"])


@needs_stack
@pytest.mark.parametrize(
    "role_vars, fragment",
    [
        ({"vpc_name": "it-bad-az", "vpc_azs": ["eu-central-1a", "eu-central-9z"]}, "unknown zone(s) eu-central-9z"),
        ({"vpc_name": "it-bad-az", "vpc_az_count": 7}, "has only 3 available zones"),
    ],
)
def test_unknown_or_too_many_zones_fail_before_any_change(tmp_path, role_vars, fragment):
    before = _vpc_count()
    rc, out = run_role(tmp_path, role_vars, _stack_env()["AWS_ENDPOINT_URL"])
    assert rc != 0, out
    assert fragment in out, out
    assert "Traceback" not in out, out
    assert _vpc_count() == before
