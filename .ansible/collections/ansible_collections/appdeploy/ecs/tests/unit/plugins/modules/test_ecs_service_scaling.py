# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""appdeploy.ecs.ecs_service_scaling: pure validation and planning, then main() end to end against moto's
Application Auto Scaling and ECS implementations (moto in-process, the real emulator, not a stub of ours)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import boto3
import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.appdeploy.ecs.plugins.modules import ecs_service_scaling as mod

moto = pytest.importorskip("moto")

LABEL = "app/web/50dc6c495c0c9188/targetgroup/web/6d0ecf831eec9f09"


def params(**over):
    base = dict(cluster="c1", service="web", state="present", min_capacity=2, max_capacity=6,
                policies=[dict(name="web-cpu", metric="cpu", target_value=60.0, resource_label=None,
                               scale_in_cooldown=300, scale_out_cooldown=60, disable_scale_in=False)],
                purge_policies=True)
    base.update(over)
    return base


@pytest.mark.parametrize("over, fragment", [
    (dict(min_capacity=None), "min_capacity and max_capacity are required"),
    (dict(min_capacity=-1), "min_capacity is -1"),
    (dict(min_capacity=5, max_capacity=3), "max_capacity (3) is below min_capacity (5)"),
    (dict(policies=[dict(name="a", metric="cpu", target_value=0.0, resource_label=None, scale_in_cooldown=1,
                         scale_out_cooldown=1, disable_scale_in=False)]), "target_value is 0.0"),
    (dict(policies=[dict(name="a", metric="alb_requests_per_target", target_value=5.0, resource_label="bad",
                         scale_in_cooldown=1, scale_out_cooldown=1, disable_scale_in=False)]), "resource_label 'bad'"),
    (dict(policies=[dict(name="a", metric="cpu", target_value=5.0, resource_label=LABEL, scale_in_cooldown=1,
                         scale_out_cooldown=1, disable_scale_in=False)]), "only allowed with metric alb_requests_per_target"),
    (dict(policies=[dict(name="a", metric="cpu", target_value=5.0, resource_label=None, scale_in_cooldown=-1,
                         scale_out_cooldown=1, disable_scale_in=False)]), "scale_in_cooldown is -1"),
])
def test_validate_names_the_option(over, fragment):
    assert fragment in mod.validate(params(**over))


def test_validate_accepts_good_input_and_absent_without_sizes():
    assert mod.validate(params()) is None
    assert mod.validate(params(state="absent", min_capacity=None, max_capacity=None, policies=[])) is None


def test_plan_from_nothing_registers_then_creates():
    calls, after = mod.plan(None, {}, params())
    assert [c[0] for c in calls] == ["register", "put_policy"]
    assert after["min_capacity"] == 2 and list(after["policies"]) == ["web-cpu"]


def test_plan_no_change_when_aws_matches():
    config = mod.desired_configuration(params()["policies"][0])
    calls, dummy = mod.plan({"min_capacity": 2, "max_capacity": 6}, {"web-cpu": mod.normalise_configuration(config)}, params())
    assert calls == []


def test_plan_updates_target_and_purges_foreign_policy():
    config = mod.desired_configuration(params()["policies"][0])
    calls, after = mod.plan({"min_capacity": 1, "max_capacity": 6}, {"web-cpu": config, "old": config}, params())
    assert [c[0] for c in calls] == ["register", "delete_policy"]
    assert "old" not in after["policies"]
    calls, after = mod.plan({"min_capacity": 2, "max_capacity": 6}, {"web-cpu": config, "old": config}, params(purge_policies=False))
    assert calls == [] and "old" in after["policies"]


def test_plan_absent_deletes_policies_then_deregisters():
    config = mod.desired_configuration(params()["policies"][0])
    calls, dummy = mod.plan({"min_capacity": 2, "max_capacity": 6}, {"web-cpu": config}, params(state="absent"))
    assert [c[0] for c in calls] == ["delete_policy", "deregister"]
    assert mod.plan(None, {}, params(state="absent"))[0] == []


class Done(Exception):
    def __init__(self, result, failed=False):
        super().__init__(result.get("msg"))
        self.result = result
        self.failed = failed


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_URL", raising=False)

    def exit_json(self, **kwargs):
        raise Done(kwargs)

    def fail_json(self, **kwargs):
        raise Done(kwargs, failed=True)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    with moto.mock_aws():
        ecs = boto3.client("ecs", region_name="eu-central-1")
        ecs.create_cluster(clusterName="c1")
        ecs.register_task_definition(family="web", containerDefinitions=[{"name": "app", "image": "x", "memory": 128}])
        ecs.create_service(cluster="c1", serviceName="web", taskDefinition="web", desiredCount=2)
        yield boto3.client("application-autoscaling", region_name="eu-central-1")


def run(args, check=False, diff=False):
    args = dict(args)
    args["_ansible_check_mode"] = check
    args["_ansible_diff"] = diff
    with patch_module_args(args):
        with pytest.raises(Done) as info:
            mod.main()
    return info.value


ARGS = dict(cluster="c1", service="web", min_capacity=2, max_capacity=6,
            policies=[dict(name="web-cpu", metric="cpu", target_value=60),
                      dict(name="web-req", metric="alb_requests_per_target", target_value=1000, resource_label=LABEL)])


def targets(client):
    return client.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]


def policies(client):
    return sorted(p["PolicyName"] for p in client.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"])


def test_check_mode_on_nothing_predicts_and_touches_nothing(aws):
    done = run(ARGS, check=True, diff=True)
    assert not done.failed and done.result["changed"]
    assert done.result["diff"]["before"]["min_capacity"] is None and done.result["diff"]["after"]["max_capacity"] == 6
    assert targets(aws) == [] and policies(aws) == []


def test_create_then_rerun_is_unchanged_then_update_then_remove_twice(aws):
    first = run(ARGS)
    assert first.result["changed"] and first.result["policies"] == ["web-cpu", "web-req"]
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets(aws)] == [(2, 6)]
    assert policies(aws) == ["web-cpu", "web-req"]

    second = run(ARGS)
    assert not second.result["changed"], second.result["actions"]

    changed_target = dict(ARGS, max_capacity=8)
    predicted = run(changed_target, check=True)
    assert predicted.result["changed"] and [(t["MinCapacity"], t["MaxCapacity"]) for t in targets(aws)] == [(2, 6)]
    assert run(changed_target).result["changed"]
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets(aws)] == [(2, 8)]

    fewer = dict(changed_target, policies=[ARGS["policies"][0]])
    assert run(fewer).result["actions"] == ["Deleted policy web-req."]
    assert policies(aws) == ["web-cpu"]

    absent = dict(cluster="c1", service="web", state="absent")
    assert run(absent, check=True).result["changed"] and targets(aws)
    gone = run(absent)
    assert gone.result["changed"] and targets(aws) == [] and policies(aws) == []
    assert not run(absent).result["changed"]


def test_bad_input_fails_before_any_call(aws, monkeypatch):
    calls = []
    monkeypatch.setattr(mod.Scaling, "read", lambda self: calls.append("read"))
    done = run(dict(ARGS, min_capacity=7, max_capacity=3))
    assert done.failed and "max_capacity (3) is below min_capacity (7)" in done.result["msg"]
    assert calls == []
    assert json.dumps(done.result)  # plain data, no exception objects
