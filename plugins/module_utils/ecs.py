# -*- coding: utf-8 -*-
# Copyright: appdeploy.ecs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ECS plumbing for appdeploy.ecs.deploy: task definition normalisation and comparison, service reads and writes,
and a single polling loop that waits for several services' rollouts at once.

Normalisation (so that a definition read back from ECS equals the one that was registered):
- only the fields RegisterTaskDefinition accepts are compared (ARN, revision, status, requiresAttributes,
  compatibilities, registeredAt/By ... are outputs);
- containers sorted by name; environment, secrets, ulimits, mountPoints, volumesFrom, portMappings, dependsOn,
  extraHosts, systemControls, environmentFiles, volumes, placementConstraints, requiresCompatibilities sorted;
- environment values compared as strings (ECS stores strings; YAML may give ints or booleans);
- defaults ECS (or moto) fills in are dropped: container ``cpu: 0``, ``essential: true``, ``portMappings[].protocol:
  tcp``, ``hostPort`` equal to ``containerPort`` in awsvpc/host mode and ``hostPort: 0``, false ``readOnly`` /
  ``privileged`` / ``readonlyRootFilesystem`` / ``interactive`` / ``pseudoTerminal`` / ``disableNetworking``,
  ``versionConsistency: enabled``, health check ``interval: 30``, ``timeout: 5``, ``retries: 3``,
  ``startPeriod: 0``, task ``networkMode: bridge`` when absent, ``enableFaultInjection: false``, and every empty
  list or mapping (``mountPoints: []``, ``volumesFrom: []``, ``environment: []``, ``volumes: []`` ...);
- task ``cpu``/``memory`` compared as numbers (``"0.25 vCPU"`` is ``"256"``, ``"1 GB"`` is ``"1024"``);
- ``taskRoleArn`` / ``executionRoleArn`` compared by role name, so a name and the role's ARN are equal.
"""

from __future__ import annotations

import copy
import re
import time

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

REGISTER_FIELDS = (
    "family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions", "volumes",
    "placementConstraints", "requiresCompatibilities", "cpu", "memory", "pidMode", "ipcMode", "proxyConfiguration",
    "inferenceAccelerators", "ephemeralStorage", "runtimePlatform", "enableFaultInjection",
)

_FALSE_DEFAULTS = ("privileged", "readonlyRootFilesystem", "interactive", "pseudoTerminal", "disableNetworking")
_HEALTHCHECK_DEFAULTS = {"interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0}
_SORTED_LISTS = {
    "environment": lambda e: (e.get("name", ""), str(e.get("value", ""))),
    "secrets": lambda e: (e.get("name", ""), e.get("valueFrom", "")),
    "ulimits": lambda e: e.get("name", ""),
    "mountPoints": lambda e: (e.get("containerPath", ""), e.get("sourceVolume", "")),
    "volumesFrom": lambda e: e.get("sourceContainer", ""),
    "dependsOn": lambda e: e.get("containerName", ""),
    "extraHosts": lambda e: (e.get("hostname", ""), e.get("ipAddress", "")),
    "systemControls": lambda e: e.get("namespace", ""),
    "environmentFiles": lambda e: (e.get("type", ""), e.get("value", "")),
    "portMappings": lambda e: (e.get("containerPort", 0), e.get("protocol", ""), e.get("hostPort", 0),
                               e.get("name", "")),
}


class ECSError(Exception):
    pass


class RolloutError(ECSError):
    def __init__(self, message, services):
        super().__init__(message)
        self.services = services


def registrable(td):
    """The part of a described task definition that RegisterTaskDefinition accepts."""
    return {k: copy.deepcopy(v) for k, v in td.items() if k in REGISTER_FIELDS and v is not None}


def _prune(value):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = _prune(v)
            if v is None or v == [] or v == {}:
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def _units(value, per_unit):
    """'0.25 vCPU' -> '256', '1 GB' -> '1024', 512 -> '512'."""
    if value is None:
        return None
    text = str(value).strip()
    m = re.match(r"^([0-9.]+)\s*(vcpu|gb)$", text, re.IGNORECASE)
    if m:
        return str(int(round(float(m.group(1)) * per_unit)))
    try:
        return str(int(float(text)))
    except ValueError:
        return text


def role_name(value):
    if not value:
        return value
    return str(value).rsplit("/", 1)[-1] if str(value).startswith("arn:") else str(value)


def _int_or_keep(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def normalise_container(container, network_mode="bridge"):
    c = copy.deepcopy(container)
    for key in ("cpu", "memory", "memoryReservation", "startTimeout", "stopTimeout"):
        if key in c and c[key] is not None:
            c[key] = _int_or_keep(c[key])
    if c.get("cpu") == 0:
        del c["cpu"]
    if c.get("essential") is True:
        del c["essential"]
    for key in _FALSE_DEFAULTS:
        if c.get(key) is False:
            del c[key]
    if c.get("versionConsistency") == "enabled":
        del c["versionConsistency"]
    if "environment" in c and c["environment"]:
        c["environment"] = [{"name": str(e.get("name")), "value": env_value(e.get("value"))} for e in c["environment"]]
    ports = []
    for p in c.get("portMappings") or []:
        p = dict(p)
        for key in ("containerPort", "hostPort"):
            if key in p:
                p[key] = _int_or_keep(p[key])
        if p.get("protocol") == "tcp":
            del p["protocol"]
        if "hostPort" in p and (p["hostPort"] == 0 or (network_mode in ("awsvpc", "host")
                                                       and p["hostPort"] == p.get("containerPort"))):
            del p["hostPort"]
        ports.append(p)
    if ports:
        c["portMappings"] = ports
    for key in ("mountPoints", "volumesFrom"):
        if c.get(key):
            c[key] = [{k: v for k, v in m.items() if not (k == "readOnly" and v is False)} for m in c[key]]
    if isinstance(c.get("healthCheck"), dict):
        hc = dict(c["healthCheck"])
        for key, default in _HEALTHCHECK_DEFAULTS.items():
            if key in hc and _int_or_keep(hc[key]) == default:
                del hc[key]
        c["healthCheck"] = hc
    if isinstance(c.get("logConfiguration"), dict) and c["logConfiguration"].get("secretOptions"):
        lc = dict(c["logConfiguration"])
        lc["secretOptions"] = sorted(lc["secretOptions"], key=lambda s: s.get("name", ""))
        c["logConfiguration"] = lc
    for key, sort_key in _SORTED_LISTS.items():
        if c.get(key):
            c[key] = sorted(c[key], key=sort_key)
    if c.get("links"):
        c["links"] = sorted(c["links"])
    return _prune(c)


def normalise_task_definition(td):
    """Canonical form of a task definition (described, or a RegisterTaskDefinition spec) for comparison."""
    t = registrable(td)
    t["networkMode"] = t.get("networkMode") or "bridge"
    for key, per_unit in (("cpu", 1024), ("memory", 1024)):
        if t.get(key) is not None:
            t[key] = _units(t[key], per_unit)
    for key in ("taskRoleArn", "executionRoleArn"):
        if t.get(key):
            t[key] = role_name(t[key])
    if t.get("enableFaultInjection") is False:
        del t["enableFaultInjection"]
    t["containerDefinitions"] = sorted(
        (normalise_container(c, t["networkMode"]) for c in t.get("containerDefinitions") or []),
        key=lambda c: c.get("name", ""))
    if t.get("volumes"):
        t["volumes"] = sorted(t["volumes"], key=lambda v: v.get("name", ""))
    if t.get("placementConstraints"):
        t["placementConstraints"] = sorted(t["placementConstraints"],
                                           key=lambda p: (p.get("type", ""), p.get("expression", "")))
    if t.get("requiresCompatibilities"):
        t["requiresCompatibilities"] = sorted(t["requiresCompatibilities"])
    return _prune(t)


def differences(before, after):
    """Human-readable list of what differs between two normalised task definitions."""
    out = []
    keys = sorted(set(before) | set(after))
    for key in keys:
        if key == "containerDefinitions":
            b = {c.get("name"): c for c in before.get(key, [])}
            a = {c.get("name"): c for c in after.get(key, [])}
            for name in sorted(set(b) | set(a)):
                if name not in b:
                    out.append("container %s added" % name)
                elif name not in a:
                    out.append("container %s removed" % name)
                else:
                    for ck in sorted(set(b[name]) | set(a[name])):
                        if b[name].get(ck) != a[name].get(ck):
                            out.append("%s of container %s" % (ck, name))
        elif before.get(key) != after.get(key):
            out.append(key)
    return out


def set_container_image(td, container, image):
    """Copy of td with container's image replaced; raises ECSError when the container is not in it."""
    td = copy.deepcopy(td)
    names = [c.get("name") for c in td.get("containerDefinitions") or []]
    if container not in names:
        raise ECSError("container %r is not in task definition %s (containers: %s); set the container option to one "
                       "of them" % (container, td.get("taskDefinitionArn") or td.get("family"),
                                    ", ".join(str(n) for n in names) or "none"))
    for c in td["containerDefinitions"]:
        if c.get("name") == container:
            c["image"] = image
    return td


def container_image(td, container):
    for c in (td or {}).get("containerDefinitions") or []:
        if c.get("name") == container:
            return c.get("image")
    return None


# ---------------------------------------------------------------------------------------------------- service reads
def describe_services(client, cluster, names):
    """{name: service dict or None (missing or INACTIVE)}; raises ECSError when the cluster does not exist."""
    found = {}
    names = list(names)
    for i in range(0, len(names), 10):
        chunk = names[i:i + 10]
        try:
            resp = client.describe_services(cluster=cluster, services=chunk, aws_retry=True)
        except is_boto3_error_code("ClusterNotFoundException"):
            raise ECSError("cluster %s not found; create it first (e.g. with the appdeploy.ecs.ecs_cluster role)"
                           % cluster)
        for svc in resp.get("services") or []:
            found[svc["serviceName"]] = svc if svc.get("status") != "INACTIVE" else None
        for f in resp.get("failures") or []:
            if f.get("reason") != "MISSING" and "cluster" in str(f.get("reason", "")).lower():
                raise ECSError("cluster %s not found; create it first" % cluster)
    return {n: found.get(n) for n in names}


def describe_task_definition(client, ref):
    try:
        return client.describe_task_definition(taskDefinition=ref, aws_retry=True)["taskDefinition"]
    except is_boto3_error_code("ClientException"):
        return None


def env_value(value):
    """ECS stores environment values as strings; YAML booleans become 'true'/'false' (not Python's 'True')."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def register_task_definition(client, td):
    spec = registrable(td)
    for c in spec.get("containerDefinitions") or []:
        if c.get("environment"):
            c["environment"] = [dict(e, value=env_value(e.get("value"))) for e in c["environment"]]
    return client.register_task_definition(aws_retry=True, **spec)["taskDefinition"]


# ------------------------------------------------------------------------------------------------- service settings
UPDATABLE_SETTINGS = ("deploymentConfiguration", "placementStrategy", "capacityProviderStrategy",
                      "healthCheckGracePeriodSeconds", "networkConfiguration")


def _norm_setting(key, value, current_service=None):
    if value is None:
        return None
    if key == "capacityProviderStrategy":
        return sorted(({"capacityProvider": s.get("capacityProvider"), "weight": int(s.get("weight") or 0),
                        "base": int(s.get("base") or 0)} for s in value), key=lambda s: s["capacityProvider"] or "")
    if key == "networkConfiguration":
        c = value.get("awsvpcConfiguration") or {}
        return {"subnets": sorted(c.get("subnets") or []), "securityGroups": sorted(c.get("securityGroups") or []),
                "assignPublicIp": c.get("assignPublicIp") or "DISABLED"}
    if key == "placementStrategy":
        return [{"type": s.get("type"), "field": s.get("field")} if s.get("field") else {"type": s.get("type")}
                for s in value]
    return value


def settings_drift(service, wanted):
    """The subset of ``wanted`` (UpdateService parameters) that differs from the described service.

    Only keys the user set are compared; within deploymentConfiguration only the sub-keys the user set (ECS fills
    in others, such as alarms), so an unset option leaves the service alone.
    """
    drift = {}
    for key in UPDATABLE_SETTINGS:
        if key not in wanted or wanted[key] is None:
            continue
        have = service.get(key)
        if key == "deploymentConfiguration":
            have = have or {}
            if any(have.get(k) != v for k, v in wanted[key].items()):
                # UpdateService replaces the whole structure: keep what ECS has for the keys the user did not set
                merged = dict(have)
                merged.update(wanted[key])
                drift[key] = merged
        elif _norm_setting(key, have) != _norm_setting(key, wanted[key]):
            drift[key] = wanted[key]
    return drift


def create_service(client, cluster, name, td_arn, params):
    kwargs = dict(params)
    kwargs.update(cluster=cluster, serviceName=name, taskDefinition=td_arn)
    return client.create_service(aws_retry=True, **kwargs)["service"]


def update_service(client, cluster, name, td_arn=None, force=False, params=None):
    kwargs = dict(params or {})
    kwargs.update(cluster=cluster, service=name)
    if td_arn:
        kwargs["taskDefinition"] = td_arn
    if force:
        kwargs["forceNewDeployment"] = True
    return client.update_service(aws_retry=True, **kwargs)["service"]


# ----------------------------------------------------------------------------------------------------------- waiting
def primary_deployment(service):
    for d in (service or {}).get("deployments") or []:
        if d.get("status") == "PRIMARY":
            return d
    return None


def running_task_definition(service):
    d = primary_deployment(service)
    return (d or {}).get("taskDefinition") or (service or {}).get("taskDefinition")


def rollout_state(service, td_arn, seen):
    """COMPLETED, FAILED or IN_PROGRESS for the rollout of td_arn; ``seen`` collects our deployments' ids."""
    if service is None:
        return "FAILED", "the service no longer exists"
    deployments = service.get("deployments") or []
    for d in deployments:
        if d.get("taskDefinition") == td_arn:
            seen.add(d.get("id"))
            if d.get("rolloutState") == "FAILED":
                return "FAILED", d.get("rolloutStateReason") or "deployment %s failed" % d.get("id")
    primary = primary_deployment(service)
    if primary is None:
        return "IN_PROGRESS", "no primary deployment yet"
    if primary.get("taskDefinition") != td_arn:
        if seen:
            return "FAILED", "deployment of %s was rolled back to %s" % (td_arn, primary.get("taskDefinition"))
        return "IN_PROGRESS", "waiting for ECS to start the deployment"
    if len(deployments) > 1:
        return "IN_PROGRESS", "waiting for %d older deployment(s) to drain" % (len(deployments) - 1)
    state = primary.get("rolloutState")
    if state == "COMPLETED" or (state is None and primary.get("runningCount") == primary.get("desiredCount")):
        return "COMPLETED", primary.get("rolloutStateReason") or "steady state"
    return "IN_PROGRESS", primary.get("rolloutStateReason") or "running %s of %s" % (
        primary.get("runningCount"), primary.get("desiredCount"))


def new_events(service, known_ids):
    """Events not in known_ids, oldest first, as 'timestamp message' strings."""
    out = []
    for e in reversed((service or {}).get("events") or []):
        if e.get("id") in known_ids:
            continue
        ts = e.get("createdAt")
        ts = ts.isoformat() if hasattr(ts, "isoformat") else str(ts or "")
        out.append(("%s %s" % (ts, e.get("message", ""))).strip())
    return out


def summarise(service, td_arn, known_event_ids):
    d = primary_deployment(service) or {}
    return {
        "service_arn": (service or {}).get("serviceArn"),
        "status": (service or {}).get("status"),
        "deployment_id": d.get("id"),
        "rollout_state": d.get("rolloutState"),
        "rollout_state_reason": d.get("rolloutStateReason"),
        "running_count": (service or {}).get("runningCount"),
        "desired_count": (service or {}).get("desiredCount"),
        "pending_count": (service or {}).get("pendingCount"),
        "deployments": len((service or {}).get("deployments") or []),
        "running_task_definition_arn": running_task_definition(service),
        "events": new_events(service, known_event_ids),
    }


def wait_for_rollouts(client, cluster, targets, known_event_ids, timeout, delay,
                      sleep=time.sleep, clock=time.monotonic):
    """Wait for every service in targets ({name: task definition ARN}) in one polling loop.

    Returns {name: summary}. Raises RolloutError on the first failed rollout (circuit breaker, rollback, service
    gone) or when the timeout passes, with every service's summary.
    """
    pending = dict(targets)
    seen = {name: set() for name in targets}
    results = {}
    deadline = clock() + timeout
    while True:
        services = describe_services(client, cluster, list(pending))
        failed = []
        for name in list(pending):
            svc = services.get(name)
            state, reason = rollout_state(svc, pending[name], seen[name])
            results[name] = summarise(svc, pending[name], known_event_ids.get(name, set()))
            results[name]["wait_state"] = state
            results[name]["wait_reason"] = reason
            if state == "COMPLETED":
                del pending[name]
            elif state == "FAILED":
                failed.append(name)
        if failed:
            parts = []
            for name in failed:
                r = results[name]
                parts.append("deployment of %s to service %s failed (%s); the service now runs %s; events: %s" % (
                    targets[name], name, r["wait_reason"], r["running_task_definition_arn"],
                    "; ".join(r["events"][-10:]) or "none"))
            raise RolloutError(" | ".join(parts) + ". The previous revision was left registered.", results)
        if not pending:
            return results
        if clock() >= deadline:
            parts = []
            for name in pending:
                r = results[name]
                parts.append("service %s did not reach a steady state on %s (%s; running %s of %s); it now runs %s; "
                             "last events: %s" % (name, targets[name], r["wait_reason"], r["running_count"],
                                                  r["desired_count"], r["running_task_definition_arn"],
                                                  "; ".join(r["events"][-10:]) or "none"))
            raise RolloutError("timed out after %ss: %s" % (timeout, " | ".join(parts)), results)
        sleep(delay)
