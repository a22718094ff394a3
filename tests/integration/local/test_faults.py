# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Injected faults and what the project does about them (issue 7).

On the local stack (.local-stack/env), each under a unique name and cleaned up:
  - the registry is unreachable during a deploy: a clear failure, nothing registered or created in ECS, nothing in
    ECR; the rerun with the right registry converges (and a third run changes nothing);
  - site.yml is interrupted (SIGINT to its process group, as Ctrl-C would) while the NAT gateway is being created,
    then rerun: it converges, and there is exactly one of each VPC, NAT gateway, security group, route table,
    load balancer, target group and service of that stack;
  - two deploys of the same service at once: both succeed, the service ends on a revision that holds what was
    asked, and a later run has nothing left to do.
Covered elsewhere: throttling, retried with backoff by the collection's retry decorator, which adds ECS/ECR's
"ThrottlingException" to what AWSRetry retries (tests/unit/plugins/module_utils/test_retries.py, botocore Stubber);
a deployment that fails by circuit breaker or times out
(tests/integration/local/test_deploy_wait.py::test_wait_failed_rollback and ::test_wait_timeout, and
tests/unit/plugins/module_utils/test_ecs_utils.py); a registry that refuses the credentials
(tests/unit/plugins/module_utils/test_registry.py). An expired ECR token is not a state the module can meet across
runs: it asks GetAuthorizationToken once per run, just before it pushes.
  - the AWS endpoint goes down mid-play: site.yml talks to moto through a TCP proxy of this file, which is closed
    (listener and open connections) when the play reaches the rds role; the run fails with a clear connection error
    and no traceback; the proxy comes back on the same port (moto kept its state) and the rerun converges with
    exactly one of each resource.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from urllib.parse import urlparse

import pytest

from deploy_helpers import (BIN, ROOT, STACK, boto, docker_client, free_port, requires_stack, revisions, run_deploy,
                            spec, unique, write_app, inventory_value, delete_registry_repo)


def _site_env():
    env = dict(os.environ)
    env.update(STACK or {})
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture
def app(tmp_path):
    name = unique("it-fault")
    ecr, ecs = boto("ecr"), boto("ecs")
    repo = "%s/app" % name
    ecr.create_repository(repositoryName=repo)
    ecs.create_cluster(clusterName=name)
    ctx = str(tmp_path / "ctx")
    write_app(ctx)
    state = {"name": name, "repo": repo, "ctx": ctx, "tmp": tmp_path, "ecs": ecs, "ecr": ecr, "family": name + "-web",
             "image_repo": "%s/%s" % (STACK["LOCAL_REGISTRY"], repo)}
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
    delete_registry_repo(STACK["LOCAL_REGISTRY"], repo)


def deploy_args(app, **extra):
    a = {"path": app["ctx"], "repository": app["repo"], "registry": STACK["LOCAL_REGISTRY"], "network_mode": "host",
         "cluster": app["name"], "service": "web", "container": "app", "wait": False,
         "task_definition": spec(app["family"]), "service_settings": {"desired_count": 1}}
    a.update(extra)
    return a


@requires_stack
def test_registry_unreachable_fails_clearly_and_the_rerun_converges(app):
    closed = "127.0.0.1:%d" % free_port()  # bound once and released: nothing listens there
    rc, r = run_deploy(deploy_args(app, registry=closed), app["tmp"])
    assert rc != 0
    msg = r.get("msg", "")
    assert closed in msg, msg
    assert "Traceback" not in msg and "MODULE FAILURE" not in msg, msg
    # nothing reached ECS or ECR
    assert revisions(app["ecs"], app["family"]) == []
    assert app["ecs"].list_services(cluster=app["name"])["serviceArns"] == []
    assert app["ecr"].describe_images(repositoryName=app["repo"])["imageDetails"] == []

    rc, r = run_deploy(deploy_args(app), app["tmp"])
    assert rc == 0, r.get("msg")
    assert r["changed"] and r["pushed"] and r["services"][0]["created"]
    assert revisions(app["ecs"], app["family"]) == [r["task_definition_arn"]]
    rc, again = run_deploy(deploy_args(app), app["tmp"])
    assert rc == 0 and again["changed"] is False, again.get("actions")


@requires_stack
def test_two_deploys_of_one_service_at_once(app):
    rc, first = run_deploy(deploy_args(app), app["tmp"])
    assert rc == 0, first.get("msg")
    wanted = [{"name": "RELEASE", "value": "2"}]
    results = {}

    def one(key):
        results[key] = run_deploy(deploy_args(app, task_definition=spec(app["family"], env=wanted)), app["tmp"])

    threads = [threading.Thread(target=one, args=(k,)) for k in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert sorted(results) == ["a", "b"]
    for rc, r in results.values():
        assert rc == 0, r.get("msg")
    reported = {r["task_definition_arn"] for rc, r in results.values()}
    current = app["ecs"].describe_services(cluster=app["name"], services=["web"])["services"][0]["taskDefinition"]
    # the service ends on a revision one of the runs reported, and it holds what both asked for
    assert current in reported
    td = app["ecs"].describe_task_definition(taskDefinition=current)["taskDefinition"]
    assert td["containerDefinitions"][0]["environment"] == wanted
    assert td["containerDefinitions"][0]["image"] == first["image_uri"]
    # without a lock both runs may register the same definition (ECS has no compare-and-set), never more than that
    new = [a for a in revisions(app["ecs"], app["family"]) if a != first["task_definition_arn"]]
    assert 1 <= len(new) <= 2, new
    # nothing lost, nothing left to do
    rc, after = run_deploy(deploy_args(app, task_definition=spec(app["family"], env=wanted)), app["tmp"])
    assert rc == 0 and after["changed"] is False, after.get("actions")


def _counts(name):
    ec2, elb, ecs = boto("ec2"), boto("elbv2"), boto("ecs")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [name]}])["Vpcs"]
    counts = {"vpc": len(vpcs)}
    if len(vpcs) == 1:
        vpc = [{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}]
        nats = ec2.describe_nat_gateways(Filters=vpc)["NatGateways"]
        counts["nat"] = len([n for n in nats if n["State"] in ("pending", "available")])
        groups = ec2.describe_security_groups(Filters=vpc)["SecurityGroups"]
        counts["sg"] = sorted(g["GroupName"] for g in groups)
        counts["subnet"] = len(ec2.describe_subnets(Filters=vpc)["Subnets"])
        tables = ec2.describe_route_tables(Filters=vpc)["RouteTables"]
        counts["route_table"] = sorted(t["Value"] for rt in tables for t in rt.get("Tags", []) if t["Key"] == "Name")
        counts["eip"] = len(ec2.describe_addresses(
            Filters=[{"Name": "tag:appdeploy:stack", "Values": [name]}])["Addresses"])
        counts["igw"] = len(ec2.describe_internet_gateways(
            Filters=[{"Name": "attachment.vpc-id", "Values": [vpcs[0]["VpcId"]]}])["InternetGateways"])
    counts["lb"] = len([lb for lb in elb.describe_load_balancers()["LoadBalancers"] if lb["LoadBalancerName"] == name])
    counts["tg"] = len([tg for tg in elb.describe_target_groups()["TargetGroups"] if tg["TargetGroupName"].startswith(name)])
    try:
        services = ecs.describe_services(cluster=name, services=ecs.list_services(cluster=name)["serviceArns"] or ["none"])
        counts["service"] = len([s for s in services["services"] if s["status"] == "ACTIVE"])
    except ecs.exceptions.ClusterNotFoundException:
        counts["service"] = 0
    return counts


class EndpointProxy:
    """A TCP forwarder in front of moto: stop() takes the AWS endpoint down (listener and open connections) while
    moto keeps its state; a new proxy on the same port brings it back."""

    def __init__(self, target_port, port=0):
        self.target_port = target_port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client = self.sock.accept()[0]
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.sock.close()
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass


def _assert_one_of_each(name):
    counts = _counts(name)
    assert counts == {
        "vpc": 1, "nat": 1, "eip": 1, "subnet": 4, "igw": 1, "lb": 1, "tg": 1, "service": 1,
        "sg": sorted(["default", name + "-alb", name + "-app", name + "-db"]),
        "route_table": sorted([name + "-public"] + [n for n in counts["route_table"] if n.startswith(name + "-private-")]),
    }, counts
    assert len([n for n in counts["route_table"] if n.startswith(name + "-private-")]) == 2, counts


def _teardown(name, cert_dir):
    subprocess.run([os.path.join(BIN, "ansible-playbook"), "playbooks/teardown.yml", "-e", "teardown_confirm=%s" % name,
                    "-e", "teardown_delete_images=true", "-e", "appdeploy_stack=%s" % name],
                   cwd=ROOT, env=_site_env(), capture_output=True, text=True, timeout=600, check=False)
    if os.path.isdir(cert_dir) and cert_dir.rstrip("/").endswith("/" + name):
        subprocess.run(["rm", "-rf", "--", cert_dir], check=False)
    delete_registry_repo(STACK["LOCAL_REGISTRY"], name)
    try:  # the teardown keeps the final DB snapshot by design; this test's snapshot is not worth keeping
        boto("rds").delete_db_snapshot(DBSnapshotIdentifier=name + "-final")
    except Exception:  # best effort on a shared stack
        pass


def _wait_for_vpc(name, deadline):
    ec2 = boto("ec2")
    while time.monotonic() < deadline:
        if ec2.describe_vpcs(Filters=[{"Name": "tag:appdeploy:stack", "Values": [name]}])["Vpcs"]:
            return
        time.sleep(0.05)


@requires_stack
def test_site_interrupted_then_rerun_leaves_no_duplicates():
    name = "it-intr-%s" % uuid.uuid4().hex[:6]
    stack_args = ["-e", "appdeploy_stack=%s" % name]
    cert_dir = inventory_value(name, "elb_certificate_dir")
    env = _site_env()
    playbook = os.path.join(BIN, "ansible-playbook")
    try:
        proc = subprocess.Popen([playbook, "site.yml"] + stack_args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        seen = []
        interrupted = False
        deadline = time.monotonic() + 300
        for line in proc.stdout:
            seen.append(line)
            if not interrupted and re.match(r"TASK \[appdeploy\.ecs\.vpc : Create or update the VPC", line):
                # The whole network is one module call: interrupt it part-way, as soon as the VPC exists.
                _wait_for_vpc(name, time.monotonic() + 60)
                os.killpg(proc.pid, signal.SIGINT)
                interrupted = True
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                break
        rc = proc.wait(60)
        out = "".join(seen)
        assert interrupted, out[-3000:]
        assert rc != 0, out[-3000:]
        partial = _counts(name)
        assert partial["vpc"] == 1 and partial["lb"] == 0, partial  # really stopped part-way

        rerun = subprocess.run([playbook, "site.yml"] + stack_args, cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=600, check=False)
        assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-5000:]
        _assert_one_of_each(name)
    finally:
        _teardown(name, cert_dir)


@requires_stack
def test_endpoint_down_mid_play_fails_clearly_and_the_rerun_converges():
    name = "it-down-%s" % uuid.uuid4().hex[:6]
    stack_args = ["-e", "appdeploy_stack=%s" % name]
    cert_dir = inventory_value(name, "elb_certificate_dir")
    moto_port = urlparse(STACK["AWS_ENDPOINT_URL"]).port
    proxy = EndpointProxy(moto_port)
    endpoint = "http://127.0.0.1:%d" % proxy.port
    env = _site_env()
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_URL=endpoint)
    playbook = os.path.join(BIN, "ansible-playbook")
    try:
        proc = subprocess.Popen([playbook, "site.yml"] + stack_args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        seen = []
        cut = False
        deadline = time.monotonic() + 300
        for line in proc.stdout:
            seen.append(line)
            if not cut and re.match(r"TASK \[appdeploy\.ecs\.rds : ", line):
                proxy.stop()  # the endpoint goes away between the vpc and the rds role
                cut = True
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                break
        rc = proc.wait(60)
        out = "".join(seen)
        assert cut, out[-3000:]
        assert rc != 0, out[-3000:]
        assert "Could not connect to the endpoint URL" in out, out[-3000:]
        assert "Traceback" not in out and "MODULE FAILURE" not in out, out[-3000:]
        partial = _counts(name)
        assert partial["vpc"] == 1 and partial["lb"] == 0 and partial["service"] == 0, partial

        proxy = EndpointProxy(moto_port, port=proxy.port)  # the endpoint is back, with its state
        rerun = subprocess.run([playbook, "site.yml"] + stack_args, cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=600, check=False)
        assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-5000:]
        _assert_one_of_each(name)
    finally:
        proxy.stop()
        _teardown(name, cert_dir)
