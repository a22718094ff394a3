"""appdeploy.ecs.ecr_repository driven through main() against moto in-process (mock_aws): create, no change (three
reads), check mode, drift repair, the encryption that cannot change, and bad input."""
import json

import boto3
import pytest
from moto import mock_aws

from ansible_collections.appdeploy.ecs.plugins.modules import ecr_repository as m
from harness import REGION, run_module

pytestmark = pytest.mark.usefixtures("module_exits")

LIFECYCLE = {"rules": [{"rulePriority": 1, "description": "keep 30", "action": {"type": "expire"},
                        "selection": {"tagStatus": "tagged", "tagPatternList": ["*"], "countType": "imageCountMoreThan",
                                      "countNumber": 30}}]}
POLICY = {"Version": "2012-10-17", "Statement": [{"Sid": "Pull", "Effect": "Allow",
                                                  "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                                                  "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]}
ARGS = dict(name="shop/web", lifecycle_policy=LIFECYCLE, repository_policy=POLICY)
NO_POLICY = dict(name="shop/web", lifecycle_policy=LIFECYCLE, repository_policy={})


@pytest.fixture
def ecr(no_aws_env):
    with mock_aws():
        yield boto3.client("ecr", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")


def run(check=False, **args):
    return run_module(m.main, args, check)


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
