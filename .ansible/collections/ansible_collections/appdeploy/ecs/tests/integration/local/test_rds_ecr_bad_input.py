# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input to the rds and ecr roles fails with one clear message, before any AWS call.

Every case points the AWS endpoint at a closed loopback port (module_defaults, AWS_ENDPOINT_URL and AWS_URL):
had a role made any AWS call before failing, the error would be a connection error, not the role's message, and
nothing can have been created anywhere. A control case with valid input proves the harness would notice: it does
reach the closed port and fails with a connection error. Master passwords given in a case must not appear in the
output.
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
CONNECTION_ERRORS = ("Could not connect", "Connection refused", "EndpointConnectionError")

pytestmark = pytest.mark.skipif(
    not os.path.exists(ENV_FILE), reason="local stack not set up: .local-stack/env is missing (scripts/local-stack up)"
)

# Valid inputs the bad value is merged into, so each case fails on exactly one option.
RDS_BASE = {
    "rds_identifier": "it-bad-input",
    "rds_subnet_ids": ["subnet-0a1b2c3d", "subnet-0e1f2a3b"],
    "rds_security_group_ids": ["sg-0a1b2c3d"],
}
ECR_BASE = {"ecr_repository_name": "it-bad-input/app"}


def run_role(tmp_path, role, role_vars):
    playbook = tmp_path / "play.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          module_defaults:
            group/appdeploy.ecs.aws:
              endpoint_url: "{{ endpoint }}"
          roles:
            - role: appdeploy.ecs.%s
        """ % role))
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(dict(role_vars, endpoint=CLOSED_ENDPOINT)))
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="eu-central-1",
        AWS_REGION="eu-central-1",
        # the closed port, for boto3 and for amazon.aws alike, whatever the caller's shell has sourced
        AWS_ENDPOINT_URL=CLOSED_ENDPOINT,
        AWS_URL=CLOSED_ENDPOINT,
        # retries would only slow the control case down
        AWS_MAX_ATTEMPTS="1",
    )
    env.pop("AWS_SESSION_TOKEN", None)
    proc = subprocess.run(
        [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", "@" + str(vars_file),
         "-e", "ansible_python_interpreter=" + os.path.join(ROOT, ".venv", "bin", "python"),
         str(playbook)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


ECR_CASES = [
    ({"ecr_repository_name": "Ordermanagement"}, "ecr_repository_name", "lowercase letters and digits"),
    ({"ecr_repository_name": "a"}, "ecr_repository_name", "2 to 256 characters"),
    ({"ecr_repository_name": "team//app"}, "ecr_repository_name", "2 to 256 characters"),
    ({"ecr_repository_name": "-app"}, "ecr_repository_name", "2 to 256 characters"),
    ({"ecr_repository_name": "app_"}, "ecr_repository_name", "2 to 256 characters"),
    ({"ecr_repository_name": "x" * 257}, "ecr_repository_name", "2 to 256 characters"),
    ({"ecr_keep_tagged_images": 0}, "ecr_keep_tagged_images", "1 to 10000"),
    ({"ecr_keep_tagged_images": "many"}, "ecr_keep_tagged_images", "int"),
    ({"ecr_untagged_expire_days": 0}, "ecr_untagged_expire_days", "1 to 3650"),
    ({"ecr_image_tag_mutability": "sometimes"}, "ecr_image_tag_mutability", "IMMUTABLE, MUTABLE"),
    ({"ecr_encryption_type": "KMS"}, "ecr_kms_key", "must be set"),
    ({"ecr_pull_account_ids": ["12345"]}, "ecr_pull_account_ids", "12-digit"),
    ({"ecr_state": "gone"}, "ecr_state", "present, absent"),
    ({"ecr_state": "absent", "ecr_repository_name": "Bad Name"}, "ecr_repository_name", "lowercase letters and digits"),
]

RDS_CASES = [
    ({"rds_engine_version": "9.6"}, "rds_engine_version", "14 or later"),
    ({"rds_engine_version": "13"}, "rds_engine_version", "14 or later"),
    ({"rds_engine_version": "16.x"}, "rds_engine_version", "major.minor"),
    ({"rds_engine_version": "latest"}, "rds_engine_version", "14 or later"),
    ({"rds_master_password": "short1"}, "rds_master_password", "8 to 128 printable ASCII"),
    ({"rds_master_password": "has space in it 123"}, "rds_master_password", "except /, \", @ and space"),
    ({"rds_master_password": "slash/in/password1"}, "rds_master_password", "except /, \", @ and space"),
    ({"rds_master_password": "quote\"in-password1"}, "rds_master_password", "except /, \", @ and space"),
    ({"rds_master_password": "at@in-password123"}, "rds_master_password", "except /, \", @ and space"),
    ({"rds_master_password": "x" * 129}, "rds_master_password", "8 to 128"),
    ({"rds_password_length": 8}, "rds_password_length", "16 to 128"),
    ({"rds_identifier": "Orders_DB"}, "rds_identifier", "lowercase letters, digits and hyphens"),
    ({"rds_identifier": "orders-"}, "rds_identifier", "trailing hyphen"),
    ({"rds_backup_retention_days": 0}, "rds_backup_retention_days", "1 to 35"),
    ({"rds_backup_retention_days": 36}, "rds_backup_retention_days", "1 to 35"),
    ({"rds_allocated_storage": 5}, "rds_allocated_storage", "20 to 65536"),
    ({"rds_storage_type": "io2"}, "rds_storage_type", "gp3, gp2"),
    ({"rds_instance_class": "t3.micro"}, "rds_instance_class", "db.t4g.micro"),
    ({"rds_port": 80}, "rds_port", "1150 to 65535"),
    ({"rds_db_name": "postgres"}, "rds_db_name", "not postgres"),
    ({"rds_master_username": "rdsadmin"}, "rds_master_username", "reserves"),
    ({"rds_subnet_ids": ["subnet-0a1b2c3d"]}, "rds_subnet_ids", "at least 2 AZs"),
    ({"rds_subnet_ids": ["subnet-0a1b2c3d", "vpc-123"]}, "rds_subnet_ids", "not subnet-"),
    ({"rds_security_group_ids": []}, "rds_security_group_ids", "is empty"),
    ({"rds_secret_recovery_days": 3}, "rds_secret_recovery_days", "7 to 30"),
    ({"rds_secret_name": "rds/orders-abcdef"}, "rds_secret_name", "hyphen and six characters"),
    ({"rds_state": "absent", "rds_final_snapshot_identifier": "Final_Snap"}, "rds_final_snapshot_identifier", "lowercase letters"),
]

CASES = [("ecr", ECR_BASE, c) for c in ECR_CASES] + [("rds", RDS_BASE, c) for c in RDS_CASES]


def _case_id(case):
    role, _base, (role_vars, option, _fragment) = case
    shown = {k: (v if len(str(v)) < 40 else str(v)[:12] + "...") for k, v in role_vars.items()}
    return "%s-%s:%s" % (role, option, json.dumps(shown, sort_keys=True))


@pytest.mark.parametrize("role, base, case", CASES, ids=[_case_id(c) for c in CASES])
def test_bad_input_fails_before_any_aws_call(tmp_path, role, base, case):
    role_vars, option, fragment = case
    rc, out = run_role(tmp_path, role, dict(base, **role_vars))
    assert rc != 0, out
    assert option in out, out
    assert fragment in out, out
    assert "Traceback" not in out, out
    # The closed endpoint was never asked, so nothing was created anywhere.
    assert not any(err in out for err in CONNECTION_ERRORS), out
    password = role_vars.get("rds_master_password")
    if password:
        assert password not in out, "the master password appears in the output"


@pytest.mark.parametrize("role, role_vars", [("ecr", ECR_BASE), ("rds", dict(RDS_BASE, rds_master_password="Valid-Passw0rd!"))])
def test_valid_input_does_reach_the_closed_endpoint(tmp_path, role, role_vars):
    """Control: with valid input the role gets past validation and its first AWS call fails to connect."""
    rc, out = run_role(tmp_path, role, role_vars)
    assert rc != 0, out
    assert any(err in out for err in CONNECTION_ERRORS), out
    assert "Valid-Passw0rd!" not in out
