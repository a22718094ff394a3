#!/usr/bin/env python
"""Benchmark site.yml on the local stack: wall time and AWS API requests (prints figures; not a test).

    .venv/bin/python bench/site_bench.py [--runs 3] [--reruns 3] [--keep]

Needs `scripts/local-stack up` (the registry and the Docker engine in .local-stack/env). The AWS APIs are a
PRIVATE moto server started here on a free loopback port, so that nobody else's requests are counted; werkzeug
logs one line per request, and the script counts those lines.

Measures, for a fresh stack name:
  1. baseline: `ansible-playbook` with one amazon.aws.aws_caller_info task (median of --runs);
  2. site.yml, first run (builds everything);
  3. site.yml, no-op rerun (must report changed=0), --reruns times, each right after one more baseline run, so
     that load on the machine hits both sides of the ratio; the median rerun is reported (with the range);
  4. the teardown (playbooks/teardown.yml), which also cleans up.
Each as wall time and request count, with ratios to the baseline. A small callback plugin (written to a temporary
directory and enabled through ANSIBLE_CALLBACK_PLUGINS) notes the length of moto's log at every task start, which
attributes every request and every second to the task (hence role and module) that made it. (Running each role
alone with `--tags <role>` does not work for this: every role after vpc needs the facts the earlier roles publish.)
Targets from issue 7: no-op rerun <= 70 requests and <= 15x the one-task run; first run <= 150 requests.
"""
import argparse
import collections
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, ".venv", "bin")
REQUEST_LINE = re.compile(r'\] "(?:\x1b\[[0-9;]*m)*(GET|POST|PUT|DELETE|HEAD|PATCH) ')

CALLBACK = '''
from __future__ import absolute_import, division, print_function
__metaclass__ = type
DOCUMENTATION = """
name: request_counter
type: aggregate
short_description: per-task request counts from a moto log (bench/site_bench.py)
description: [notes the moto log length and the time at every task start]
"""
import json, os, re, time
from ansible.plugins.callback import CallbackBase
LINE = re.compile(%r)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "request_counter"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.log = os.environ["BENCH_MOTO_LOG"]
        self.out = os.environ["BENCH_TASK_OUT"]
        self.offset = os.path.getsize(self.log)
        self.rows = []
        self.current = None
        self.started = time.monotonic()

    def _count(self):
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        return sum(1 for line in data.decode("utf-8", "replace").splitlines() if LINE.search(line))

    def _close(self):
        n = self._count()
        now = time.monotonic()
        if self.current is not None:
            self.current.update(requests=n, seconds=round(now - self.started, 3))
            self.rows.append(self.current)
        elif n:
            self.rows.append({"task": "(before the first task)", "role": "", "action": "", "requests": n, "seconds": 0})
        self.started = now

    def _start(self, task):
        self._close()
        role = task._role.get_name() if task._role else ""
        self.current = {"task": task.get_name(), "role": role.split(".")[-1], "action": task.action}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task)

    def v2_playbook_on_stats(self, stats):
        self._close()
        self.current = None
        with open(self.out, "w") as f:
            json.dump(self.rows, f)
''' % REQUEST_LINE.pattern


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
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto(object):
    """A private moto server whose werkzeug access log counts the requests."""

    def __init__(self, tmp):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = os.path.join(tmp, "moto.log")
        env = dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true")
        with open(self.log, "wb") as logf:
            self.proc = subprocess.Popen([os.path.join(BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                         stdout=logf, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/moto-api/data.json", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    sys.exit("private moto on %s did not start; see %s" % (self.url, self.log))
                time.sleep(0.3)

    def requests(self):
        with open(self.log, "rb") as f:
            return sum(1 for line in f.read().decode("utf-8", "replace").splitlines() if REQUEST_LINE.search(line))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


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


def inventory_value(base_env, stack_name, expression):
    """Render a Jinja expression with the local inventory for one stack (e.g. where the run writes its certificate)."""
    env = dict(os.environ)
    env.update(base_env)
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(BIN, "ansible"), "local", "-m", "ansible.builtin.debug", "-a",
                           "msg={{ %s }}" % expression, "-e", "appdeploy_stack=%s" % stack_name, "-o"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    match = re.search(r'"msg": "([^"]*)"', proc.stdout)
    if proc.returncode != 0 or not match:
        raise RuntimeError("cannot read %s from the local inventory: %s" % (expression, proc.stdout + proc.stderr))
    return match.group(1)


class Runner(object):
    def __init__(self, tmp, moto, env):
        self.tmp = tmp
        self.moto = moto
        self.env = env
        self.cb_dir = os.path.join(tmp, "callback_plugins")
        os.makedirs(self.cb_dir)
        with open(os.path.join(self.cb_dir, "request_counter.py"), "w") as f:
            f.write(CALLBACK)

    def run(self, args, label):
        task_out = os.path.join(self.tmp, "tasks-%s.json" % uuid.uuid4().hex[:8])
        env = dict(self.env, BENCH_MOTO_LOG=self.moto.log, BENCH_TASK_OUT=task_out,
                   ANSIBLE_CALLBACK_PLUGINS=self.cb_dir, ANSIBLE_CALLBACKS_ENABLED="request_counter")
        before = self.moto.requests()
        start = time.monotonic()
        proc = subprocess.run([os.path.join(BIN, "ansible-playbook")] + args, cwd=ROOT, env=env,
                              capture_output=True, text=True, check=False)
        wall = time.monotonic() - start
        requests = self.moto.requests() - before
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-3000:])
            raise RuntimeError("%s failed (rc %d)" % (label, proc.returncode))
        recap = re.search(r"ok=(\d+)\s+changed=(\d+)", proc.stdout)
        tasks = []
        if os.path.exists(task_out):
            with open(task_out) as f:
                tasks = json.load(f)
        return {"label": label, "wall": wall, "requests": requests, "changed": int(recap.group(2)) if recap else None,
                "tasks": tasks}


def breakdown(title, result, top=12):
    by_role = collections.OrderedDict()
    by_action = collections.Counter()
    for row in result["tasks"]:
        role = row["role"] or "(play)"
        agg = by_role.setdefault(role, [0, 0.0, 0])
        agg[0] += row["requests"]
        agg[1] += row["seconds"]
        agg[2] += 1
        by_action[row["action"] or "(none)"] += row["requests"]
    print("\n%s: %d requests, %.1f s (task time by the callback %.1f s)" % (
        title, result["requests"], result["wall"], sum(r["seconds"] for r in result["tasks"])))
    print("  %-14s %5s %8s %6s" % ("role", "reqs", "seconds", "tasks"))
    for role, (n, secs, count) in by_role.items():
        print("  %-14s %5d %8.1f %6d" % (role, n, secs, count))
    print("  requests by module:")
    for action, n in by_action.most_common():
        if n:
            print("    %4d  %s" % (n, action))
    print("  slowest / costliest tasks:")
    rows = sorted(result["tasks"], key=lambda r: (r["requests"], r["seconds"]), reverse=True)[:top]
    for row in rows:
        print("    %4d req %6.1f s  [%s] %s (%s)" % (row["requests"], row["seconds"], row["role"] or "-", row["task"], row["action"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="baseline runs before the first site.yml run (median)")
    ap.add_argument("--reruns", type=int, default=3, help="no-op reruns, each after one more baseline run (median)")
    ap.add_argument("--keep", action="store_true", help="leave the stack and the private moto up (prints its URL)")
    ap.add_argument("--json", help="also write all figures to this file")
    opts = ap.parse_args()

    base_env = stack_env()
    tmp = tempfile.mkdtemp(prefix="site-bench-")
    moto = Moto(tmp)
    env = dict(base_env, AWS_ENDPOINT_URL=moto.url, AWS_URL=moto.url)
    runner = Runner(tmp, moto, env)
    stack = "bench-%s" % uuid.uuid4().hex[:6]
    cert_dir = inventory_value(base_env, stack, "elb_certificate_dir")
    stack_args = ["site.yml", "-e", "appdeploy_stack=%s" % stack]
    results = {}
    try:
        play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
                 "vars": {"ansible_python_interpreter": os.path.join(BIN, "python")},
                 "tasks": [{"name": "Caller info", "amazon.aws.aws_caller_info": {}}]}]
        baseline_pb = os.path.join(tmp, "baseline.yml")
        with open(baseline_pb, "w") as f:
            json.dump(play, f)
        base = [runner.run(["-i", "localhost,", baseline_pb], "baseline") for _run in range(opts.runs)]
        results["first"] = runner.run(stack_args, "site.yml first run")
        reruns = []
        for _run in range(max(opts.reruns, 1)):
            base.append(runner.run(["-i", "localhost,", baseline_pb], "baseline"))
            reruns.append(runner.run(stack_args, "site.yml no-op rerun"))
        results["baseline"] = {"wall": statistics.median(b["wall"] for b in base),
                               "requests": statistics.median(b["requests"] for b in base),
                               "walls": [b["wall"] for b in base]}
        # The median rerun, with its per-task breakdown; every rerun must report changed=0.
        results["rerun"] = dict(sorted(reruns, key=lambda r: r["wall"])[len(reruns) // 2],
                                walls=[r["wall"] for r in reruns], changed=max(r["changed"] for r in reruns),
                                label="site.yml no-op rerun (median of %d)" % len(reruns))
    finally:
        if not opts.keep:
            try:
                results["teardown"] = runner.run(["playbooks/teardown.yml", "-e", "appdeploy_stack=%s" % stack,
                                                  "-e", "teardown_confirm=%s" % stack, "-e", "teardown_delete_images=true"],
                                                 "teardown")
            finally:
                moto.stop()
                if cert_dir.rstrip("/").endswith("/" + stack):
                    shutil.rmtree(cert_dir, ignore_errors=True)
                delete_registry_repo(base_env["LOCAL_REGISTRY"], stack)
        else:
            print("kept: stack %s on private moto %s (pid %d)" % (stack, moto.url, moto.proc.pid))

    b = results["baseline"]
    first, rerun = results["first"], results["rerun"]
    print("site.yml benchmark on the local stack (private moto %s, stack %s)" % (moto.url, stack))
    print("  %-44s %7s %9s %8s %8s %8s" % ("", "wall s", "requests", "x wall", "x reqs", "changed"))
    label = "baseline: one aws_caller_info task (median of %d)" % len(b["walls"])
    print("  %-44s %7.2f %9d %8s %8s %8s" % (label, b["wall"], b["requests"], "1.00", "1.00", "-"))
    rows = [first, rerun] + ([results["teardown"]] if "teardown" in results else [])
    for r in rows:
        print("  %-44s %7.2f %9d %8.2f %8.1f %8s" % (r["label"], r["wall"], r["requests"], r["wall"] / b["wall"],
                                                     r["requests"] / max(b["requests"], 1), r["changed"]))
    print("  targets: no-op rerun <= 70 requests (%s), <= 15x baseline wall (%s); first run <= 150 requests (%s); "
          "rerun changed=0 (%s)" % (
              "ok" if rerun["requests"] <= 70 else "MISSED", "ok" if rerun["wall"] <= 15 * b["wall"] else "MISSED",
              "ok" if first["requests"] <= 150 else "MISSED", "ok" if rerun["changed"] == 0 else "MISSED"))
    walls = (", ".join("%.2f" % w for w in b["walls"]), ", ".join("%.2f" % w for w in rerun["walls"]))
    print("  baseline runs %s s; no-op reruns %s s" % walls)
    breakdown("first run", first)
    breakdown("no-op rerun", rerun)
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=1)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
