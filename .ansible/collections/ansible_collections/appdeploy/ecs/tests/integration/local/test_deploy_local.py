"""appdeploy.ecs.deploy against the real local stack: Docker engine, registry and moto server.

The steps run in file order on one repository/cluster (like an integration target): first deploy, no-op rerun,
empty Docker cache, one edited file, check mode after an edit, two services, smoke test pass and fail.
moto never starts tasks, so these runs use wait: false; waiting is covered by test_deploy_wait.py.
"""
import os

import pytest

from deploy_helpers import (STACK, boto, docker_client, local_images, registry_digest, registry_tags, requires_stack,
                            revisions, run_deploy, spec, unique, write_app, free_port)

pytestmark = requires_stack


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    name = unique()
    ecr, ecs = boto("ecr"), boto("ecs")
    repo = "%s/app" % name
    ecr.create_repository(repositoryName=repo)
    ecs.create_cluster(clusterName=name)
    root = tmp_path_factory.mktemp("app")
    ctx = str(root / "ctx")
    write_app(ctx)
    state = {"name": name, "repo": repo, "ctx": ctx, "tmp": root, "ecs": ecs,
             "image_repo": "%s/%s" % (STACK["LOCAL_REGISTRY"], repo), "family": name + "-web"}
    yield state
    try:
        for svc in ecs.list_services(cluster=name)["serviceArns"]:
            ecs.delete_service(cluster=name, service=svc, force=True)
        ecs.delete_cluster(cluster=name)
        ecr.delete_repository(repositoryName=repo, force=True)
        client = docker_client()
        for image in client.images.list(name=state["image_repo"]):
            client.images.remove(image.id, force=True)
    except Exception:  # cleanup is best effort on a shared stack
        pass


def args(app, **extra):
    a = {"path": app["ctx"], "repository": app["repo"], "registry": STACK["LOCAL_REGISTRY"], "network_mode": "host",
         "cluster": app["name"], "service": "web", "container": "app", "wait": False,
         "task_definition": spec(app["family"]),
         "service_settings": {"desired_count": 1, "deployment_circuit_breaker": {"enable": True, "rollback": True},
                              "health_check_grace_period_seconds": 30, "maximum_percent": 200}}
    a.update(extra)
    return a


def service(app, name="web"):
    return app["ecs"].describe_services(cluster=app["name"], services=[name])["services"][0]


def image_of(app, td_arn):
    return app["ecs"].describe_task_definition(taskDefinition=td_arn)["taskDefinition"]["containerDefinitions"][0]["image"]


def test_01_first_deploy_builds_pushes_registers_creates(app):
    rc, r = run_deploy(args(app), app["tmp"])
    assert rc == 0, r.get("msg")
    assert r["changed"] and r["built"] and r["pushed"]
    assert r["services"][0]["created"] and r["services"][0]["registered"]
    assert registry_tags(app["repo"]) == [r["fingerprint"]["tag"]]
    assert registry_digest(app["repo"], r["fingerprint"]["tag"]) == r["image_digest"]
    assert r["image_uri"] == "%s@%s" % (app["image_repo"], r["image_digest"])
    assert revisions(app["ecs"], app["family"]) == [r["task_definition_arn"]]
    assert image_of(app, r["task_definition_arn"]) == r["image_uri"]
    svc = service(app)
    assert svc["taskDefinition"] == r["task_definition_arn"]
    assert svc["healthCheckGracePeriodSeconds"] == 30  # moto dropped it on CreateService; the module re-applied it
    app["first"] = r


def test_02_second_run_changes_nothing(app):
    tags = registry_tags(app["repo"])
    rc, r = run_deploy(args(app), app["tmp"])
    assert rc == 0, r.get("msg")
    assert r["changed"] is False, r["actions"]
    assert not r["built"] and not r["pushed"]
    assert r["image_digest"] == app["first"]["image_digest"]
    assert len(revisions(app["ecs"], app["family"])) == 1
    assert registry_tags(app["repo"]) == tags
    assert not r["services"][0]["updated"] and not r["services"][0]["registered"]


def test_03_empty_docker_cache_no_build(app):
    client = docker_client()
    for image in client.images.list(name=app["image_repo"]):
        client.images.remove(image.id, force=True)
    assert local_images(client, app["image_repo"]) == []
    rc, r = run_deploy(args(app), app["tmp"])
    assert rc == 0, r.get("msg")
    assert r["changed"] is False and not r["built"]
    assert local_images(client, app["image_repo"]) == []  # nothing built (or pulled)
    assert len(revisions(app["ecs"], app["family"])) == 1


def test_04_ignored_file_change_is_no_change(app):
    with open(os.path.join(app["ctx"], "notes.tmp"), "w") as f:
        f.write("ignored by .dockerignore")
    rc, r = run_deploy(args(app), app["tmp"])
    assert rc == 0 and r["changed"] is False


def test_05_edit_one_file_new_digest_one_new_revision(app):
    before = revisions(app["ecs"], app["family"])
    with open(os.path.join(app["ctx"], "www", "index.html"), "w") as f:
        f.write("hello, edited\n")
    rc, r = run_deploy(args(app), app["tmp"], diff=True)
    assert rc == 0, r.get("msg")
    assert r["changed"] and r["built"] and r["pushed"]
    assert r["image_digest"] != app["first"]["image_digest"]
    assert registry_digest(app["repo"], r["fingerprint"]["tag"]) == r["image_digest"]
    after = revisions(app["ecs"], app["family"])
    assert len(after) == len(before) + 1 and r["task_definition_arn"] == after[-1]
    assert image_of(app, r["task_definition_arn"]) == "%s@%s" % (app["image_repo"], r["image_digest"])
    assert service(app)["taskDefinition"] == r["task_definition_arn"]
    assert r["services"][0]["changes"] == ["image of container app"]
    assert r["diff"]["before"]["image"] == app["first"]["image_uri"] and r["diff"]["after"]["image"] == r["image_uri"]
    app["edited"] = r


def test_06_check_mode_after_edit_predicts_and_changes_nothing(app):
    client = docker_client()
    with open(os.path.join(app["ctx"], "www", "index.html"), "w") as f:
        f.write("hello, edited again\n")
    revs, tags = revisions(app["ecs"], app["family"]), registry_tags(app["repo"])
    images = sorted(i.id for i in client.images.list())
    containers = sorted(c.id for c in client.containers.list(all=True))
    td = service(app)["taskDefinition"]
    rc, r = run_deploy(args(app, smoke_test={"port": free_port()}), app["tmp"], check=True, diff=True)
    assert rc == 0, r.get("msg")
    assert r["changed"] is True and r["image_digest"] is None
    assert [a.split()[0] for a in r["actions"]] == ["Would", "Would", "Would"]
    assert revisions(app["ecs"], app["family"]) == revs
    assert registry_tags(app["repo"]) == tags
    assert sorted(i.id for i in client.images.list()) == images
    assert sorted(c.id for c in client.containers.list(all=True)) == containers
    assert service(app)["taskDefinition"] == td


def test_07_env_change_without_image_change(app):
    # the check-mode edit above is still there; put the file back so only the environment differs
    with open(os.path.join(app["ctx"], "www", "index.html"), "w") as f:
        f.write("hello, edited\n")
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    rc, r = run_deploy(args(app, task_definition=spec(app["family"], env=env)), app["tmp"])
    assert rc == 0, r.get("msg")
    assert r["changed"] and not r["built"] and r["services"][0]["changes"] == ["environment of container app"]
    reordered = [{"name": "B", "value": 3}, {"name": "A", "value": "1"}]
    rc, r = run_deploy(args(app, task_definition=spec(app["family"], env=reordered)), app["tmp"])
    assert rc == 0 and r["changed"] is False, r["actions"]


def test_08_two_services_at_once(app):
    family = app["name"] + "-pair"
    a = args(app, service=["pair-a", "pair-b"], task_definition=spec(family))
    rc, r = run_deploy(a, app["tmp"])
    assert rc == 0, r.get("msg")
    assert [s["created"] for s in r["services"]] == [True, True]
    assert len(revisions(app["ecs"], family)) == 1
    assert {service(app, n)["taskDefinition"] for n in ("pair-a", "pair-b")} == {r["task_definition_arn"]}
    rc, r = run_deploy(a, app["tmp"])
    assert rc == 0 and r["changed"] is False, r["actions"]
    with open(os.path.join(app["ctx"], "www", "second.html"), "w") as f:
        f.write("second\n")
    rc, r = run_deploy(a, app["tmp"])
    assert rc == 0, r.get("msg")
    assert [s["updated"] for s in r["services"]] == [True, True]
    assert len(revisions(app["ecs"], family)) == 2
    assert {service(app, n)["taskDefinition"] for n in ("pair-a", "pair-b")} == {r["task_definition_arn"]}


def test_09_smoke_test_pass(app):
    with open(os.path.join(app["ctx"], "www", "smoke.html"), "w") as f:
        f.write("smoke ok\n")
    port = free_port()
    rc, r = run_deploy(args(app, service=[], smoke_test={"port": port, "path": "/smoke.html", "env": {"PORT": port},
                                                         "timeout": 20}), app["tmp"])
    assert rc == 0, r.get("msg")
    assert r["pushed"] and any(a.startswith("Smoke test passed") for a in r["actions"])
    assert not docker_client().containers.list(all=True, filters={"name": "appdeploy-smoke-"})


def test_10_smoke_test_fail_stops_before_push(app):
    with open(os.path.join(app["ctx"], "www", "smoke.html"), "w") as f:
        f.write("smoke changed\n")
    port = free_port()
    tags = registry_tags(app["repo"])
    revs = revisions(app["ecs"], app["family"])
    rc, r = run_deploy(args(app, smoke_test={"port": port, "path": "/missing.html", "env": {"PORT": port},
                                             "timeout": 3}), app["tmp"])
    assert rc != 0
    assert r["msg"].startswith("smoke test failed: GET http://127.0.0.1:%d/missing.html gave no 2xx" % port)
    assert r["built"] and not r["pushed"]
    assert registry_tags(app["repo"]) == tags
    assert registry_digest(app["repo"], r["fingerprint"]["tag"]) is None
    assert revisions(app["ecs"], app["family"]) == revs
    assert not docker_client().containers.list(all=True, filters={"name": "appdeploy-smoke-"})


def test_11_missing_repository_and_bad_input(app):
    rc, r = run_deploy(args(app, repository=app["name"] + "/nope"), app["tmp"])
    assert rc != 0 and r["msg"].startswith("repository: ECR repository %s/nope not found" % app["name"])
    rc, r = run_deploy(args(app, container="nope", task_definition=None), app["tmp"])
    assert rc != 0 and "container 'nope' is not in task definition" in r["msg"]


def test_12_extra_tag_added_to_existing_image_without_docker(app):
    client = docker_client()
    images = sorted(i.id for i in client.images.list())
    rc, r = run_deploy(args(app, tags=["release-1"]), app["tmp"])
    assert rc == 0, r.get("msg")
    assert r["changed"] and not r["built"] and not r["pushed"]
    assert registry_digest(app["repo"], "release-1") == r["image_digest"]
    assert r["image_tags"] == [r["fingerprint"]["tag"], "release-1"]
    assert sorted(i.id for i in client.images.list()) == images
    rc, r = run_deploy(args(app, tags=["release-1"]), app["tmp"])
    assert rc == 0 and r["changed"] is False, r["actions"]


def test_13_build_failure_reports_the_log_tail_and_pushes_nothing(app):
    ctx = str(app["tmp"] / "broken")
    write_app(ctx, dockerfile="FROM %s\nRUN echo about to fail && exit 3\n" % STACK["LOCAL_BASE_IMAGE"])
    tags = registry_tags(app["repo"])
    rc, r = run_deploy(args(app, path=ctx, service=[]), app["tmp"])
    assert rc != 0
    assert r["msg"].startswith("docker build failed: The command '/bin/sh -c echo about to fail && exit 3' returned a "
                               "non-zero code: 3"), r["msg"]
    assert "about to fail" in r["msg"].split("last build output:")[1]
    assert "\n" not in r["msg"]
    assert registry_tags(app["repo"]) == tags and not r["pushed"]
