"""appdeploy.ecs.ecr_repository driven through main() against moto in-process (mock_aws): create, no change (three
reads), check mode, drift repair, the encryption that cannot change, and bad input."""
import json

import boto3
import botocore.client
import pytest
from moto import mock_aws

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.appdeploy.ecs.plugins.modules import ecr_repository as m

REGION = "eu-central-1"
LIFECYCLE = {"rules": [{"rulePriority": 1, "description": "keep 30", "action": {"type": "expire"},
                        "selection": {"tagStatus": "tagged", "tagPatternList": ["*"], "countType": "imageCountMoreThan",
                                      "countNumber": 30}}]}
POLICY = {"Version": "2012-10-17", "Statement": [{"Sid": "Pull", "Effect": "Allow",
                                                  "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                                                  "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]}
ARGS = dict(name="shop/web", lifecycle_policy=LIFECYCLE, repository_policy=POLICY)
NO_POLICY = dict(name="shop/web", lifecycle_policy=LIFECYCLE, repository_policy={})


class Exit(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


@pytest.fixture(autouse=True)
def exits(monkeypatch):
    def exit_json(self, **kw):
        kw.setdefault("changed", False)
        raise Exit(kw)

    def fail_json(self, **kw):
        kw["failed"] = True
        raise Exit(kw)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)


@pytest.fixture
def ecr(monkeypatch):
    for k in ("AWS_ENDPOINT_URL", "AWS_URL", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    with mock_aws():
        yield boto3.client("ecr", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")


@pytest.fixture
def calls(monkeypatch):
    seen = []
    original = botocore.client.BaseClient._make_api_call

    def record(self, operation, params):
        seen.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    return seen


def run(check=False, **args):
    args = dict(args, region=REGION, access_key="a", secret_key="b", _ansible_check_mode=check, _ansible_diff=True)
    with patch_module_args(args):
        with pytest.raises(Exit) as e:
            m.main()
    return e.value.result


def test_create_then_no_change_in_three_reads(ecr, calls):
    first = run(**ARGS)
    assert first["changes"] == ["create repository shop/web (IMMUTABLE, scan on push on, AES256)",
                                "put lifecycle policy", "set repository policy"]
    repo = ecr.describe_repositories(repositoryNames=["shop/web"])["repositories"][0]
    assert first["repository"]["repositoryArn"] == repo["repositoryArn"]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert repo["encryptionConfiguration"]["encryptionType"] == "AES256"
    assert json.loads(ecr.get_lifecycle_policy(repositoryName="shop/web")["lifecyclePolicyText"]) == LIFECYCLE
    del calls[:]
    second = run(**ARGS)
    assert not second["changed"] and second["changes"] == []
    assert second["repository"]["repositoryUri"] == repo["repositoryUri"]
    assert calls == ["DescribeRepositories", "GetLifecyclePolicy", "GetRepositoryPolicy"]


def test_check_mode_creates_nothing(ecr):
    res = run(check=True, **ARGS)
    assert res["changed"] and res["repository"] == {}
    assert ecr.describe_repositories()["repositories"] == []
    assert res["diff"]["after"].splitlines() == res["changes"]


def test_drift_is_predicted_then_repaired(ecr):
    run(**ARGS)
    ecr.put_image_tag_mutability(repositoryName="shop/web", imageTagMutability="MUTABLE")
    ecr.put_image_scanning_configuration(repositoryName="shop/web", imageScanningConfiguration={"scanOnPush": False})
    ecr.delete_lifecycle_policy(repositoryName="shop/web")
    ecr.set_repository_policy(repositoryName="shop/web", policyText=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]}))
    expected = ["set tag mutability IMMUTABLE", "turn scan on push on", "put lifecycle policy", "set repository policy"]
    assert run(check=True, **ARGS)["changes"] == expected
    assert ecr.describe_repositories()["repositories"][0]["imageTagMutability"] == "MUTABLE"
    assert run(**ARGS)["changes"] == expected
    assert json.loads(ecr.get_repository_policy(repositoryName="shop/web")["policyText"]) == POLICY
    assert run(**ARGS)["changes"] == []
    assert run(**NO_POLICY)["changes"] == ["delete repository policy"]


def test_the_encryption_of_an_existing_repository_is_not_changed(ecr):
    run(**ARGS)
    res = run(**dict(ARGS, **{"encryption_type": "KMS"}))
    assert res.get("failed")
    assert res["msg"].startswith("encryption_type / kms_key: repository shop/web is encrypted with AES256")
    assert ecr.describe_repositories()["repositories"][0]["encryptionConfiguration"]["encryptionType"] == "AES256"


@pytest.mark.parametrize("change, message", [
    (dict(name="Shop"), "name 'Shop' is not a valid repository name"),
    (dict(name="a//b"), "name 'a//b' is not a valid repository name"),
    (dict(kms_key="alias/x"), "kms_key is set but encryption_type is AES256"),
    (dict(lifecycle_policy={"rule": []}), "lifecycle_policy must be a dict with a list of rules"),
])
def test_bad_input_fails_before_any_change(ecr, change, message):
    res = run(**dict(ARGS, **change))
    assert res.get("failed") and res["msg"].startswith(message), res
    assert ecr.describe_repositories()["repositories"] == []
