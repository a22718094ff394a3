"""appdeploy.ecs.ecs_capacity_provider driven through main(): against moto in-process (mock_aws) for create, no
change, update, delete and check mode, and with a botocore Stubber client where an AWS error has to be forced."""
import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.amazon.aws.plugins.module_utils import modules as aws_modules
from ansible_collections.appdeploy.ecs.plugins.modules import ecs_capacity_provider as m

REGION = "eu-central-1"
ASG = "arn:aws:autoscaling:%s:123456789012:autoScalingGroup:0a1b2c3d:autoScalingGroupName/web-ecs" % REGION
ASG2 = "arn:aws:autoscaling:%s:123456789012:autoScalingGroup:9f8e7d6c:autoScalingGroupName/other" % REGION


class Exit(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


class Failed(Exit):
    pass


@pytest.fixture(autouse=True)
def exits(monkeypatch):
    def exit_json(self, **kw):
        kw.setdefault("changed", False)
        raise Exit(kw)

    def fail_json(self, **kw):
        kw["failed"] = True
        raise Failed(kw)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(m.time, "sleep", lambda s: None)


@pytest.fixture
def aws(monkeypatch):
    for k in ("AWS_ENDPOINT_URL", "AWS_URL", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    with mock_aws():
        yield boto3.client("ecs", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")


def run(check=False, diff=False, **args):
    args = dict(args, region=REGION, access_key="a", secret_key="b", _ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(args):
        with pytest.raises(Exit) as e:
            m.main()
    if isinstance(e.value, Failed):
        raise e.value
    return e.value.result


def provider(ecs, name="web-ec2"):
    found = ecs.describe_capacity_providers(capacityProviders=[name])["capacityProviders"]
    return found[0] if found and found[0]["status"] == "ACTIVE" else None


def cluster(ecs, name="web"):
    found = ecs.describe_clusters(clusters=[name], include=["SETTINGS", "TAGS"])["clusters"]
    return found[0] if found and found[0]["status"] == "ACTIVE" else None


FULL = dict(
    name="web-ec2", auto_scaling_group_arn=ASG,
    managed_scaling=dict(status="enabled", target_capacity=100), managed_draining="enabled",
    tags={"appdeploy:stack": "web"}, cluster="web", cluster_capacity_providers=["FARGATE_SPOT"],
    default_capacity_provider_strategy=[dict(capacity_provider="web-ec2", weight=1, base=0)],
    container_insights="enabled", cluster_tags={"appdeploy:stack": "web"},
)


def test_create_then_no_change(aws):
    first = run(**FULL)
    assert first["changed"]
    assert "created capacity provider web-ec2" in first["actions"]
    assert any(a.startswith("created cluster web") for a in first["actions"])
    p = provider(aws)
    assert p["autoScalingGroupProvider"]["autoScalingGroupArn"] == ASG
    assert p["autoScalingGroupProvider"]["managedScaling"]["status"] == "ENABLED"
    c = cluster(aws)
    assert sorted(c["capacityProviders"]) == ["FARGATE_SPOT", "web-ec2"]
    assert c["defaultCapacityProviderStrategy"] == [{"capacityProvider": "web-ec2", "weight": 1, "base": 0}]
    assert {"name": "containerInsights", "value": "enabled"} in c["settings"]
    assert first["capacity_provider"]["tags"] == {"appdeploy:stack": "web"}
    assert first["cluster"]["cluster_name"] == "web"

    second = run(**FULL)
    assert not second["changed"]
    assert second["actions"] == []
    assert second["cluster"]["capacity_providers"] == c["capacityProviders"]


def test_check_mode_create_predicts_and_creates_nothing(aws):
    res = run(check=True, diff=True, **FULL)
    assert res["changed"]
    assert all(a.startswith("would have ") for a in res["actions"])
    assert provider(aws) is None
    assert cluster(aws) is None
    assert res["diff"]["before"]["capacity_provider"] == {}
    assert res["diff"]["after"]["capacity_provider"]["auto_scaling_group_arn"] == ASG
    assert res["diff"]["after"]["cluster"]["capacity_providers"] == ["FARGATE_SPOT", "web-ec2"]


def test_update_scaling_tags_and_insights_with_diff(aws):
    run(**FULL)
    args = {**FULL, "managed_scaling": dict(status="enabled", target_capacity=80),
            "tags": {"team": "shop"}, "container_insights": "enhanced"}
    check = run(check=True, **args)
    assert check["changed"]
    assert provider(aws)["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"] == 100

    res = run(diff=True, **args)
    assert res["changed"]
    assert res["diff"]["before"]["capacity_provider"]["managed_scaling"]["target_capacity"] == 100
    assert res["diff"]["after"]["capacity_provider"]["managed_scaling"]["target_capacity"] == 80
    assert res["diff"]["after"]["capacity_provider"]["tags"] == {"team": "shop"}
    assert res["diff"]["after"]["cluster"]["container_insights"] == "enhanced"
    assert provider(aws)["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"] == 80
    assert {"name": "containerInsights", "value": "enhanced"} in cluster(aws)["settings"]
    assert not run(**args)["changed"]


def test_unset_options_leave_the_provider_alone(aws):
    run(**FULL)
    res = run(name="web-ec2", cluster="web")
    assert not res["changed"]
    assert res["capacity_provider"]["auto_scaling_group_provider"]["managed_scaling"]["status"] == "ENABLED"


def test_strategy_replaces_and_other_providers_stay(aws):
    run(**FULL)
    res = run(name="FARGATE", cluster="web",
              default_capacity_provider_strategy=[dict(capacity_provider="FARGATE", weight=1, base=1)])
    assert res["changed"]
    c = cluster(aws)
    assert sorted(c["capacityProviders"]) == ["FARGATE", "FARGATE_SPOT", "web-ec2"]
    assert c["defaultCapacityProviderStrategy"] == [{"capacityProvider": "FARGATE", "weight": 1, "base": 1}]
    purged = run(name="FARGATE", cluster="web", purge_cluster_capacity_providers=True)
    assert purged["changed"]
    assert cluster(aws)["capacityProviders"] == ["FARGATE"]


def test_changing_the_group_of_a_provider_fails(aws):
    run(**FULL)
    with pytest.raises(Failed) as e:
        run(**{**FULL, "auto_scaling_group_arn": ASG2})
    assert e.value.result["msg"].startswith("auto_scaling_group_arn:")
    assert provider(aws)["autoScalingGroupProvider"]["autoScalingGroupArn"] == ASG


def test_create_needs_the_group(aws):
    with pytest.raises(Failed) as e:
        run(name="web-ec2")
    assert "auto_scaling_group_arn is required" in e.value.result["msg"]


def test_delete_detaches_then_deletes_and_is_rerunnable(aws):
    run(**FULL)
    check = run(check=True, name="web-ec2", cluster="web", state="absent")
    assert check["changed"]
    assert provider(aws) is not None
    res = run(name="web-ec2", cluster="web", state="absent")
    assert res["changed"]
    assert res["actions"][0].startswith("detached web-ec2 from")
    assert provider(aws) is None
    c = cluster(aws)
    assert c["capacityProviders"] == ["FARGATE_SPOT"]
    assert c["defaultCapacityProviderStrategy"] == []
    again = run(name="web-ec2", cluster="web", state="absent")
    assert not again["changed"]
    assert not run(name="web-ec2", cluster="nowhere", state="absent")["changed"]


@pytest.mark.parametrize("args, needle", [
    (dict(name="aws-thing"), "name 'aws-thing' is not allowed"),
    (dict(name="bad name!"), "name 'bad name!' is not allowed"),
    (dict(name="FARGATE", auto_scaling_group_arn=ASG, cluster="c"), "auto_scaling_group_arn: not allowed with the AWS-managed"),
    (dict(name="p", auto_scaling_group_arn="arn:aws:ec2:x"), "auto_scaling_group_arn 'arn:aws:ec2:x' is not"),
    (dict(name="p", managed_scaling=dict(target_capacity=0)), "managed_scaling.target_capacity is 0"),
    (dict(name="p", managed_scaling=dict(minimum_scaling_step_size=5, maximum_scaling_step_size=2)),
     "managed_scaling.minimum_scaling_step_size (5) is above"),
    (dict(name="p", managed_termination_protection="enabled", managed_scaling=dict(status="disabled")),
     "managed_termination_protection=enabled needs"),
    (dict(name="p", container_insights="enabled"), "container_insights: needs cluster"),
    (dict(name="p", cluster="c", default_capacity_provider_strategy=[dict(capacity_provider="p", weight=2000)]),
     "weight 2000 of p"),
    (dict(name="p", cluster="c",
          default_capacity_provider_strategy=[dict(capacity_provider="p", base=1), dict(capacity_provider="FARGATE", base=1)]),
     "only one provider may have a base"),
    (dict(name="p", cluster="c", cluster_capacity_providers=["FARGATE"],
          default_capacity_provider_strategy=[dict(capacity_provider="p"), dict(capacity_provider="FARGATE")]),
     "cannot mix FARGATE"),
    (dict(name="p", cluster="c", purge_cluster_capacity_providers=True,
          default_capacity_provider_strategy=[dict(capacity_provider="q")]), "names q, which would not be attached"),
    (dict(cluster="c", state="absent"), "name is required with state=absent"),
    (dict(), "name or cluster is required"),
])
def test_bad_input_fails_before_any_aws_call(monkeypatch, args, needle):
    monkeypatch.setattr(aws_modules, "boto3_conn", lambda *a, **k: pytest.fail("no AWS call expected"))
    with pytest.raises(Failed) as e:
        run(**args)
    assert needle in e.value.result["msg"]


def test_aws_error_is_reported_with_what_was_done(monkeypatch):
    client = boto3.client("ecs", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    stub = Stubber(client)
    stub.add_response("describe_capacity_providers", {"capacityProviders": [], "failures": []},
                      {"capacityProviders": ["web-ec2"], "include": ["TAGS"]})
    stub.add_client_error("create_capacity_provider", "LimitExceededException", "too many providers")
    stub.activate()
    monkeypatch.setattr(aws_modules, "boto3_conn", lambda module, conn_type, resource, **kw: client)
    with pytest.raises(Failed) as e:
        run(name="web-ec2", auto_scaling_group_arn=ASG)
    assert "created capacity provider web-ec2" in e.value.result["msg"]
    assert "too many providers" in e.value.result["msg"]
    stub.assert_no_pending_responses()


def test_a_cluster_update_in_progress_is_waited_for(monkeypatch):
    client = boto3.client("ecs", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    stub = Stubber(client)
    arn = "arn:aws:ecs:%s:123456789012:cluster/web" % REGION
    base = {"clusterArn": arn, "clusterName": "web", "status": "ACTIVE", "capacityProviders": [],
            "defaultCapacityProviderStrategy": [], "settings": [], "tags": []}
    # One read of the cluster before the change (run() passes it on; no second DescribeClusters), then the wait.
    stub.add_response("describe_clusters", {"clusters": [base], "failures": []})
    stub.add_response("put_cluster_capacity_providers", {"cluster": base})
    busy = dict(base, capacityProviders=["FARGATE"], attachmentsStatus="UPDATE_IN_PROGRESS")
    done = dict(busy, attachmentsStatus="UPDATE_COMPLETE")
    stub.add_response("describe_clusters", {"clusters": [busy], "failures": []})
    stub.add_response("describe_clusters", {"clusters": [done], "failures": []})
    stub.activate()
    monkeypatch.setattr(aws_modules, "boto3_conn", lambda module, conn_type, resource, **kw: client)
    res = run(name="FARGATE", cluster="web")
    assert res["changed"]
    assert res["cluster"]["attachments_status"] == "UPDATE_COMPLETE"
    stub.assert_no_pending_responses()
