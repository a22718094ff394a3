"""Bad input to the ecs_cluster and elb roles stops the play before any AWS call, with one message naming the option.

Each case runs `ansible-playbook` on a one-role play whose AWS endpoint is a closed loopback port
(http://127.0.0.1:9): had the role called AWS before validating, the run would fail with a connection error instead
of the expected message, so "nothing was created" holds by construction, and the test also checks that no
connection was attempted."""
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PLAYBOOK = os.path.join(ROOT, ".venv", "bin", "ansible-playbook")
CLOSED = "http://127.0.0.1:9"

ECS_OK = {
    "ecs_cluster_name": "badinput",
    "ecs_cluster_subnet_ids": ["subnet-0a0a0a0a", "subnet-0b0b0b0b"],
    "ecs_cluster_security_group_ids": ["sg-0a0a0a0a"],
}
ELB_OK = {
    "elb_name": "badinput",
    "elb_vpc_id": "vpc-0a0a0a0a",
    "elb_subnet_ids": ["subnet-0a0a0a0a", "subnet-0b0b0b0b"],
    "elb_security_group_ids": ["sg-0a0a0a0a"],
    "elb_certificate_arn": "arn:aws:acm:eu-central-1:123456789012:certificate/0a1b2c3d",
}

CASES = [
    # (role, bad variables, text the message must contain)
    ("ecs_cluster", {"ecs_cluster_asg_min_size": -1}, "ecs_cluster_asg_min_size is -1"),
    ("ecs_cluster", {"ecs_cluster_asg_min_size": 5, "ecs_cluster_asg_max_size": 2},
     "ecs_cluster_asg_min_size (5) is above ecs_cluster_asg_max_size (2)"),
    ("ecs_cluster", {"ecs_cluster_asg_max_size": 0}, "ecs_cluster_asg_max_size is 0"),
    ("ecs_cluster", {"ecs_cluster_asg_desired_capacity": 9}, "ecs_cluster_asg_desired_capacity is 9"),
    ("ecs_cluster", {"ecs_cluster_imds_hop_limit": 0}, "ecs_cluster_imds_hop_limit is 0"),
    ("ecs_cluster", {"ecs_cluster_imds_hop_limit": 65}, "ecs_cluster_imds_hop_limit is 65"),
    ("ecs_cluster", {"ecs_cluster_root_volume_size": 8}, "ecs_cluster_root_volume_size is 8"),
    ("ecs_cluster", {"ecs_cluster_instance_type": "huge"}, "ecs_cluster_instance_type"),
    ("ecs_cluster", {"ecs_cluster_ami_id": "ubuntu"}, "ecs_cluster_ami_id"),
    ("ecs_cluster", {"ecs_cluster_log_retention_days": 8}, "ecs_cluster_log_retention_days is 8"),
    ("ecs_cluster", {"ecs_cluster_managed_scaling_target_capacity": 101}, "ecs_cluster_managed_scaling_target_capacity is 101"),
    ("ecs_cluster", {"ecs_cluster_name": "bad name"}, "ecs_cluster_name"),
    ("ecs_cluster", {"ecs_cluster_capacity": "lambda"}, "ecs_cluster_capacity"),
    ("ecs_cluster", {"ecs_cluster_container_insights": "maybe"}, "ecs_cluster_container_insights"),
    ("ecs_cluster", {"ecs_cluster_fargate_providers": ["FARGATE", "SPOT"]}, "ecs_cluster_fargate_providers: SPOT"),
    ("ecs_cluster", {"ecs_cluster_secret_arns": ["my-secret"]}, "ecs_cluster_secret_arns: my-secret"),
    ("ecs_cluster", {"ecs_cluster_ecr_repository_arns": ["arn:aws:s3:::bucket"]}, "ecs_cluster_ecr_repository_arns"),
    ("ecs_cluster", {"ecs_cluster_subnet_ids": ["subnet-0a0a0a0a"]}, "ecs_cluster_subnet_ids needs 2 or more"),
    ("ecs_cluster", {"ecs_cluster_task_role_statements": [{"Effect": "Allow", "Action": "s3:GetObject"}]},
     "ecs_cluster_task_role_statements"),
    ("elb", {"elb_health_check_path": "dispatch/health"}, "elb_health_check_path"),
    ("elb", {"elb_health_check_matcher": "ok"}, "elb_health_check_matcher"),
    ("elb", {"elb_health_check_matcher": "600"}, "elb_health_check_matcher"),
    ("elb", {"elb_ssl_policy": "ELBSecurityPolicy-2016-08"}, "elb_ssl_policy"),
    ("elb", {"elb_target_type": "lambda"}, "elb_target_type"),
    ("elb", {"elb_health_check_timeout": 30, "elb_health_check_interval": 30}, "elb_health_check_timeout is 30"),
    ("elb", {"elb_healthy_threshold": 1}, "elb_healthy_threshold is 1"),
    ("elb", {"elb_unhealthy_threshold": 11}, "elb_unhealthy_threshold is 11"),
    ("elb", {"elb_deregistration_delay": -5}, "elb_deregistration_delay is -5"),
    ("elb", {"elb_stickiness_duration": 0}, "elb_stickiness_duration is 0"),
    ("elb", {"elb_stickiness_duration": "a day"}, "elb_stickiness_duration is a day"),
    ("elb", {"elb_drop_invalid_header_fields": "maybe"}, "elb_drop_invalid_header_fields is \"maybe\""),
    ("elb", {"elb_app_port": 70000}, "elb_app_port is 70000"),
    ("elb", {"elb_certificate_arn": ""}, "elb_certificate_arn is required"),
    ("elb", {"elb_certificate_arn": "arn:aws:iam::123456789012:server-certificate/x"}, "elb_certificate_arn"),
    ("elb", {"elb_name": "a-name-far-too-long-for-a-load-balancer"}, "elb_name"),
    ("elb", {"elb_subnet_ids": ["subnet-0a0a0a0a"]}, "elb_subnet_ids needs 2 or more"),
    ("elb", {"elb_access_logs_prefix": "logs"}, "elb_access_logs_prefix needs elb_access_logs_bucket"),
]


def run_role(tmp_path, role, bad):
    base = ECS_OK if role == "ecs_cluster" else ELB_OK
    play = [{
        "name": "Bad input to %s" % role,
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {"group/appdeploy.ecs.aws": {"endpoint_url": CLOSED, "region": "eu-central-1"}},
        "vars": dict(base, **bad),
        "roles": [{"role": "appdeploy.ecs.%s" % role}],
    }]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), AWS_ENDPOINT_URL=CLOSED, AWS_URL=CLOSED,
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="eu-central-1",
               ANSIBLE_NOCOLOR="1")
    inventory = "localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable
    (tmp_path / "hosts").write_text(inventory)
    return subprocess.run([PLAYBOOK, "-i", str(tmp_path / "hosts"), str(tmp_path / "play.yml")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("role, bad, needle", CASES, ids=["%s-%s" % (c[0], "-".join(c[1])) for c in CASES])
def test_bad_input_is_refused_before_any_aws_call(tmp_path, role, bad, needle):
    res = run_role(tmp_path, role, bad)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert needle in out, out
    assert "Traceback" not in out, out
    # No AWS call was attempted: the closed endpoint would have produced a connection error.
    for marker in ("Could not connect", "EndpointConnectionError", "Connection refused"):
        assert marker not in out, out
    assert "failed=1" in out, out


@pytest.mark.parametrize("role", ["ecs_cluster", "elb"])
def test_good_input_passes_validation_and_reaches_aws(tmp_path, role):
    """The control case: with valid input the play gets past validation to its first AWS call, which fails on the
    closed endpoint. This proves the cases above fail in validation, not somewhere later."""
    res = run_role(tmp_path, role, {})
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "Could not connect" in out or "EndpointConnectionError" in out or "Connection refused" in out, out
