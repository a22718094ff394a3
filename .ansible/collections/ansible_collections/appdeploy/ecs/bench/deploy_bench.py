#!/usr/bin/env python
"""Benchmark appdeploy.ecs.deploy on the local stack (prints figures; not a test).

    source .local-stack/env && .venv/bin/python bench/deploy_bench.py [--runs 5]

Measures, as medians of --runs wall-clock runs of `ansible-playbook` with one task each:
  1. baseline: one amazon.aws.aws_caller_info task;
  2. no-op deploy (image already in the registry, service already on the right revision), and its ratio to 1;
  3. the same no-op deploy with an empty Docker cache (the repository's local images removed before every run);
  4. a rollout (new task definition revision + UpdateService) to 1 service and to 10 services, wait: false
     (moto never starts tasks, so there is nothing to wait for here).
Target from issue 3: no-op <= 1.3x baseline.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, ".venv", "bin")


def stack_env():
    path = os.path.join(ROOT, ".local-stack", "env")
    if not os.path.isfile(path):
        sys.exit("local stack env %s not found: run scripts/local-stack up" % path)
    env = dict(os.environ)
    with open(path) as f:
        for line in f:
            if line.startswith("export ") and "=" in line:
                k, v = line[len("export "):].strip().split("=", 1)
                env[k] = v
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    return env


ENV = stack_env()


def playbook(tmp, task):
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"ansible_python_interpreter": os.path.join(BIN, "python")}, "tasks": [task]}]
    path = os.path.join(tmp, "pb-%s.yml" % uuid.uuid4().hex[:6])
    with open(path, "w") as f:
        json.dump(play, f)
    return path


def run(pb):
    start = time.monotonic()
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", pb], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    try:
        result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        sys.exit("ansible-playbook failed:\n%s\n%s" % (proc.stdout[-2000:], proc.stderr[-2000:]))
    if proc.returncode != 0:
        sys.exit("task failed: %s" % result.get("msg"))
    return elapsed, result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    opts = ap.parse_args()
    import boto3
    import docker

    name = "bench-deploy-%s" % uuid.uuid4().hex[:8]
    repo = name + "/app"
    kw = dict(endpoint_url=ENV["AWS_ENDPOINT_URL"], region_name=ENV["AWS_DEFAULT_REGION"],
              aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"], aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"])
    ecr, ecs = boto3.client("ecr", **kw), boto3.client("ecs", **kw)
    ecr.create_repository(repositoryName=repo)
    ecs.create_cluster(clusterName=name)
    dclient = docker.DockerClient(base_url=ENV["DOCKER_HOST"])
    image_repo = "%s/%s" % (ENV["LOCAL_REGISTRY"], repo)

    with tempfile.TemporaryDirectory() as tmp:
        ctx = os.path.join(tmp, "ctx")
        os.makedirs(os.path.join(ctx, "www"))
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write("FROM %s\nCOPY www /www\nCMD [\"httpd\", \"-f\", \"-p\", \"18080\", \"-h\", \"/www\"]\n"
                    % ENV["LOCAL_BASE_IMAGE"])
        for i in range(50):  # a small but not trivial context
            with open(os.path.join(ctx, "www", "page%02d.html" % i), "w") as f:
                f.write("page %d\n" % i * 200)

        def deploy_task(services, release="1"):
            return {"name": "Deploy", "appdeploy.ecs.deploy": {
                "path": ctx, "repository": repo, "registry": ENV["LOCAL_REGISTRY"], "network_mode": "host",
                "cluster": name, "service": services, "container": "app", "wait": False,
                "task_definition": {"family": name, "containerDefinitions": [{
                    "name": "app", "image": "x", "memory": 64,
                    "environment": [{"name": "RELEASE", "value": release}]}]}}}

        baseline_pb = playbook(tmp, {"name": "Caller info", "amazon.aws.aws_caller_info": {}})
        many = ["svc-%02d" % i for i in range(10)]
        setup_t = run(playbook(tmp, deploy_task(["svc-00"])))[0]  # builds, pushes, creates
        run(playbook(tmp, deploy_task(many)))                      # creates the other nine
        noop_pb = playbook(tmp, deploy_task(["svc-00"]))

        def empty_cache():
            for image in dclient.images.list(name=image_repo):
                dclient.images.remove(image.id, force=True)

        # interleaved, so that load from anything else on the machine hits all three alike
        base_t, noop_t, cold_t = [], [], []
        for _run in range(opts.runs):
            base_t.append(run(baseline_pb)[0])
            t, r = run(noop_pb)
            assert r["changed"] is False, r["actions"]
            noop_t.append(t)
            empty_cache()
            t, r = run(noop_pb)
            assert r["changed"] is False and not r["built"], r["actions"]
            cold_t.append(t)
        base, noop, cold = (statistics.median(x) for x in (base_t, noop_t, cold_t))

        counter = iter(range(2, 10000))
        one_times, ten_times = [], []
        for _run in range(opts.runs):
            t, r = run(playbook(tmp, deploy_task(["svc-00"], str(next(counter)))))
            assert r["changed"] and r["services"][0]["updated"]
            one_times.append(t)
            t, r = run(playbook(tmp, deploy_task(many, str(next(counter)))))
            assert all(s["updated"] for s in r["services"]) and len(r["services"]) == 10
            ten_times.append(t)
        one, ten = statistics.median(one_times), statistics.median(ten_times)

    print("appdeploy.ecs.deploy benchmark (median of %d runs, wall clock, local stack)" % opts.runs)
    print("  first deploy (build + push + create), once    %6.2f s" % setup_t)
    print("  baseline: ansible-playbook + aws_caller_info  %6.2f s" % base)
    print("  no-op deploy                                  %6.2f s   ratio %.2fx (target <= 1.30x)" % (noop, noop / base))
    print("  no-op deploy, empty Docker cache              %6.2f s   ratio %.2fx" % (cold, cold / base))
    print("  rollout to 1 service (register + update)      %6.2f s   ratio %.2fx" % (one, one / base))
    print("  rollout to 10 services (1 register, 10 upd.)  %6.2f s   ratio %.2fx" % (ten, ten / base))
    for svc in many:
        ecs.delete_service(cluster=name, service=svc, force=True)
    ecr.delete_repository(repositoryName=repo, force=True)
    empty_cache()


if __name__ == "__main__":
    main()
