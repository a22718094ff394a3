"""Waiting for rollouts: success, circuit-breaker FAILED with rollback, timeout, several services at once.

moto never starts tasks (its deployment stays IN_PROGRESS and UpdateService does not touch deployments[]), so these
tests run moto in-process (ThreadedMotoServer inside the pytest process) and point the module at it. A thread,
FakeScheduler, stands in for the ECS scheduler: when a service's taskDefinition moves, it rewrites that service's
deployments and events in moto's ECS backend the way ECS would (new PRIMARY deployment, then COMPLETED and the old
one drained, or FAILED and rolled back, or stuck). Images still go to the local stack's real registry and engine.
"""
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest

from deploy_helpers import STACK, boto, docker_client, registry_digest, requires_stack, run_deploy, spec, unique, write_app

pytestmark = requires_stack

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield "http://%s:%d" % (host, port)
    server.stop()


def ecs_backend():
    from moto.backends import get_backend
    return get_backend("ecs")[ACCOUNT][STACK["AWS_DEFAULT_REGION"]]


class FakeScheduler(threading.Thread):
    """Moves moto's service deployments like the ECS scheduler would. mode: complete, fail, hang."""

    def __init__(self, cluster, services, mode, settle=1.5):
        super().__init__(daemon=True)
        self.cluster, self.services, self.mode, self.settle = cluster, services, mode, settle
        self.stop_event = threading.Event()
        self.started_at = {}
        self.done = set()

    @staticmethod
    def event(svc, message):
        svc.events = [{"id": str(uuid.uuid4()), "createdAt": datetime.now(timezone.utc),
                       "message": "(service %s) %s" % (svc.name, message)}] + list(svc.events)

    @staticmethod
    def deployment(td, status, state, desired, running=0, reason=None):
        now = datetime.now(timezone.utc)
        return {"id": "ecs-svc/%d" % uuid.uuid4().int, "status": status, "taskDefinition": td, "rolloutState": state,
                "rolloutStateReason": reason or "ECS deployment in progress.", "desiredCount": desired,
                "runningCount": running, "pendingCount": desired - running, "failedTasks": 0,
                "createdAt": now, "updatedAt": now, "launchType": "EC2"}

    def step(self, svc):
        primary = next((d for d in svc.deployments if d["status"] == "PRIMARY"), None)
        key = svc.name
        if key not in self.started_at:
            if primary is not None and primary["taskDefinition"] != svc.task_definition:
                old = dict(primary, status="ACTIVE")
                self.old_td = primary["taskDefinition"]
                svc.deployments = [self.deployment(svc.task_definition, "PRIMARY", "IN_PROGRESS", svc.desired_count),
                                   old]
                self.event(svc, "has started 1 tasks: (task %s)." % uuid.uuid4().hex[:8])
                self.started_at[key] = (time.monotonic(), primary["taskDefinition"])
            return
        t0, old_td = self.started_at[key]
        if self.mode == "hang" or time.monotonic() - t0 < self.settle or key in self.done:
            return
        self.done.add(key)
        new = svc.deployments[0]
        if self.mode == "complete":
            svc.deployments = [dict(new, rolloutState="COMPLETED", runningCount=svc.desired_count, pendingCount=0,
                                    rolloutStateReason="ECS deployment %s completed." % new["id"])]
            svc.running_count = svc.desired_count
            self.event(svc, "has reached a steady state.")
        elif self.mode == "fail":
            failed = dict(new, status="ACTIVE", rolloutState="FAILED",
                          rolloutStateReason="ECS deployment circuit breaker: tasks failed to start.")
            svc.deployments = [self.deployment(old_td, "PRIMARY", "IN_PROGRESS", svc.desired_count), failed]
            svc.task_definition = old_td
            self.event(svc, "deployment %s deployment failed: tasks failed to start." % new["id"])
            self.event(svc, "rolling back to deployment with taskDefinition %s." % old_td)

    def run(self):
        backend = ecs_backend()
        while not self.stop_event.is_set():
            for name in self.services:
                svc = backend.services.get("%s:%s" % (self.cluster, name))
                if svc is not None:
                    self.step(svc)
            time.sleep(0.1)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.join(5)


@pytest.fixture(scope="module")
def env(moto_endpoint, tmp_path_factory):
    name = unique("it-deploy-wait")
    repo = "%s/app" % name
    boto("ecr", moto_endpoint).create_repository(repositoryName=repo)
    boto("ecs", moto_endpoint).create_cluster(clusterName=name)
    root = tmp_path_factory.mktemp("wait")
    write_app(str(root / "ctx"))
    yield {"name": name, "repo": repo, "ctx": str(root / "ctx"), "tmp": root, "endpoint": moto_endpoint,
           "ecs": boto("ecs", moto_endpoint)}
    try:  # the in-process moto goes away with the test process; the built image stays in the shared engine
        client = docker_client()
        for image in client.images.list(name="%s/%s" % (STACK["LOCAL_REGISTRY"], repo)):
            client.images.remove(image.id, force=True)
    except Exception:  # best effort on a shared stack
        pass


def deploy(env, services, value, **extra):
    a = {"path": env["ctx"], "repository": env["repo"], "registry": STACK["LOCAL_REGISTRY"], "network_mode": "host",
         "cluster": env["name"], "service": services, "container": "app",
         "task_definition": spec(env["name"], env=[{"name": "RELEASE", "value": value}]),
         "wait": True, "wait_timeout": 30, "wait_delay": 1,
         "service_settings": {"deployment_circuit_breaker": {"enable": True, "rollback": True}}}
    a.update(extra)
    return run_deploy(a, env["tmp"], endpoint=env["endpoint"])


@pytest.fixture(scope="module")
def created(env):
    """Create the services (no wait: moto's initial deployment never completes), image built and pushed once."""
    rc, r = deploy(env, ["w-ok", "w-fail", "w-hang", "w-a", "w-b"], "1", wait=False)
    assert rc == 0, r.get("msg")
    assert registry_digest(env["repo"], r["fingerprint"]["tag"]) == r["image_digest"]
    return r


def test_wait_success(env, created):
    with FakeScheduler(env["name"], ["w-ok"], "complete"):
        rc, r = deploy(env, ["w-ok"], "2")
    assert rc == 0, r.get("msg")
    s = r["services"][0]
    assert s["rollout_state"] == "COMPLETED" and s["deployments"] == 1
    assert s["running_task_definition_arn"] == r["task_definition_arn"] != r["previous_task_definition_arn"]
    assert any("has reached a steady state" in e for e in s["events"])
    assert r["actions"][-1] == "Service w-ok completed its rollout on %s." % r["task_definition_arn"]


def test_wait_failed_rollback(env, created):
    ecs = env["ecs"]
    with FakeScheduler(env["name"], ["w-fail"], "fail"):
        rc, r = deploy(env, ["w-fail"], "3")
    assert rc != 0
    old, new = r["previous_task_definition_arn"], r["task_definition_arn"]
    assert "deployment of %s to service w-fail failed (ECS deployment circuit breaker: tasks failed to start.)" % new \
        in r["msg"]
    assert "the service now runs %s" % old in r["msg"]
    assert "rolling back" in r["msg"]
    assert r["changed"] is True  # a revision was registered and the service updated before it failed
    svc = ecs.describe_services(cluster=env["name"], services=["w-fail"])["services"][0]
    assert svc["taskDefinition"] == old
    assert ecs.describe_task_definition(taskDefinition=old)["taskDefinition"]["status"] == "ACTIVE"  # not deregistered


def test_wait_timeout(env, created):
    with FakeScheduler(env["name"], ["w-hang"], "hang"):
        start = time.monotonic()
        rc, r = deploy(env, ["w-hang"], "4", wait_timeout=3)
        elapsed = time.monotonic() - start
    assert rc != 0
    assert r["msg"].startswith("timed out after 3s: service w-hang did not reach a steady state on %s"
                               % r["task_definition_arn"])
    assert "has started 1 tasks" in r["msg"] and "it now runs %s" % r["task_definition_arn"] in r["msg"]
    assert elapsed < 20


def test_wait_for_two_services_concurrently(env, created):
    with FakeScheduler(env["name"], ["w-a", "w-b"], "complete", settle=3):
        start = time.monotonic()
        rc, r = deploy(env, ["w-a", "w-b"], "5")
        elapsed = time.monotonic() - start
    assert rc == 0, r.get("msg")
    assert [s["rollout_state"] for s in r["services"]] == ["COMPLETED", "COMPLETED"]
    # one polling loop for both: the run takes about one settle period, not two (ansible overhead ~2 s included)
    assert elapsed < 3 * 2 + 2.5, elapsed
    rc, r = deploy(env, ["w-a", "w-b"], "5")
    assert rc == 0 and r["changed"] is False, r["actions"]
