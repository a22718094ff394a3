"""Fixtures for the unit tests that drive a module's main() against moto in-process (mock_aws); the plain helpers
are in harness.py."""
import botocore.client
import pytest

from ansible.module_utils import basic
from harness import ModuleExit


@pytest.fixture
def module_exits(monkeypatch):
    def exit_json(self, **kw):
        kw.setdefault("changed", False)
        raise ModuleExit(kw)

    def fail_json(self, **kw):
        kw["failed"] = True
        raise ModuleExit(kw)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)


@pytest.fixture
def no_aws_env(monkeypatch):
    """mock_aws intercepts boto3 calls only when no endpoint from the environment sends them elsewhere."""
    for key in ("AWS_ENDPOINT_URL", "AWS_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def calls(monkeypatch):
    """Every AWS operation any client calls, in order."""
    seen = []
    original = botocore.client.BaseClient._make_api_call

    def record(self, operation, params):
        seen.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    return seen
