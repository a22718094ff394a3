"""Shared helpers for the appdeploy.ecs.deploy integration tests (tests/integration/local/test_deploy_*.py).

The tests drive the module through a real `ansible-playbook` run against the local stack written by
`scripts/local-stack up` (.local-stack/env: moto server, a real registry, a Docker engine). Kept out of a conftest.py
so other test files in this directory are unaffected.
"""
import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ENV_FILE = os.path.join(ROOT, ".local-stack", "env")
BIN = os.path.join(ROOT, ".venv", "bin")
if os.path.join(ROOT, ".collections") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, ".collections"))


def load_stack_env():
    env = {}
    if not os.path.isfile(ENV_FILE):
        return None
    with open(ENV_FILE) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export ") and "=" in line:
                k, v = line[len("export "):].split("=", 1)
                env[k] = v.strip().strip('"').strip("'")
    return env


STACK = load_stack_env()
requires_stack = pytest.mark.skipif(STACK is None, reason="local stack not running: %s is absent (run "
                                                          "scripts/local-stack up)" % ENV_FILE)


def unique(prefix="it-deploy"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def aws_env(endpoint=None):
    env = dict(os.environ)
    env.update(STACK or {})
    if endpoint:
        env["AWS_ENDPOINT_URL"] = env["AWS_URL"] = endpoint
    return env


def boto(service, endpoint=None):
    import boto3
    env = STACK
    return boto3.client(service, endpoint_url=endpoint or env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                        aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing")


def run_deploy(args, tmp_path, check=False, diff=False, endpoint=None):
    """Run appdeploy.ecs.deploy in a one-task playbook; return (rc, task result dict)."""
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": os.path.join(BIN, "python")},
             "tasks": [{"name": "Deploy", "appdeploy.ecs.deploy": args}]}]
    pb = tmp_path / ("pb-%s.yml" % uuid.uuid4().hex[:6])
    pb.write_text(json.dumps(play))
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", str(pb)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    env = aws_env(endpoint)
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    try:
        out = json.loads(proc.stdout)
        result = out["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError("ansible-playbook gave no JSON result (rc %s):\n%s\n%s" % (proc.returncode, proc.stdout,
                                                                                        proc.stderr))
    return proc.returncode, result


def registry_url():
    return "http://%s" % STACK["LOCAL_REGISTRY"]


def registry_tags(repo):
    try:
        with urllib.request.urlopen("%s/v2/%s/tags/list" % (registry_url(), repo), timeout=10) as r:
            return sorted(json.load(r).get("tags") or [])
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise


def registry_digest(repo, ref):
    req = urllib.request.Request("%s/v2/%s/manifests/%s" % (registry_url(), repo, ref), method="HEAD", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.headers["Docker-Content-Digest"]
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def docker_client():
    import docker
    return docker.DockerClient(base_url=STACK["DOCKER_HOST"], timeout=120)


def local_images(client, image_repo):
    return sorted(i.id for i in client.images.list(name=image_repo))


def revisions(ecs, family):
    arns = []
    for page in ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family):
        arns.extend(a for a in page["taskDefinitionArns"] if a.split("/")[-1].rsplit(":", 1)[0] == family)
    return arns


def write_app(root, body="hello", dockerfile=None):
    """A tiny busybox httpd app; PORT picks the listening port (the smoke test sets it)."""
    os.makedirs(os.path.join(root, "www"), exist_ok=True)
    with open(os.path.join(root, "Dockerfile"), "w") as f:
        f.write(dockerfile or "FROM %s\nCOPY www /www\nCMD [\"sh\", \"-c\", \"exec httpd -f -p ${PORT:-18080} -h /www\"]\n"
                % STACK["LOCAL_BASE_IMAGE"])
    with open(os.path.join(root, "www", "index.html"), "w") as f:
        f.write(body + "\n")
    with open(os.path.join(root, ".dockerignore"), "w") as f:
        f.write("*.tmp\nscratch/\n")


def spec(family, env=None):
    return {"family": family, "containerDefinitions": [{
        "name": "app", "image": "placeholder", "memory": 64, "portMappings": [{"containerPort": 18080}],
        "environment": env if env is not None else [{"name": "B", "value": "2"}, {"name": "A", "value": 1}]}]}


def inventory_value(stack_name, expression):
    """Render a Jinja expression with the local inventory for one stack (e.g. where the run writes its certificate)."""
    env = dict(os.environ)
    env.update(STACK or {})
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(BIN, "ansible"), "local", "-m", "ansible.builtin.debug", "-a",
                           "msg={{ %s }}" % expression, "-e", "appdeploy_stack=%s" % stack_name, "-o"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    match = re.search(r'"msg": "([^"]*)"', proc.stdout)
    if proc.returncode != 0 or not match:
        raise RuntimeError("cannot read %s from the local inventory: %s" % (expression, proc.stdout + proc.stderr))
    return match.group(1)


def delete_registry_repo(registry, repo):
    """Delete every manifest of repo in the local registry (delete is enabled there); best effort."""
    import json
    import urllib.error
    import urllib.request

    base = "http://%s/v2/%s" % (registry, repo)
    accept = ("application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, "
              "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json")
    try:
        with urllib.request.urlopen(base + "/tags/list", timeout=10) as r:
            tags = json.load(r).get("tags") or []
        for tag in tags:
            req = urllib.request.Request("%s/manifests/%s" % (base, tag), method="HEAD", headers={"Accept": accept})
            with urllib.request.urlopen(req, timeout=10) as r:
                digest = r.headers["Docker-Content-Digest"]
            urllib.request.urlopen(urllib.request.Request("%s/manifests/%s" % (base, digest), method="DELETE"),
                                   timeout=10).read()
    except (urllib.error.URLError, OSError, ValueError):
        pass
