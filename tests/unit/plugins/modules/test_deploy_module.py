"""appdeploy.ecs.deploy driven through main() with botocore Stubber clients (every AWS call must be expected, so an
unexpected call fails the test) and a fake Docker engine. The real engine, registry and moto are exercised by
tests/integration/local."""
import datetime

import boto3
import pytest
from botocore.stub import Stubber

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.amazon.aws.plugins.module_utils import modules as aws_modules
from ansible_collections.appdeploy.ecs.plugins.module_utils import docker_engine
from ansible_collections.appdeploy.ecs.plugins.module_utils import fingerprint as fpr
from ansible_collections.appdeploy.ecs.plugins.modules import deploy

ACCOUNT = "123456789012"
URI = "%s.dkr.ecr.eu-central-1.amazonaws.com/app" % ACCOUNT
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
TD1 = "arn:aws:ecs:eu-central-1:%s:task-definition/web:1" % ACCOUNT
TD2 = "arn:aws:ecs:eu-central-1:%s:task-definition/web:2" % ACCOUNT
REPO = {"repositories": [{"repositoryName": "app", "repositoryUri": URI, "registryId": ACCOUNT,
                          "repositoryArn": "arn:aws:ecr:eu-central-1:%s:repository/app" % ACCOUNT}]}


class Exit(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


class Failed(Exit):
    pass


@pytest.fixture
def ctx(tmp_path):
    d = tmp_path / "app"
    d.mkdir()
    (d / "Dockerfile").write_text("FROM scratch\nCOPY index.html /\n")
    (d / "index.html").write_text("hi\n")
    return str(d)


class AWS:
    def __init__(self):
        kw = dict(region_name="eu-central-1", aws_access_key_id="a", aws_secret_access_key="b")
        self.clients = {"ecr": boto3.client("ecr", **kw), "ecs": boto3.client("ecs", **kw)}
        self.stubs = {k: Stubber(c) for k, c in self.clients.items()}
        for s in self.stubs.values():
            s.activate()

    def __getattr__(self, name):
        return self.stubs[name]


@pytest.fixture
def aws(monkeypatch):
    a = AWS()
    monkeypatch.setattr(aws_modules, "boto3_conn", lambda module, conn_type, resource, **kw: a.clients[resource])
    yield a
    for s in a.stubs.values():
        s.assert_no_pending_responses()


class FakeDocker:
    """Stands in for the engine: records builds and pushes. `reachable=False` makes connect() fail as the real one."""

    def __init__(self, monkeypatch, push_digest=D2, known=()):
        self.calls = []
        self.known = list(known)
        monkeypatch.setattr(docker_engine, "connect", self.connect)
        monkeypatch.setattr(docker_engine, "build", self.build)
        monkeypatch.setattr(docker_engine, "push", self.push)
        monkeypatch.setattr(docker_engine, "repo_digests", lambda client, image_id: self.known)
        monkeypatch.setattr(docker_engine, "smoke_test", self.smoke)
        self.push_digest = push_digest
        self.smoke_error = None

    def connect(self, host=None):
        self.calls.append("connect")
        return self

    def build(self, client, fileobj, dockerfile, tag, *a):
        self.calls.append(("build", tag))
        return "sha256:imageid"

    def push(self, client, repo, tag, auth):
        self.calls.append(("push", repo, tag, auth and auth["username"]))
        return self.push_digest, 3

    def smoke(self, client, image_id, port, path, env, timeout):
        self.calls.append(("smoke", port, path))
        if self.smoke_error:
            raise docker_engine.DockerError(self.smoke_error)
        return "Smoke test passed: GET http://127.0.0.1:%d%s answered 200." % (port, path)


@pytest.fixture
def docker(monkeypatch):
    return FakeDocker(monkeypatch)


def run(args, check=False, diff=False):
    base = {"repository": "app", "cluster": "c", "service": ["web"], "container": "app", "wait": False,
            "_ansible_check_mode": check, "_ansible_diff": diff}
    base.update(args)

    def exit_json(self, **kw):
        raise Exit(kw)

    def fail_json(self, **kw):
        raise Failed(kw)

    with patch_module_args(base):
        orig_exit, orig_fail = basic.AnsibleModule.exit_json, basic.AnsibleModule.fail_json
        basic.AnsibleModule.exit_json, basic.AnsibleModule.fail_json = exit_json, fail_json
        try:
            deploy.main()
        except Failed:
            raise
        except Exit as e:
            return e.result
        finally:
            basic.AnsibleModule.exit_json, basic.AnsibleModule.fail_json = orig_exit, orig_fail
    raise AssertionError("module did not exit")


def fp_tag(ctx, **kw):
    return fpr.fingerprint_tag(fpr.fingerprint(ctx, **kw)[0])


def taskdef(arn, image, env=None, rev=1, family="web"):
    c = {"name": "app", "image": image, "memory": 64, "cpu": 0, "mountPoints": [], "volumesFrom": [],
         "environment": env if env is not None else [{"name": "A", "value": "1"}]}
    return {"taskDefinitionArn": arn, "family": family, "revision": rev, "status": "ACTIVE",
            "containerDefinitions": [c], "networkMode": "bridge"}


def service(name="web", td=TD1):
    return {"serviceName": name, "serviceArn": "arn:aws:ecs:eu-central-1:%s:service/c/%s" % (ACCOUNT, name),
            "status": "ACTIVE", "taskDefinition": td, "desiredCount": 1, "runningCount": 0, "pendingCount": 0,
            "events": [{"id": "old", "createdAt": datetime.datetime(2026, 1, 1), "message": "old event"}],
            "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY", "taskDefinition": td,
                             "rolloutState": "IN_PROGRESS", "desiredCount": 1, "runningCount": 0}]}


def expect_image_found(aws, ctx, digest=D1, **kw):
    aws.ecr.add_response("describe_repositories", REPO, {"repositoryNames": ["app"]})
    aws.ecr.add_response("describe_images", {"imageDetails": [{"imageDigest": digest, "imageTags": [fp_tag(ctx, **kw)]}]},
                         {"repositoryName": "app", "imageIds": [{"imageTag": fp_tag(ctx, **kw)}], "registryId": ACCOUNT})


def expect_image_missing(aws, ctx):
    aws.ecr.add_response("describe_repositories", REPO, {"repositoryNames": ["app"]})
    aws.ecr.add_client_error("describe_images", "ImageNotFoundException",
                             expected_params={"repositoryName": "app", "imageIds": [{"imageTag": fp_tag(ctx)}],
                                              "registryId": ACCOUNT})


def expect_current(aws, td_arn=TD1, image=URI + "@" + D1, env=None, names=("web",)):
    aws.ecs.add_response("describe_services", {"services": [service(n, td_arn) for n in names], "failures": []},
                         {"cluster": "c", "services": list(names)})
    aws.ecs.add_response("describe_task_definition", {"taskDefinition": taskdef(td_arn, image, env)},
                         {"taskDefinition": td_arn})


# ------------------------------------------------------------------------------------------------- change matrix
def test_nothing_changed(aws, docker, ctx):
    expect_image_found(aws, ctx)
    expect_current(aws)
    r = run({"path": ctx})
    assert r["changed"] is False
    assert r["built"] is False and r["pushed"] is False and docker.calls == []
    assert r["image_uri"] == URI + "@" + D1
    assert r["task_definition_arn"] == r["previous_task_definition_arn"] == TD1
    assert r["services"][0]["updated"] is False and r["services"][0]["registered"] is False
    assert r["actions"] == ["Image %s is already in %s (%s): nothing built or pushed." % (fp_tag(ctx), URI, D1),
                            "Service web is already on %s." % TD1]


def test_image_changed_builds_pushes_registers_updates(aws, docker, ctx):
    expect_image_missing(aws, ctx)
    aws.ecr.add_response("get_authorization_token", {"authorizationData": [{
        "authorizationToken": "QVdTOnNlY3JldA==", "proxyEndpoint": "https://" + URI.split("/", maxsplit=1)[0]}]},
        {"registryIds": [ACCOUNT]})
    aws.ecr.add_response("describe_images", {"imageDetails": [{"imageDigest": D2}]},
                         {"repositoryName": "app", "imageIds": [{"imageTag": fp_tag(ctx)}], "registryId": ACCOUNT})
    expect_current(aws)
    aws.ecs.add_response("describe_task_definition", {"taskDefinition": taskdef(TD1, URI + "@" + D1)},
                         {"taskDefinition": "web"})
    aws.ecs.add_response("register_task_definition", {"taskDefinition": taskdef(TD2, URI + "@" + D2, rev=2)},
                         {"family": "web", "networkMode": "bridge", "containerDefinitions": [
                             {"name": "app", "image": URI + "@" + D2, "memory": 64, "cpu": 0, "mountPoints": [],
                              "volumesFrom": [], "environment": [{"name": "A", "value": "1"}]}]})
    aws.ecs.add_response("update_service", {"service": service(td=TD2)},
                         {"cluster": "c", "service": "web", "taskDefinition": TD2})
    r = run({"path": ctx}, diff=True)
    assert r["changed"] is True and r["built"] is True and r["pushed"] is True
    assert docker.calls == ["connect", ("build", URI + ":" + fp_tag(ctx)), ("push", URI, fp_tag(ctx), "AWS")]
    assert r["image_digest"] == D2 and r["task_definition_arn"] == TD2 and r["previous_task_definition_arn"] == TD1
    assert r["services"][0]["changes"] == ["image of container app"]
    assert r["diff"]["before"]["image"] == URI + "@" + D1 and r["diff"]["after"]["image"] == URI + "@" + D2
    assert r["diff"]["after"]["services"]["web"]["task_definition_arn"] == TD2
    assert [a.split()[0] for a in r["actions"]] == ["Built", "Pushed", "Registered", "Updated"]


def test_push_of_a_manifest_the_registry_already_had_is_not_a_new_manifest(aws, monkeypatch, ctx):
    docker = FakeDocker(monkeypatch, push_digest=D1, known=[URI + "@" + D1])
    expect_image_missing(aws, ctx)
    aws.ecr.add_response("describe_images", {"imageDetails": [{"imageDigest": D1}]},
                         {"repositoryName": "app", "imageIds": [{"imageDigest": D1}], "registryId": ACCOUNT})
    aws.ecr.add_response("get_authorization_token", {"authorizationData": [{
        "authorizationToken": "QVdTOnNlY3JldA==", "proxyEndpoint": "https://x"}]})
    aws.ecr.add_response("describe_images", {"imageDetails": [{"imageDigest": D1}]},
                         {"repositoryName": "app", "imageIds": [{"imageTag": fp_tag(ctx)}], "registryId": ACCOUNT})
    expect_current(aws)
    r = run({"path": ctx})
    assert r["pushed"] is False and r["built"] is True
    assert "already had manifest" in r["actions"][1]
    assert r["services"][0]["updated"] is False
    assert docker.calls[-1][0] == "push"


def test_env_only_change_registers_without_build(aws, docker, ctx):
    expect_image_found(aws, ctx)
    expect_current(aws)
    aws.ecs.add_response("describe_task_definition", {"taskDefinition": taskdef(TD1, URI + "@" + D1)},
                         {"taskDefinition": "web"})
    aws.ecs.add_response("register_task_definition", {"taskDefinition": taskdef(TD2, URI + "@" + D1, rev=2)},
                         {"family": "web", "containerDefinitions": [
                             {"name": "app", "image": URI + "@" + D1, "memory": 64,
                              "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}]})
    aws.ecs.add_response("update_service", {"service": service(td=TD2)},
                         {"cluster": "c", "service": "web", "taskDefinition": TD2})
    spec = {"family": "web", "containerDefinitions": [{"name": "app", "image": "placeholder", "memory": 64,
                                                       "environment": [{"name": "B", "value": 2},
                                                                       {"name": "A", "value": "1"}]}]}
    r = run({"path": ctx, "task_definition": spec})
    assert r["changed"] is True and r["built"] is False and docker.calls == []
    assert r["services"][0]["changes"] == ["environment of container app"]


def test_reordered_env_is_not_a_change(aws, docker, ctx):
    expect_image_found(aws, ctx)
    expect_current(aws, env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    spec = {"family": "web", "containerDefinitions": [{"name": "app", "image": "x", "memory": 64,
                                                       "environment": [{"name": "B", "value": 2},
                                                                       {"name": "A", "value": 1}]}]}
    r = run({"path": ctx, "task_definition": spec})
    assert r["changed"] is False


def test_latest_revision_equal_to_desired_is_reused_not_registered(aws, docker, ctx):
    expect_image_found(aws, ctx, digest=D2)
    expect_current(aws)  # service still on TD1 (image D1), e.g. after a rollback
    aws.ecs.add_response("describe_task_definition", {"taskDefinition": taskdef(TD2, URI + "@" + D2, rev=2)},
                         {"taskDefinition": "web"})
    aws.ecs.add_response("update_service", {"service": service(td=TD2)},
                         {"cluster": "c", "service": "web", "taskDefinition": TD2})
    r = run({"path": ctx})
    assert r["changed"] is True and r["services"][0]["registered"] is False and r["services"][0]["updated"] is True


def test_new_service_is_created_with_settings(aws, docker, ctx):
    expect_image_found(aws, ctx)
    aws.ecs.add_response("describe_services", {"services": [], "failures": [
        {"arn": "arn:aws:ecs:eu-central-1:%s:service/c/web" % ACCOUNT, "reason": "MISSING"}]},
        {"cluster": "c", "services": ["web"]})
    aws.ecs.add_client_error("describe_task_definition", "ClientException", "Unable to describe task definition.",
                             expected_params={"taskDefinition": "web"})
    aws.ecs.add_response("register_task_definition", {"taskDefinition": taskdef(TD1, URI + "@" + D1)})
    dc = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}, "maximumPercent": 200}
    created = dict(service(), deploymentConfiguration=dc)
    aws.ecs.add_response("create_service", {"service": created},
                         {"cluster": "c", "serviceName": "web", "taskDefinition": TD1, "desiredCount": 2,
                          "launchType": "EC2", "deploymentConfiguration": dc})
    spec = {"family": "web", "containerDefinitions": [{"name": "app", "image": "x", "memory": 64}]}
    r = run({"path": ctx, "task_definition": spec, "service_settings": {
        "desired_count": 2, "launch_type": "EC2", "maximum_percent": 200,
        "deployment_circuit_breaker": {"enable": True, "rollback": True}}})
    assert r["changed"] is True and r["services"][0]["created"] is True
    assert r["previous_task_definition_arn"] is None and r["services"][0]["changes"] == ["new service"]
    # what the service runs, for callers that would otherwise describe the task definition
    assert r["container_definitions"] == [{"name": "app", "image": URI + "@" + D1, "memory": 64}]
    assert r["services"][0]["service_arn"] == created["serviceArn"] and r["services"][0]["status"] == created["status"]


def test_settings_dropped_by_create_are_applied_at_once(aws, docker, ctx):
    expect_image_found(aws, ctx)
    aws.ecs.add_response("describe_services", {"services": [], "failures": [{"arn": "x", "reason": "MISSING"}]})
    aws.ecs.add_client_error("describe_task_definition", "ClientException")
    aws.ecs.add_response("register_task_definition", {"taskDefinition": taskdef(TD1, URI + "@" + D1)})
    aws.ecs.add_response("create_service", {"service": service()})  # moto: grace period dropped
    aws.ecs.add_response("update_service", {"service": dict(service(), healthCheckGracePeriodSeconds=30)},
                         {"cluster": "c", "service": "web", "healthCheckGracePeriodSeconds": 30})
    spec = {"family": "web", "containerDefinitions": [{"name": "app", "image": "x", "memory": 64}]}
    r = run({"path": ctx, "task_definition": spec, "service_settings": {"health_check_grace_period_seconds": 30}})
    assert "CreateService did not store" in r["actions"][-1]


def test_two_services_share_one_registration(aws, docker, ctx):
    expect_image_found(aws, ctx, digest=D2)
    aws.ecs.add_response("describe_services", {"services": [service("web"), service("api")], "failures": []},
                         {"cluster": "c", "services": ["web", "api"]})
    aws.ecs.add_response("describe_task_definition", {"taskDefinition": taskdef(TD1, URI + "@" + D1)},
                         {"taskDefinition": TD1})
    aws.ecs.add_response("describe_task_definition", {"taskDefinition": taskdef(TD1, URI + "@" + D1)},
                         {"taskDefinition": "web"})
    aws.ecs.add_response("register_task_definition", {"taskDefinition": taskdef(TD2, URI + "@" + D2, rev=2)})
    aws.ecs.add_response("update_service", {"service": service("web", TD2)},
                         {"cluster": "c", "service": "web", "taskDefinition": TD2})
    aws.ecs.add_response("update_service", {"service": service("api", TD2)},
                         {"cluster": "c", "service": "api", "taskDefinition": TD2})
    r = run({"path": ctx, "service": ["web", "api"]})
    assert [s["task_definition_arn"] for s in r["services"]] == [TD2, TD2]
    assert sum(a.startswith("Registered") for a in r["actions"]) == 1


def test_force_redeploys_unchanged_service(aws, docker, ctx):
    expect_image_found(aws, ctx)
    expect_current(aws)
    aws.ecs.add_response("update_service", {"service": service()},
                         {"cluster": "c", "service": "web", "forceNewDeployment": True})
    r = run({"path": ctx, "force": True})
    assert r["changed"] is True and r["services"][0]["updated"] is True and r["services"][0]["registered"] is False


def test_extra_tag_added_without_build(aws, docker, ctx):
    expect_image_found(aws, ctx)
    aws.ecr.add_client_error("describe_images", "ImageNotFoundException",
                             expected_params={"repositoryName": "app", "imageIds": [{"imageTag": "abc123"}],
                                              "registryId": ACCOUNT})
    aws.ecr.add_response("batch_get_image", {"images": [{"imageManifest": "{}", "imageManifestMediaType": "m"}]})
    aws.ecr.add_response("put_image", {"image": {}}, {"repositoryName": "app", "imageManifest": "{}",
                                                      "imageTag": "abc123", "imageManifestMediaType": "m",
                                                      "registryId": ACCOUNT})
    r = run({"path": ctx, "tags": ["abc123"], "service": []})
    assert r["changed"] is True and docker.calls == [] and r["image_tags"] == [fp_tag(ctx), "abc123"]
    assert "services" not in r


# ---------------------------------------------------------------------------------------------------- check mode
def test_check_mode_predicts_build_register_update_and_changes_nothing(aws, docker, ctx):
    expect_image_missing(aws, ctx)
    expect_current(aws)
    aws.ecs.add_response("describe_task_definition", {"taskDefinition": taskdef(TD1, URI + "@" + D1)},
                         {"taskDefinition": "web"})
    r = run({"path": ctx, "tags": ["abc"]}, check=True, diff=True)
    assert r["changed"] is True and docker.calls == []  # not even the local engine is touched
    assert r["image_digest"] is None and r["image_uri"] == URI + ":" + fp_tag(ctx)
    assert [a.split()[0] for a in r["actions"]] == ["Would", "Would", "Would", "Would"]
    assert "web:2" in r["actions"][2]
    assert r["diff"]["after"]["services"]["web"]["task_definition_arn"] == "web:2"


def test_check_mode_nothing_to_do(aws, docker, ctx):
    expect_image_found(aws, ctx)
    expect_current(aws)
    r = run({"path": ctx}, check=True)
    assert r["changed"] is False


def test_check_mode_new_service(aws, docker, ctx):
    expect_image_found(aws, ctx)
    aws.ecs.add_response("describe_services", {"services": [], "failures": [{"arn": "x", "reason": "MISSING"}]})
    aws.ecs.add_client_error("describe_task_definition", "ClientException")
    spec = {"family": "web", "containerDefinitions": [{"name": "app", "image": "x", "memory": 64}]}
    r = run({"path": ctx, "task_definition": spec}, check=True)
    assert r["changed"] is True and r["services"][0]["created"] is True
    assert r["actions"][-1].startswith("Would create service web")


# ---------------------------------------------------------------------------------------------------- smoke test
def test_smoke_test_failure_stops_before_push(aws, docker, ctx):
    expect_image_missing(aws, ctx)
    docker.smoke_error = "smoke test failed: GET http://127.0.0.1:8080/ gave no 2xx within 5s"
    with pytest.raises(Failed) as err:
        run({"path": ctx, "smoke_test": {"port": 8080, "timeout": 5}})
    assert err.value.result["msg"].startswith("smoke test failed")
    assert not any(c[0] == "push" for c in docker.calls if isinstance(c, tuple))
    assert err.value.result["built"] is True and err.value.result["pushed"] is False


# --------------------------------------------------------------------------------------------------- error paths
@pytest.mark.parametrize("args,msg", [
    ({"path": "/nonexistent"}, "path: build context /nonexistent is not a directory"),
    ({"dockerfile": "Nope"}, "dockerfile: "),
    ({"repository": "Bad Name"}, "repository: 'Bad Name' is not a valid repository name"),
    ({"tags": ["-bad"]}, "tags: '-bad' is not a valid image tag"),
    ({"cluster": None}, "cluster: required when service is given"),
    ({"container": None}, "container: required when service is given"),
    ({"service": ["a", "a"]}, "service: names must be unique"),
    ({"task_definition": {"containerDefinitions": [{"name": "app"}]}}, "task_definition: needs a family"),
    ({"task_definition": {"family": "f"}}, "task_definition: needs containerDefinitions"),
    ({"task_definition": {"family": "f", "containerDefinitions": [{"name": "x"}]}}, "container: 'app' is not in task_definition"),
    ({"wait_timeout": 0}, "wait_timeout: must be a positive"),
    ({"smoke_test": {"port": 70000}}, "smoke_test.port: 70000 is not a TCP port"),
    ({"service_settings": {"launch_type": "EC2", "capacity_provider_strategy": [{"capacity_provider": "x"}]}},
     "service_settings: launch_type and capacity_provider_strategy are mutually exclusive"),
])
def test_bad_arguments_fail_before_any_call(aws, docker, ctx, args, msg):
    full = {"path": ctx}
    full.update(args)
    with pytest.raises(Failed) as err:
        run(full)
    assert err.value.result["msg"].startswith(msg)
    assert "\n" not in err.value.result["msg"]
    assert docker.calls == []  # and the Stubber saw no call (nothing queued, assert_no_pending_responses)


def test_repository_missing(aws, docker, ctx):
    aws.ecr.add_client_error("describe_repositories", "RepositoryNotFoundException")
    with pytest.raises(Failed, match="repository: ECR repository app not found; create it first"):
        run({"path": ctx})


def test_cluster_missing(aws, docker, ctx):
    expect_image_found(aws, ctx)
    aws.ecs.add_client_error("describe_services", "ClusterNotFoundException")
    with pytest.raises(Failed, match="cluster c not found"):
        run({"path": ctx})


def test_service_missing_without_task_definition(aws, docker, ctx):
    expect_image_found(aws, ctx)
    aws.ecs.add_response("describe_services", {"services": [], "failures": [{"arn": "x", "reason": "MISSING"}]})
    with pytest.raises(Failed, match="service: web not found in cluster c; give task_definition"):
        run({"path": ctx})


def test_container_missing_in_current_definition(aws, docker, ctx):
    expect_image_found(aws, ctx)
    expect_current(aws)
    with pytest.raises(Failed, match="container: container 'web' is not in task definition .*web:1 .containers: app."):
        run({"path": ctx, "container": "web"})


def test_docker_unreachable(aws, ctx, tmp_path):
    expect_image_missing(aws, ctx)
    with pytest.raises(Failed) as err:
        run({"path": ctx, "docker_host": "unix://%s/none.sock" % tmp_path})
    assert err.value.result["msg"].startswith("Docker engine unreachable at unix://")
    assert "DOCKER_HOST" in err.value.result["msg"]


def test_aws_error_reports_what_was_done(aws, docker, ctx):
    expect_image_found(aws, ctx, digest=D2)
    expect_current(aws)
    aws.ecs.add_response("describe_task_definition", {"taskDefinition": taskdef(TD1, URI + "@" + D1)})
    aws.ecs.add_client_error("register_task_definition", "AccessDeniedException", "not allowed")
    with pytest.raises(Failed) as err:
        run({"path": ctx})
    assert "AWS call failed after: Image fp-" in err.value.result["msg"]
    assert "not allowed" in err.value.result["msg"]


def _rollout_args(ctx):
    return {"path": ctx, "wait": True, "wait_timeout": 1, "wait_delay": 1}


def test_wait_timeout_fails_with_events_and_running_revision(aws, docker, ctx):
    expect_image_found(aws, ctx, digest=D2)
    expect_current(aws)
    aws.ecs.add_response("describe_task_definition", {"taskDefinition": taskdef(TD2, URI + "@" + D2, rev=2)})
    aws.ecs.add_response("update_service", {"service": service(td=TD2)})
    stuck = service(td=TD2)
    stuck["deployments"] = [{"id": "d2", "status": "PRIMARY", "taskDefinition": TD2, "rolloutState": "IN_PROGRESS",
                             "runningCount": 0, "desiredCount": 1},
                            {"id": "d1", "status": "ACTIVE", "taskDefinition": TD1, "rolloutState": "COMPLETED"}]
    stuck["events"] = [{"id": "new", "createdAt": datetime.datetime(2026, 11, 26), "message": "unable to place a task"}] \
        + stuck["events"]
    aws.ecs.add_response("describe_services", {"services": [stuck], "failures": []})
    aws.ecs.add_response("describe_services", {"services": [stuck], "failures": []})
    with pytest.raises(Failed) as err:
        run(_rollout_args(ctx))
    msg = err.value.result["msg"]
    assert msg.startswith("timed out after 1s") and "unable to place a task" in msg and "old event" not in msg
    assert "it now runs %s" % TD2 in msg
    assert err.value.result["services"][0]["events"] == ["2026-11-26T00:00:00 unable to place a task"]


def test_wait_failed_deployment(aws, docker, ctx):
    expect_image_found(aws, ctx, digest=D2)
    expect_current(aws)
    aws.ecs.add_response("describe_task_definition", {"taskDefinition": taskdef(TD2, URI + "@" + D2, rev=2)})
    aws.ecs.add_response("update_service", {"service": service(td=TD2)})
    rolled = service(td=TD1)
    rolled["deployments"] = [{"id": "d3", "status": "PRIMARY", "taskDefinition": TD1, "rolloutState": "IN_PROGRESS"},
                             {"id": "d2", "status": "ACTIVE", "taskDefinition": TD2, "rolloutState": "FAILED",
                              "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start."}]
    aws.ecs.add_response("describe_services", {"services": [rolled], "failures": []})
    with pytest.raises(Failed) as err:
        run(_rollout_args(ctx))
    msg = err.value.result["msg"]
    assert "circuit breaker: tasks failed to start" in msg and "now runs %s" % TD1 in msg
    assert "previous revision was left registered" in msg


def test_wait_success(aws, docker, ctx):
    expect_image_found(aws, ctx, digest=D2)
    expect_current(aws)
    aws.ecs.add_response("describe_task_definition", {"taskDefinition": taskdef(TD2, URI + "@" + D2, rev=2)})
    aws.ecs.add_response("update_service", {"service": service(td=TD2)})
    done = service(td=TD2)
    done["deployments"] = [{"id": "d2", "status": "PRIMARY", "taskDefinition": TD2, "rolloutState": "COMPLETED",
                            "runningCount": 1, "desiredCount": 1}]
    aws.ecs.add_response("describe_services", {"services": [done], "failures": []})
    r = run(_rollout_args(ctx))
    assert r["services"][0]["rollout_state"] == "COMPLETED"
    assert r["actions"][-1] == "Service web completed its rollout on %s." % TD2


# ------------------------------------------------------------------------------------ docker plumbing error paths
class FakeAPI:
    def __init__(self, build_chunks=(), push_chunks=()):
        self.build_chunks, self.push_chunks = build_chunks, push_chunks

    def build(self, **kw):
        return iter(self.build_chunks)

    def push(self, repo, **kw):
        return iter(self.push_chunks)


def test_build_failure_message_has_log_tail():
    chunks = [{"stream": "Step 1/2 : FROM x\n"}, {"stream": "Step 2/2 : RUN false\n"},
              {"error": "The command '/bin/sh -c false' returned a non-zero code: 1",
               "errorDetail": {"message": "returned a non-zero code: 1"}}]
    with pytest.raises(docker_engine.DockerError) as err:
        docker_engine.build(FakeAPI(build_chunks=chunks), None, "Dockerfile", "t")
    assert "docker build failed" in str(err.value) and "Step 2/2 : RUN false" in str(err.value)


def test_build_returns_image_id():
    chunks = [{"stream": "ok\n"}, {"aux": {"ID": "sha256:abc"}}]
    assert docker_engine.build(FakeAPI(build_chunks=chunks), None, "Dockerfile", "t") == "sha256:abc"


def test_push_failure_and_success():
    with pytest.raises(docker_engine.DockerError, match="docker push r:t failed: denied.*credentials"):
        docker_engine.push(FakeAPI(push_chunks=[{"errorDetail": {"message": "denied"}}]), "r", "t")
    ok = [{"status": "Pushed", "id": "l1"}, {"status": "Layer already exists", "id": "l2"},
          {"aux": {"Tag": "t", "Digest": D1, "Size": 1}}]
    assert docker_engine.push(FakeAPI(push_chunks=ok), "r", "t") == (D1, 1)


def test_service_params_mapping():
    create, upd = deploy.service_params({
        "desired_count": 3, "launch_type": "FARGATE", "capacity_provider_strategy": None,
        "load_balancers": [{"target_group_arn": "arn:tg", "container_name": "app", "container_port": 8080}],
        "deployment_circuit_breaker": {"enable": True, "rollback": False}, "minimum_healthy_percent": 50,
        "maximum_percent": 150, "placement_strategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"}],
        "network_configuration": {"subnets": ["s1"], "security_groups": ["g1"], "assign_public_ip": False},
        "health_check_grace_period_seconds": 60})
    assert create == {"desiredCount": 3, "launchType": "FARGATE", "loadBalancers": [
        {"targetGroupArn": "arn:tg", "containerName": "app", "containerPort": 8080}]}
    assert upd == {
        "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": True, "rollback": False},
                                    "minimumHealthyPercent": 50, "maximumPercent": 150},
        "placementStrategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"}],
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s1"], "securityGroups": ["g1"],
                                                         "assignPublicIp": "DISABLED"}},
        "healthCheckGracePeriodSeconds": 60}
    assert deploy.service_params(None) == ({"desiredCount": 1}, {})
