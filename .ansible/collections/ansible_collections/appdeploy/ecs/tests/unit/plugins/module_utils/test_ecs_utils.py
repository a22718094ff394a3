"""Task definition normalisation, service settings drift and the rollout wait loop."""
import copy
import datetime

import pytest

from ansible_collections.appdeploy.ecs.plugins.module_utils import ecs as e

SPEC = {
    "family": "web",
    "taskRoleArn": "app-task",
    "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "0.25 vCPU",
    "memory": "0.5 GB",
    "containerDefinitions": [
        {"name": "app", "image": "repo@sha256:aaa", "essential": True,
         "portMappings": [{"containerPort": 8080}],
         "environment": [{"name": "B", "value": 2}, {"name": "A", "value": "1"}, {"name": "C", "value": True}],
         "secrets": [{"name": "Z", "valueFrom": "arn:z"}, {"name": "Y", "valueFrom": "arn:y"}]},
        {"name": "sidecar", "image": "busybox", "essential": False},
    ],
}

# What ECS (and moto) return for SPEC: defaults filled in, lists reordered, units converted, ARNs expanded.
DESCRIBED = {
    "taskDefinitionArn": "arn:aws:ecs:eu-central-1:123456789012:task-definition/web:3",
    "revision": 3, "status": "ACTIVE", "compatibilities": ["EC2", "FARGATE"],
    "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}],
    "registeredAt": datetime.datetime(2026, 11, 26), "registeredBy": "arn:aws:iam::123456789012:root",
    "family": "web",
    "taskRoleArn": "arn:aws:iam::123456789012:role/app-task",
    "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
    "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
    "volumes": [], "placementConstraints": [], "enableFaultInjection": False,
    "containerDefinitions": [
        {"name": "sidecar", "image": "busybox", "essential": False, "cpu": 0, "mountPoints": [], "volumesFrom": [],
         "portMappings": [], "environment": [], "systemControls": []},
        {"name": "app", "image": "repo@sha256:aaa", "essential": True, "cpu": 0, "mountPoints": [], "volumesFrom": [],
         "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
         "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "true"}],
         "secrets": [{"name": "Y", "valueFrom": "arn:y"}, {"name": "Z", "valueFrom": "arn:z"}],
         "versionConsistency": "enabled", "systemControls": []},
    ],
}


def test_described_equals_spec_after_normalisation():
    assert e.normalise_task_definition(DESCRIBED) == e.normalise_task_definition(SPEC)


def test_moto_round_trip_defaults():
    spec = {"family": "f", "containerDefinitions": [{"name": "app", "image": "i", "memory": 64}]}
    moto = {"family": "f", "networkMode": "bridge", "taskDefinitionArn": "arn:...:f:1", "revision": 1,
            "containerDefinitions": [{"name": "app", "image": "i", "memory": 64, "cpu": 0, "mountPoints": [],
                                      "volumesFrom": []}]}
    assert e.normalise_task_definition(spec) == e.normalise_task_definition(moto)


def changed(path_setter):
    d = copy.deepcopy(DESCRIBED)
    path_setter(d)
    return e.normalise_task_definition(d) != e.normalise_task_definition(SPEC)


@pytest.mark.parametrize("name,mutate", [
    ("env value", lambda d: d["containerDefinitions"][1]["environment"][0].update(value="other")),
    # same length, different content: community.aws ecs_taskdefinition compares list lengths only
    ("env renamed", lambda d: d["containerDefinitions"][1]["environment"][0].update(name="AA")),
    ("env values swapped", lambda d: (d["containerDefinitions"][1]["environment"][0].update(value="2"),
                                      d["containerDefinitions"][1]["environment"][1].update(value="1"))),
    ("secret source", lambda d: d["containerDefinitions"][1]["secrets"][0].update(valueFrom="arn:other")),
    ("image", lambda d: d["containerDefinitions"][1].update(image="repo@sha256:bbb")),
    ("cpu", lambda d: d.update(cpu="512")),
    ("role", lambda d: d.update(taskRoleArn="arn:aws:iam::123456789012:role/other")),
    ("essential", lambda d: d["containerDefinitions"][0].update(essential=True)),
    ("container cpu", lambda d: d["containerDefinitions"][1].update(cpu=128)),
    ("udp port", lambda d: d["containerDefinitions"][1]["portMappings"][0].update(protocol="udp")),
    ("extra container", lambda d: d["containerDefinitions"].append({"name": "x", "image": "y"})),
    ("mount", lambda d: d["containerDefinitions"][1].update(mountPoints=[{"sourceVolume": "v", "containerPath": "/v"}])),
])
def test_real_differences_are_detected(name, mutate):
    assert changed(mutate), name


def test_host_port_default_depends_on_network_mode():
    c = {"name": "a", "image": "i", "portMappings": [{"containerPort": 80, "hostPort": 80}]}
    assert "hostPort" not in e.normalise_container(c, "awsvpc")["portMappings"][0]
    assert e.normalise_container(c, "bridge")["portMappings"][0]["hostPort"] == 80
    c0 = {"name": "a", "image": "i", "portMappings": [{"containerPort": 80, "hostPort": 0}]}
    assert "hostPort" not in e.normalise_container(c0, "bridge")["portMappings"][0]


def test_health_check_defaults_dropped():
    a = {"name": "a", "image": "i", "healthCheck": {"command": ["CMD", "true"]}}
    b = {"name": "a", "image": "i", "healthCheck": {"command": ["CMD", "true"], "interval": 30, "timeout": 5,
                                                    "retries": 3, "startPeriod": 0}}
    assert e.normalise_container(a) == e.normalise_container(b)
    b["healthCheck"]["retries"] = 5
    assert e.normalise_container(a) != e.normalise_container(b)


def test_differences_sentences():
    before = e.normalise_task_definition(DESCRIBED)
    d = copy.deepcopy(SPEC)
    d["containerDefinitions"][0]["image"] = "repo@sha256:new"
    d["containerDefinitions"][0]["environment"].append({"name": "D", "value": "4"})
    d["memory"] = "1 GB"
    assert e.differences(before, e.normalise_task_definition(d)) == [
        "environment of container app", "image of container app", "memory"]


def test_set_container_image_and_missing_container():
    td = e.set_container_image(SPEC, "app", "new@sha256:1")
    assert e.container_image(td, "app") == "new@sha256:1"
    assert e.container_image(SPEC, "app") == "repo@sha256:aaa"  # input not mutated
    with pytest.raises(e.ECSError, match="container 'nope' is not in task definition web.*app, sidecar"):
        e.set_container_image(SPEC, "nope", "x")


def test_role_name():
    assert e.role_name("arn:aws:iam::1:role/path/x") == "x"
    assert e.role_name("x") == "x"


# ------------------------------------------------------------------------------------------------- service settings
WANTED = {"deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                                      "maximumPercent": 200},
          "healthCheckGracePeriodSeconds": 60,
          "placementStrategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"}],
          "capacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1}],
          "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s2", "s1"], "securityGroups": ["g"],
                                                           "assignPublicIp": "DISABLED"}}}


def test_settings_drift_after_moto_create_then_none_after_update():
    created = {"serviceName": "web"}  # moto's CreateService dropped everything
    assert set(e.settings_drift(created, WANTED)) == set(WANTED) - {"networkConfiguration"} | {"networkConfiguration"}
    stored = {"serviceName": "web",
              "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                                          "maximumPercent": 200, "minimumHealthyPercent": 100,
                                          "alarms": {"alarmNames": [], "enable": False, "rollback": False}},
              "healthCheckGracePeriodSeconds": 60,
              "placementStrategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"}],
              "capacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1, "base": 0}],
              "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s1", "s2"], "securityGroups": ["g"],
                                                               "assignPublicIp": "DISABLED"}}}
    assert e.settings_drift(stored, WANTED) == {}
    stored["healthCheckGracePeriodSeconds"] = 30
    assert e.settings_drift(stored, WANTED) == {"healthCheckGracePeriodSeconds": 60}
    assert e.settings_drift(stored, {}) == {}  # unset options leave the service alone


# ------------------------------------------------------------------------------------------------------- waiting
TD1 = "arn:aws:ecs:r:1:task-definition/web:1"
TD2 = "arn:aws:ecs:r:1:task-definition/web:2"


def svc(name, deployments, events=()):
    return {"serviceName": name, "status": "ACTIVE", "taskDefinition": TD2, "runningCount": 1, "desiredCount": 1,
            "deployments": deployments, "events": list(events)}


def dep(id_, td, status="PRIMARY", state="IN_PROGRESS", reason=None):
    return {"id": id_, "taskDefinition": td, "status": status, "rolloutState": state, "rolloutStateReason": reason,
            "runningCount": 1, "desiredCount": 1}


class FakeECS:
    """Returns a scripted sequence of DescribeServices answers (one list of services per poll)."""

    def __init__(self, polls):
        self.polls = list(polls)
        self.calls = 0

    def describe_services(self, cluster, services, aws_retry):
        answer = self.polls[min(self.calls, len(self.polls) - 1)]
        self.calls += 1
        return {"services": [s for s in answer if s["serviceName"] in services], "failures": []}


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def test_wait_completes_for_all_services_in_one_loop():
    ev = {"id": "e2", "createdAt": datetime.datetime(2026, 1, 1), "message": "(service web) has reached a steady state."}
    polls = [
        [svc("web", [dep("d1", TD1)]), svc("api", [dep("d2", TD2), dep("d0", TD1, "ACTIVE")])],
        [svc("web", [dep("d3", TD2), dep("d1", TD1, "ACTIVE")]), svc("api", [dep("d2", TD2, state="COMPLETED")])],
        [svc("web", [dep("d3", TD2, state="COMPLETED")], events=[ev, {"id": "e1", "message": "old"}])],
    ]
    clock = Clock()
    client = FakeECS(polls)
    res = e.wait_for_rollouts(client, "c", {"web": TD2, "api": TD2}, {"web": {"e1"}}, 60, 5,
                              sleep=clock.sleep, clock=clock)
    assert client.calls == 3 and clock.t == 10
    assert res["web"]["wait_state"] == res["api"]["wait_state"] == "COMPLETED"
    assert res["web"]["events"] == ["2026-01-01T00:00:00 (service web) has reached a steady state."]


def test_wait_fails_on_circuit_breaker_and_names_running_revision():
    polls = [[svc("web", [dep("d3", TD2), dep("d1", TD1, "ACTIVE")])],
             [svc("web", [dep("d4", TD1), dep("d3", TD2, "ACTIVE", "FAILED", "circuit breaker: 3 tasks failed")])]]
    clock = Clock()
    with pytest.raises(e.RolloutError) as err:
        e.wait_for_rollouts(FakeECS(polls), "c", {"web": TD2}, {}, 60, 5, sleep=clock.sleep, clock=clock)
    assert "circuit breaker: 3 tasks failed" in str(err.value)
    assert "now runs %s" % TD1 in str(err.value)
    assert err.value.services["web"]["running_task_definition_arn"] == TD1


def test_wait_detects_rollback_after_failed_deployment_disappears():
    polls = [[svc("web", [dep("d3", TD2), dep("d1", TD1, "ACTIVE")])],
             [svc("web", [dep("d4", TD1, state="COMPLETED")])]]
    clock = Clock()
    with pytest.raises(e.RolloutError, match="rolled back to " + TD1):
        e.wait_for_rollouts(FakeECS(polls), "c", {"web": TD2}, {}, 60, 5, sleep=clock.sleep, clock=clock)


def test_wait_times_out_with_state_and_events():
    polls = [[svc("web", [dep("d3", TD2), dep("d1", TD1, "ACTIVE")],
                  events=[{"id": "x", "message": "unable to place a task"}])]]
    clock = Clock()
    with pytest.raises(e.RolloutError) as err:
        e.wait_for_rollouts(FakeECS(polls), "c", {"web": TD2}, {}, 20, 5, sleep=clock.sleep, clock=clock)
    msg = str(err.value)
    assert msg.startswith("timed out after 20s") and "unable to place a task" in msg and "drain" in msg
    assert clock.t == 20


def test_rollout_state_cases():
    assert e.rollout_state(None, TD2, set())[0] == "FAILED"
    assert e.rollout_state(svc("w", [dep("d1", TD1)]), TD2, set())[0] == "IN_PROGRESS"  # not started yet
    assert e.rollout_state(svc("w", [dep("d1", TD1)]), TD2, {"d2"})[0] == "FAILED"        # rolled back
    no_state = dep("d2", TD2, state=None)
    assert e.rollout_state(svc("w", [no_state]), TD2, set())[0] == "COMPLETED"           # running == desired


def test_deployment_configuration_drift_keeps_unset_keys():
    have = {"deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100,
                                        "alarms": {"alarmNames": ["a"], "enable": True, "rollback": True}}}
    wanted = {"deploymentConfiguration": {"minimumHealthyPercent": 50}}
    assert e.settings_drift(have, wanted) == {"deploymentConfiguration": {
        "maximumPercent": 200, "minimumHealthyPercent": 50,
        "alarms": {"alarmNames": ["a"], "enable": True, "rollback": True}}}
