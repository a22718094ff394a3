# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's retry decorator retries ECS/ECR throttling (botocore Stubber answers, so botocore's own
retry handler never runs: whatever retrying happens is the decorator's)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.appdeploy.ecs.plugins.module_utils.retries import retry_decorator

TD = {"taskDefinition": {"taskDefinitionArn": "arn:aws:ecs:eu-central-1:123456789012:task-definition/web:1",
                         "family": "web", "revision": 1, "containerDefinitions": []}}


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    import time
    monkeypatch.setattr(time, "sleep", lambda seconds: None)


def client_with(decorator, errors):
    ecs = boto3.client("ecs", region_name="eu-central-1", aws_access_key_id="a", aws_secret_access_key="b")
    stub = Stubber(ecs)
    for code in errors:
        stub.add_client_error("describe_task_definition", service_error_code=code, http_status_code=400)
    stub.add_response("describe_task_definition", TD)
    stub.activate()
    return RetryingBotoClientWrapper(ecs, decorator), stub


@pytest.mark.parametrize("code", ["ThrottlingException", "Throttling", "RequestLimitExceeded"])
def test_throttling_is_retried_until_it_succeeds(code):
    client, stub = client_with(retry_decorator(), [code, code])
    got = client.describe_task_definition(aws_retry=True, taskDefinition="web:1")
    assert got["taskDefinition"]["family"] == "web"
    stub.assert_no_pending_responses()


def test_plain_awsretry_gives_up_on_ecs_throttling_at_once():
    # why the collection has its own decorator: amazon.aws retries "Throttling" but not "ThrottlingException"
    client, dummy = client_with(AWSRetry.jittered_backoff(), ["ThrottlingException"])
    with pytest.raises(ClientError, match="ThrottlingException"):
        client.describe_task_definition(aws_retry=True, taskDefinition="web:1")


def test_extra_codes_are_retried_and_others_are_not():
    client, stub = client_with(retry_decorator("UpdateInProgressException"), ["UpdateInProgressException"])
    assert client.describe_task_definition(aws_retry=True, taskDefinition="web:1")["taskDefinition"]["revision"] == 1
    stub.assert_no_pending_responses()
    client, dummy = client_with(retry_decorator(), ["ClientException"])
    with pytest.raises(ClientError, match="ClientException"):
        client.describe_task_definition(aws_retry=True, taskDefinition="web:1")
