#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: appdeploy.ecs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy
short_description: Build an image, push it to ECR and roll it out to ECS services, reporting changes honestly
version_added: 0.1.0
description:
  - Fingerprints the Docker build context (the Dockerfile, every file V(.dockerignore) lets through with its permission
    bits, the build args, the target and the platform; never mtimes or the Docker cache) and looks the fingerprint up as
    an image tag (C(fp-<40 hex>)) in the registry. When the registry already holds it, that image's digest is used;
    nothing is built or pushed, even on a fresh runner with an empty Docker cache (or no Docker engine at all).
  - Otherwise builds the image with the local Docker engine (classic builder, through the Docker SDK for Python),
    optionally runs a smoke test against it, tags it with the fingerprint and O(tags), and pushes it. A push counts as
    a change only when the registry did not already have that manifest.
  - For each service in O(service), the desired task definition is the service's current one (or O(task_definition))
    with the image of O(container) set to C(repository@sha256:digest). It is compared with the current one after
    normalisation (order of containers, environment, secrets and other lists; defaults ECS fills in, such as a
    container C(cpu) of 0, C(essential) true, port C(protocol) tcp and empty lists; role names versus ARNs). A new revision is registered only when
    they differ, and UpdateService is called only when the service is not already on that revision (or O(force)).
  - Missing services are created from O(task_definition) and O(service_settings).
  - With O(wait), waits for all the updated services at once until their new deployment is COMPLETED and older
    deployments have drained. A failed deployment (circuit breaker, rollback) or a timeout fails the task with the new
    service events and the task definition the service now runs. Previous revisions are never deregistered.
  - "Image lookup, by mode: without O(registry), the image is looked up with ECR DescribeImages by the fingerprint tag
    and pushed to the repository URI with credentials from ECR GetAuthorizationToken. With O(registry) (for example the
    local stack's registry), it is looked up with the Docker Registry HTTP API v2 (C(HEAD /v2/<repository>/manifests/<fp tag>))
    and pushed there; the digest pinned is the one the registry reports (C(Docker-Content-Digest)). ECR then only has to
    own the repository (DescribeRepositories must find it); the image is not recorded in ECR with PutImage, because an
    emulated ECR (moto) stores a different digest for the same manifest and two digests for one image would be worse
    than one authority."
author:
  - appdeploy.ecs contributors (@appdeploy)
options:
  path:
    description: The build context directory.
    type: path
    required: true
  dockerfile:
    description: The Dockerfile, relative to O(path) or absolute. It is always sent, whatever V(.dockerignore) says.
    type: str
    default: Dockerfile
  build_args:
    description: Build arguments (C(--build-arg)). Part of the fingerprint.
    type: dict
    default: {}
  target:
    description: The build stage to build (C(--target)). Part of the fingerprint.
    type: str
  platform:
    description: The platform to build for, for example V(linux/amd64). Part of the fingerprint.
    type: str
  network_mode:
    description:
      - Network for C(RUN) steps during the build, for example V(host) on an engine without a bridge network.
      - The smoke test always uses the host network.
    type: str
  docker_host:
    description: The Docker engine to use. Defaults to the standard Docker environment (E(DOCKER_HOST), the local socket).
    type: str
  repository:
    description: The ECR repository name (it must exist). With O(registry), also the repository name in that registry.
    type: str
    required: true
  registry:
    description:
      - A registry address (C(host:port), optionally with an C(http://) or C(https://) scheme) that stores the image
        instead of the ECR endpoint. Loopback addresses use plain HTTP unless a scheme is given.
    type: str
  tags:
    description:
      - Extra tags for the image, such as a git commit. When the image already exists they are added to it without
        a build (a change when a tag is new or moves).
    type: list
    elements: str
    default: []
  cluster:
    description: The ECS cluster name or ARN. Required with O(service).
    type: str
  service:
    description: One service name or a list of them. Without it, the module only builds and pushes.
    type: list
    elements: str
    default: []
  container:
    description: The container whose image is set. Required with O(service).
    type: str
  task_definition:
    description:
      - A task definition in the shape of the ECS RegisterTaskDefinition API (camelCase keys such as C(family),
        C(containerDefinitions), C(networkMode), C(cpu), C(memory), C(executionRoleArn)).
      - The image of O(container) is replaced by the built image.
      - Required to create a missing service. For an existing service, when given it replaces the service's current
        definition; when omitted, only the image of O(container) changes in the current definition.
    type: dict
  service_settings:
    description:
      - Settings used when creating a missing service. The updatable ones (deployment configuration, circuit
        breaker, placement strategy, capacity provider strategy, network configuration, health check grace period)
        are also compared with an existing service and updated when set and different; unset ones are left alone.
      - O(service_settings.desired_count), O(service_settings.launch_type) and O(service_settings.load_balancers)
        are used on creation only (autoscaling owns the desired count afterwards).
    type: dict
    suboptions:
      desired_count:
        description: Desired number of tasks at creation.
        type: int
        default: 1
      launch_type:
        description: Launch type at creation. Mutually exclusive with O(service_settings.capacity_provider_strategy).
        type: str
        choices: [EC2, FARGATE, EXTERNAL]
      capacity_provider_strategy:
        description: Capacity provider strategy.
        type: list
        elements: dict
        suboptions:
          capacity_provider:
            description: Capacity provider name.
            type: str
            required: true
          weight:
            description: Relative weight.
            type: int
          base:
            description: Minimum number of tasks on this provider.
            type: int
      load_balancers:
        description: Load balancer target groups, at creation.
        type: list
        elements: dict
        suboptions:
          target_group_arn:
            description: Target group ARN.
            type: str
            required: true
          container_name:
            description: Container to register.
            type: str
            required: true
          container_port:
            description: Container port to register.
            type: int
            required: true
      deployment_circuit_breaker:
        description: Deployment circuit breaker.
        type: dict
        suboptions:
          enable:
            description: Whether the circuit breaker is on.
            type: bool
            default: true
          rollback:
            description: Whether ECS rolls back to the last completed deployment when it trips.
            type: bool
            default: true
      minimum_healthy_percent:
        description: Lower limit of running tasks during a deployment, in percent of the desired count.
        type: int
      maximum_percent:
        description: Upper limit of tasks during a deployment, in percent of the desired count.
        type: int
      placement_strategy:
        description: Task placement strategy.
        type: list
        elements: dict
        suboptions:
          type:
            description: Strategy type.
            type: str
            required: true
            choices: [random, spread, binpack]
          field:
            description: Field the strategy applies to.
            type: str
      network_configuration:
        description: awsvpc network configuration.
        type: dict
        suboptions:
          subnets:
            description: Subnet IDs.
            type: list
            elements: str
            required: true
          security_groups:
            description: Security group IDs.
            type: list
            elements: str
            default: []
          assign_public_ip:
            description: Whether tasks get a public IP address.
            type: bool
            default: false
      health_check_grace_period_seconds:
        description: Seconds to ignore load balancer health checks after a task starts.
        type: int
  wait:
    description: Wait until every updated or created service has completed its deployment and drained older ones.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the rollouts (all services together).
    type: int
    default: 900
  wait_delay:
    description: Seconds between two polls of the services while waiting.
    type: int
    default: 10
  force:
    description:
      - Start a new deployment of every service even when nothing changed (UpdateService with forceNewDeployment).
        Always reported as a change.
    type: bool
    default: false
  smoke_test:
    description:
      - Before pushing a newly built image, run it on the local Docker engine with the host network and probe
        C(http://127.0.0.1:<port><path>) until it answers 2xx or the timeout passes. The container is always removed.
        A failure stops the module before anything is pushed.
      - Skipped when nothing is built (the image was already in the registry).
    type: dict
    suboptions:
      port:
        description: The port the image listens on.
        type: int
        required: true
      path:
        description: The HTTP path to probe.
        type: str
        default: /
      env:
        description: Environment variables for the smoke test container.
        type: dict
        default: {}
      timeout:
        description: Seconds to wait for a 2xx answer.
        type: int
        default: 30
notes:
  - The Docker engine is contacted only when a build is needed; a run whose fingerprint is already in the registry
    needs no engine.
  - In check mode nothing is built, pushed, tagged, registered, created or updated anywhere, including the local Docker
    engine. The prediction relies on the fingerprint lookup; when the image would be built, its digest is unknown, so
    a new task definition revision and a service update are predicted.
  - With O(wait=false), the module returns right after UpdateService/CreateService; the C(services) result then shows
    the state ECS reported at that moment.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Nothing is built, pushed, tagged, registered, created or updated; the fingerprint lookup drives the prediction.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Before and after image, and per service the task definition ARN and normalised definition.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: A second run with the same inputs reports no change and calls no mutating API, unless O(force=true).
requirements:
  - docker (Docker SDK for Python) >= 7.1.0, when an image has to be built
"""

EXAMPLES = r"""
- name: Build, push and roll out the web image (real AWS)
  appdeploy.ecs.deploy:
    path: "{{ playbook_dir }}/../app"
    repository: ordermanagement
    tags: ["{{ git_sha }}"]
    cluster: appdeploy
    service: ordermanagement
    container: app
    wait_timeout: 1200

- name: Same on the local stack (moto + local registry), without waiting (moto never starts tasks)
  appdeploy.ecs.deploy:
    path: app
    repository: ordermanagement
    registry: 127.0.0.1:15001
    network_mode: host
    cluster: appdeploy
    service: ordermanagement
    container: app
    wait: false
    endpoint_url: http://127.0.0.1:15000
    smoke_test:
      port: 8080
      path: /app/
      timeout: 60

- name: Create the services if they are missing and roll out to both
  appdeploy.ecs.deploy:
    path: app
    repository: ordermanagement
    cluster: appdeploy
    service: [web, worker]
    container: app
    task_definition:
      family: ordermanagement
      networkMode: awsvpc
      requiresCompatibilities: [FARGATE]
      cpu: "512"
      memory: "1024"
      executionRoleArn: ecsTaskExecutionRole
      containerDefinitions:
        - name: app
          image: placeholder
          portMappings: [{containerPort: 8080}]
          environment:
            - {name: DB_HOST, value: "{{ rds_endpoint }}"}
    service_settings:
      desired_count: 2
      launch_type: FARGATE
      deployment_circuit_breaker: {enable: true, rollback: true}
      network_configuration:
        subnets: "{{ private_subnet_ids }}"
        security_groups: ["{{ app_sg_id }}"]
      load_balancers:
        - target_group_arn: "{{ elb_target_group_arn }}"
          container_name: app
          container_port: 8080
      health_check_grace_period_seconds: 120
"""

RETURN = r"""
changed:
  description: True when a new manifest was pushed, a tag was added or moved, a revision registered, or a service created or updated.
  returned: always
  type: bool
  sample: false
actions:
  description: What the module did (or, in check mode, would do), in order, one sentence each.
  returned: always
  type: list
  elements: str
  sample: ["Image fp-3f2a... is already in 127.0.0.1:15001/app (sha256:9c1e...): nothing built or pushed.",
           "Service web is already on app:7."]
fingerprint:
  description: The build fingerprint (sha256 hex) and the tag it is stored under.
  returned: always
  type: dict
  contains:
    sha256:
      description: The fingerprint.
      type: str
    tag:
      description: The image tag derived from it.
      type: str
  sample: {"sha256": "3f2a...", "tag": "fp-3f2a..."}
built:
  description: Whether an image was built (in check mode, whether one would be).
  returned: always
  type: bool
  sample: false
pushed:
  description: Whether a manifest the registry did not have was pushed (in check mode, whether one would be).
  returned: always
  type: bool
  sample: false
image_digest:
  description: The image digest in the registry. Null in check mode when the image would be built.
  returned: always
  type: str
  sample: sha256:9c1e0d3c5b0e8f7a3d0f5a8d1f1c2b3a4d5e6f708192a3b4c5d6e7f8091a2b3c
image_uri:
  description: The image reference pinned by digest (C(repository@sha256:...)); in check mode, when the image would be built, C(repository:fp-...).
  returned: always
  type: str
  sample: 123456789012.dkr.ecr.eu-central-1.amazonaws.com/app@sha256:9c1e...
image_tags:
  description: The tags the image carries in the registry after the run (fingerprint tag first).
  returned: always
  type: list
  elements: str
  sample: ["fp-3f2a...", "a1b2c3d"]
task_definition_arn:
  description: The task definition the first service is (or would be) on after the run.
  returned: when O(service) is given
  type: str
  sample: arn:aws:ecs:eu-central-1:123456789012:task-definition/app:8
previous_task_definition_arn:
  description: The task definition the first service was on before the run (null when it was created).
  returned: when O(service) is given
  type: str
  sample: arn:aws:ecs:eu-central-1:123456789012:task-definition/app:7
container_definitions:
  description:
    - The container definitions of the task definition the first service runs after the run (the desired ones in
      check mode), with snake_case keys as M(community.aws.ecs_taskdefinition_info) returns them. Secrets appear
      only as their C(value_from) references.
  returned: when O(service) is given
  type: list
  elements: dict
services:
  description: One entry per service, in the order given.
  returned: when O(service) is given
  type: list
  elements: dict
  contains:
    service_name:
      description: The service name.
      type: str
    created:
      description: Whether the service was created.
      type: bool
    updated:
      description: Whether UpdateService was called (task definition, settings or forced deployment).
      type: bool
    registered:
      description: Whether a new task definition revision was registered for it.
      type: bool
    changes:
      description: What differed between the current and the desired task definition.
      type: list
      elements: str
    task_definition_arn:
      description: The task definition after the run.
      type: str
    previous_task_definition_arn:
      description: The task definition before the run.
      type: str
    service_arn:
      description: The service's ARN (null when check mode would create it).
      type: str
    status:
      description: The service's status as last seen (C(ACTIVE), C(DRAINING), C(INACTIVE)).
      type: str
    deployment_id:
      description: The primary deployment's ID as last seen.
      type: str
    rollout_state:
      description: The primary deployment's rollout state as last seen (C(COMPLETED) after a successful wait).
      type: str
    running_count:
      description: Running tasks as last seen.
      type: int
    desired_count:
      description: Desired tasks as last seen.
      type: int
    running_task_definition_arn:
      description: The task definition of the primary deployment as last seen.
      type: str
    events:
      description: Service events that appeared during the run, oldest first.
      type: list
      elements: str
  sample: [{"service_name": "web", "created": false, "updated": true, "registered": true, "changes": ["image of container app"],
            "task_definition_arn": "arn:aws:ecs:eu-central-1:123456789012:task-definition/app:8",
            "previous_task_definition_arn": "arn:aws:ecs:eu-central-1:123456789012:task-definition/app:7",
            "deployment_id": "ecs-svc/123", "rollout_state": "COMPLETED", "running_count": 2, "desired_count": 2,
            "running_task_definition_arn": "arn:aws:ecs:eu-central-1:123456789012:task-definition/app:8",
            "events": ["2026-11-26T10:00:00+00:00 (service web) has reached a steady state."]}]
diff:
  description: Before and after image and, per service, task definition ARN and normalised definition.
  returned: in diff mode
  type: dict
  sample: {"before": {"image": "app@sha256:aaa...", "services": {"web": {"task_definition_arn": "...:7"}}},
           "after": {"image": "app@sha256:bbb...", "services": {"web": {"task_definition_arn": "...:8"}}}}
"""

import json
import os
import re

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.appdeploy.ecs.plugins.module_utils.retries import retry_decorator

from ansible_collections.appdeploy.ecs.plugins.module_utils import fingerprint as fpr
from ansible_collections.appdeploy.ecs.plugins.module_utils import docker_engine
from ansible_collections.appdeploy.ecs.plugins.module_utils import ecr as ecr_utils
from ansible_collections.appdeploy.ecs.plugins.module_utils import ecs as ecs_utils
from ansible_collections.appdeploy.ecs.plugins.module_utils.registry import Registry, RegistryError

TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
REPO_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")


class DeployFailed(Exception):
    def __init__(self, msg, **extra):
        super().__init__(msg)
        self.extra = extra


def validate(params):
    """Return a one-line message naming the offending option, or None. Runs before any AWS or Docker call."""
    path = params["path"]
    if not os.path.isdir(path):
        return "path: build context %s is not a directory" % path
    df = params["dockerfile"]
    df_abs = df if os.path.isabs(df) else os.path.join(path, df)
    if not os.path.isfile(df_abs):
        return "dockerfile: %s not found" % df_abs
    if not REPO_RE.match(params["repository"] or ""):
        return "repository: %r is not a valid repository name (lowercase letters, digits, . _ - and /)" % params["repository"]
    for tag in params["tags"]:
        if not TAG_RE.match(tag):
            return "tags: %r is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})" % tag
    if params["service"]:
        if not params["cluster"]:
            return "cluster: required when service is given"
        if not params["container"]:
            return "container: required when service is given (the container whose image is set)"
        if len(set(params["service"])) != len(params["service"]):
            return "service: names must be unique"
    td = params["task_definition"]
    if td is not None:
        if not td.get("family"):
            return "task_definition: needs a family"
        cds = td.get("containerDefinitions")
        if not isinstance(cds, list) or not cds or not all(isinstance(c, dict) and c.get("name") for c in cds):
            return "task_definition: needs containerDefinitions, a non-empty list of containers with a name"
        if params["container"] and params["container"] not in [c["name"] for c in cds]:
            return "container: %r is not in task_definition.containerDefinitions" % params["container"]
    if params["wait_timeout"] <= 0:
        return "wait_timeout: must be a positive number of seconds"
    if params["wait_delay"] <= 0:
        return "wait_delay: must be a positive number of seconds"
    st = params["smoke_test"]
    if st:
        if not 0 < st["port"] < 65536:
            return "smoke_test.port: %s is not a TCP port" % st["port"]
        if st["timeout"] <= 0:
            return "smoke_test.timeout: must be a positive number of seconds"
    ss = params["service_settings"] or {}
    if ss.get("launch_type") and ss.get("capacity_provider_strategy"):
        return "service_settings: launch_type and capacity_provider_strategy are mutually exclusive"
    return None


def service_params(settings):
    """(CreateService-only parameters, updatable parameters) in API shape from the service_settings option."""
    s = settings or {}
    create, upd = {}, {}
    create["desiredCount"] = s.get("desired_count") if s.get("desired_count") is not None else 1
    if s.get("launch_type"):
        create["launchType"] = s["launch_type"]
    if s.get("load_balancers"):
        create["loadBalancers"] = [{"targetGroupArn": lb["target_group_arn"], "containerName": lb["container_name"],
                                    "containerPort": lb["container_port"]} for lb in s["load_balancers"]]
    dc = {}
    if s.get("deployment_circuit_breaker"):
        dc["deploymentCircuitBreaker"] = {"enable": s["deployment_circuit_breaker"]["enable"],
                                          "rollback": s["deployment_circuit_breaker"]["rollback"]}
    if s.get("minimum_healthy_percent") is not None:
        dc["minimumHealthyPercent"] = s["minimum_healthy_percent"]
    if s.get("maximum_percent") is not None:
        dc["maximumPercent"] = s["maximum_percent"]
    if dc:
        upd["deploymentConfiguration"] = dc
    if s.get("capacity_provider_strategy"):
        upd["capacityProviderStrategy"] = [
            {k: v for k, v in (("capacityProvider", c["capacity_provider"]), ("weight", c.get("weight")),
                               ("base", c.get("base"))) if v is not None} for c in s["capacity_provider_strategy"]]
    if s.get("placement_strategy"):
        upd["placementStrategy"] = [{k: v for k, v in (("type", p["type"]), ("field", p.get("field"))) if v}
                                    for p in s["placement_strategy"]]
    if s.get("network_configuration"):
        nc = s["network_configuration"]
        upd["networkConfiguration"] = {"awsvpcConfiguration": {
            "subnets": nc["subnets"], "securityGroups": nc.get("security_groups") or [],
            "assignPublicIp": "ENABLED" if nc.get("assign_public_ip") else "DISABLED"}}
    if s.get("health_check_grace_period_seconds") is not None:
        upd["healthCheckGracePeriodSeconds"] = s["health_check_grace_period_seconds"]
    return create, upd


class Deployer:
    """Decisions of the deploy module. Plumbing lives in module_utils; every mutating call is guarded by check mode."""

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.actions = []
        self.changed = False
        self.result = {"built": False, "pushed": False, "image_digest": None, "image_tags": []}
        self.diff_before = {}
        self.diff_after = {}
        self._ecr = None
        self._ecs = None
        self._docker = None

    # clients are made lazily so that a run which needs no ECS (or no Docker) never pays for them
    @property
    def ecr(self):
        if self._ecr is None:
            self._ecr = self.module.client("ecr", retry_decorator=retry_decorator())
        return self._ecr

    @property
    def ecs(self):
        if self._ecs is None:
            self._ecs = self.module.client("ecs", retry_decorator=retry_decorator())
        return self._ecs

    def docker(self):
        if self._docker is None:
            self._docker = docker_engine.connect(self.p["docker_host"])
        return self._docker

    def act(self, sentence, change=False):
        self.actions.append(sentence)
        if change:
            self.changed = True

    # ------------------------------------------------------------------------------------------------------- image
    def image(self):
        p = self.p
        try:
            fp, entries = fpr.fingerprint(p["path"], p["dockerfile"], p["build_args"], p["target"], p["platform"])
        except fpr.FingerprintError as e:
            raise DeployFailed("path: cannot fingerprint the build context: %s" % e)
        fp_tag = fpr.fingerprint_tag(fp)
        self.result["fingerprint"] = {"sha256": fp, "tag": fp_tag}

        repo = ecr_utils.describe_repository(self.ecr, p["repository"])
        if repo is None:
            raise DeployFailed("repository: ECR repository %s not found; create it first (e.g. with the "
                               "appdeploy.ecs.ecr role)" % p["repository"])
        self.registry_id = repo.get("registryId")
        if p["registry"]:
            self.reg = Registry(p["registry"])
            self.image_repo = "%s/%s" % (self.reg.host, p["repository"])
        else:
            self.reg = None
            self.image_repo = repo["repositoryUri"]

        digest = self.lookup(fp_tag)
        if digest:
            self.act("Image %s is already in %s (%s): nothing built or pushed." % (fp_tag, self.image_repo, digest))
        elif self.check:
            self.act("Would build %s from %s and push it as %s:%s (fingerprint not in the registry)."
                     % (self.image_repo, p["path"], self.image_repo, fp_tag), change=True)
            self.result["built"] = self.result["pushed"] = True
        else:
            digest = self.build_and_push(fp, fp_tag, entries)
        tags = [fp_tag] + [t for t in p["tags"] if t != fp_tag]
        if digest:
            self.extra_tags(digest, [t for t in tags if t != fp_tag])
            self.result["image_uri"] = "%s@%s" % (self.image_repo, digest)
        else:
            self.result["image_uri"] = "%s:%s" % (self.image_repo, fp_tag)
            for t in p["tags"]:
                self.act("Would tag the new image as %s:%s." % (self.image_repo, t), change=True)
        self.result["image_digest"] = digest
        self.result["image_tags"] = tags
        return self.result["image_uri"]

    def lookup(self, ref):
        if self.reg is not None:
            return self.reg.manifest_digest(self.p["repository"], ref)
        return ecr_utils.find_image_digest(self.ecr, self.p["repository"], ref, self.registry_id)

    def build_and_push(self, fp, fp_tag, entries):
        p = self.p
        client = self.docker()
        fileobj, df_in_tar = docker_engine.context_tar(p["path"], entries, p["dockerfile"])
        image_id = docker_engine.build(client, fileobj, df_in_tar, "%s:%s" % (self.image_repo, fp_tag),
                                       p["build_args"], p["target"], p["platform"], p["network_mode"])
        self.result["built"] = True
        self.result["image_id"] = image_id
        self.act("Built image %s from %s (fingerprint %s)." % (image_id, p["path"], fp_tag), change=True)
        if p["smoke_test"]:
            st = p["smoke_test"]
            self.act(docker_engine.smoke_test(client, image_id, st["port"], st["path"], st["env"], st["timeout"]))
        # Did the registry already have this manifest? The engine knows the digest of earlier pushes of this image.
        known = None
        for rd in docker_engine.repo_digests(client, image_id):
            name, sep, d = rd.partition("@")
            if sep and name == self.image_repo and self.lookup(d):
                known = d
                break
        auth = None
        if self.reg is None:
            auth = ecr_utils.docker_auth(self.ecr, self.registry_id)
        engine_digest, uploaded = docker_engine.push(client, self.image_repo, fp_tag, auth)
        digest = self.lookup(fp_tag)  # the registry is the authority, never the engine's or our own computation
        if not digest:
            raise DeployFailed("push of %s:%s reported success but the registry has no such tag" % (self.image_repo, fp_tag))
        if known == digest:
            self.act("Tagged %s:%s; the registry already had manifest %s (%d layers uploaded)."
                     % (self.image_repo, fp_tag, digest, uploaded), change=True)
        else:
            self.result["pushed"] = True
            self.act("Pushed %s:%s: new manifest %s (%d layers uploaded)." % (self.image_repo, fp_tag, digest, uploaded),
                     change=True)
        return digest

    def extra_tags(self, digest, tags):
        for tag in tags:
            have = self.lookup(tag)
            if have == digest:
                continue
            verb = "move" if have else "add"
            if self.check:
                self.act("Would %s tag %s:%s to %s." % (verb, self.image_repo, tag, digest), change=True)
                continue
            if self.reg is not None:
                self.reg.put_tag(self.p["repository"], digest, tag)
            else:
                ecr_utils.add_tag(self.ecr, self.p["repository"], digest, tag, self.registry_id)
            self.act("Tagged %s as %s:%s%s." % (digest, self.image_repo, tag, " (moved)" if have else ""), change=True)

    # ------------------------------------------------------------------------------------------------------ services
    def services(self, image_uri):
        p = self.p
        cluster, container = p["cluster"], p["container"]
        found = ecs_utils.describe_services(self.ecs, cluster, p["service"])
        create_params, upd_params = service_params(p["service_settings"])
        registered = {}  # normalised JSON -> ARN, so services sharing a definition share one revision
        described = {}
        out = []
        known_events = {}
        to_wait = {}
        for name in p["service"]:
            svc = found[name]
            entry = {"service_name": name, "created": False, "updated": False, "registered": False, "changes": []}
            current = None
            if svc is None:
                if not p["task_definition"]:
                    raise DeployFailed("service: %s not found in cluster %s; give task_definition (and "
                                       "service_settings) to create it" % (name, cluster))
                base = p["task_definition"]
            else:
                known_events[name] = set(e.get("id") for e in svc.get("events") or [])
                if svc["taskDefinition"] not in described:  # services sharing a definition: describe it once
                    described[svc["taskDefinition"]] = ecs_utils.describe_task_definition(self.ecs, svc["taskDefinition"])
                current = described[svc["taskDefinition"]]
                if current is None:
                    raise DeployFailed("service: %s runs task definition %s, which cannot be described"
                                       % (name, svc["taskDefinition"]))
                base = p["task_definition"] or current
            try:
                desired = ecs_utils.set_container_image(base, container, image_uri)
            except ecs_utils.ECSError as e:
                raise DeployFailed("container: %s" % e)
            want = ecs_utils.normalise_task_definition(desired)
            have = ecs_utils.normalise_task_definition(current) if current else None
            entry["previous_task_definition_arn"] = current["taskDefinitionArn"] if current else None
            if have == want:
                target = current["taskDefinitionArn"]
            else:
                entry["changes"] = ecs_utils.differences(have or {}, want) if have else ["new service"]
                target = self.target_revision(desired, want, registered, entry)
            entry["task_definition_arn"] = target
            self.diff_before.setdefault("services", {})[name] = {
                "task_definition_arn": entry["previous_task_definition_arn"],
                "image": ecs_utils.container_image(current, container), "task_definition": have}
            self.diff_after.setdefault("services", {})[name] = {
                "task_definition_arn": target, "image": image_uri, "task_definition": want}

            if svc is None:
                svc = self.create(name, target, create_params, upd_params, entry)
                to_wait[name] = target
                known_events.setdefault(name, set())
            else:
                drift = ecs_utils.settings_drift(svc, upd_params)
                on_target = svc.get("taskDefinition") == target
                if not on_target or p["force"] or drift:
                    what = []
                    if not on_target:
                        what.append("to %s" % target)
                    if drift:
                        what.append("settings %s" % ", ".join(sorted(drift)))
                    if p["force"]:
                        what.append("forcing a new deployment")
                    if self.check:
                        self.act("Would update service %s (%s)." % (name, "; ".join(what)), change=True)
                    else:
                        svc = ecs_utils.update_service(self.ecs, cluster, name, None if on_target else target,
                                                       p["force"], drift)
                        self.act("Updated service %s (%s)." % (name, "; ".join(what)), change=True)
                    entry["updated"] = True
                    if not on_target or p["force"]:
                        to_wait[name] = target
                else:
                    self.act("Service %s is already on %s." % (name, target))
            entry.update(ecs_utils.summarise(svc, target, known_events.get(name, set())))
            if not out:
                # What the first service runs after this run, so that callers need no DescribeTaskDefinition.
                self.result["container_definitions"] = camel_dict_to_snake_dict(
                    {"c": desired.get("containerDefinitions") or []})["c"]
            out.append(entry)

        self.result["services"] = out
        self.result["task_definition_arn"] = out[0]["task_definition_arn"] if out else None
        self.result["previous_task_definition_arn"] = out[0]["previous_task_definition_arn"] if out else None
        if p["wait"] and to_wait and not self.check:
            try:
                waited = ecs_utils.wait_for_rollouts(self.ecs, cluster, to_wait, known_events,
                                                     p["wait_timeout"], p["wait_delay"])
            except ecs_utils.RolloutError as e:
                for entry in out:
                    entry.update(e.services.get(entry["service_name"], {}))
                    entry.pop("wait_state", None)
                    entry.pop("wait_reason", None)
                raise DeployFailed(str(e))
            for entry in out:
                if entry["service_name"] in waited:
                    entry.update(waited[entry["service_name"]])
                    self.act("Service %s completed its rollout on %s." % (entry["service_name"],
                                                                          entry["task_definition_arn"]))
        for entry in out:
            entry.pop("wait_state", None)
            entry.pop("wait_reason", None)

    def target_revision(self, desired, want, registered, entry):
        key = json.dumps(want, sort_keys=True)
        if key in registered:
            return registered[key]
        latest = ecs_utils.describe_task_definition(self.ecs, desired["family"])
        if latest is not None and ecs_utils.normalise_task_definition(latest) == want:
            registered[key] = latest["taskDefinitionArn"]
            self.act("Task definition %s already equals the desired one; reusing it." % latest["taskDefinitionArn"])
            return registered[key]
        changes = ", ".join(entry["changes"])
        if self.check:
            nxt = "%s:%s" % (desired["family"], (latest or {}).get("revision", 0) + 1)
            self.act("Would register task definition %s (%s)." % (nxt, changes), change=True)
            registered[key] = nxt
        else:
            td = ecs_utils.register_task_definition(self.ecs, desired)
            registered[key] = td["taskDefinitionArn"]
            self.act("Registered task definition %s (%s)." % (td["taskDefinitionArn"], changes), change=True)
        entry["registered"] = True
        return registered[key]

    def create(self, name, target, create_params, upd_params, entry):
        cluster = self.p["cluster"]
        entry["created"] = True
        if self.check:
            self.act("Would create service %s in cluster %s on %s." % (name, cluster, target), change=True)
            return None
        params = dict(create_params)
        params.update(upd_params)
        svc = ecs_utils.create_service(self.ecs, cluster, name, target, params)
        self.act("Created service %s in cluster %s on %s." % (name, cluster, target), change=True)
        # Some implementations (moto) drop settings on CreateService that UpdateService stores; apply them now so the
        # next run compares equal instead of reporting a change once.
        drift = ecs_utils.settings_drift(svc, upd_params)
        if drift:
            svc = ecs_utils.update_service(self.ecs, cluster, name, None, False, drift)
            self.act("Applied service settings %s to %s, which CreateService did not store."
                     % (", ".join(sorted(drift)), name))
        return svc

    def run(self):
        image_uri = self.image()
        self.diff_before["image"] = None
        self.diff_after["image"] = image_uri
        if self.p["service"]:
            self.services(image_uri)
            befores = [s["image"] for s in self.diff_before["services"].values() if s.get("image")]
            self.diff_before["image"] = befores[0] if befores else None
        return self.finish()

    def finish(self, **extra):
        res = dict(self.result)
        res.update(extra)
        res["changed"] = self.changed
        res["actions"] = self.actions
        if self.module._diff:
            res["diff"] = {"before": self.diff_before, "after": self.diff_after}
        return res


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            dockerfile=dict(type="str", default="Dockerfile"),
            build_args=dict(type="dict", default={}),
            target=dict(type="str"),
            platform=dict(type="str"),
            network_mode=dict(type="str"),
            docker_host=dict(type="str"),
            repository=dict(type="str", required=True),
            registry=dict(type="str"),
            tags=dict(type="list", elements="str", default=[]),
            cluster=dict(type="str"),
            service=dict(type="list", elements="str", default=[]),
            container=dict(type="str"),
            task_definition=dict(type="dict"),
            service_settings=dict(type="dict", options=dict(
                desired_count=dict(type="int", default=1),
                launch_type=dict(type="str", choices=["EC2", "FARGATE", "EXTERNAL"]),
                capacity_provider_strategy=dict(type="list", elements="dict", options=dict(
                    capacity_provider=dict(type="str", required=True),
                    weight=dict(type="int"),
                    base=dict(type="int"))),
                load_balancers=dict(type="list", elements="dict", options=dict(
                    target_group_arn=dict(type="str", required=True),
                    container_name=dict(type="str", required=True),
                    container_port=dict(type="int", required=True))),
                deployment_circuit_breaker=dict(type="dict", options=dict(
                    enable=dict(type="bool", default=True),
                    rollback=dict(type="bool", default=True))),
                minimum_healthy_percent=dict(type="int"),
                maximum_percent=dict(type="int"),
                placement_strategy=dict(type="list", elements="dict", options=dict(
                    type=dict(type="str", required=True, choices=["random", "spread", "binpack"]),
                    field=dict(type="str"))),
                network_configuration=dict(type="dict", options=dict(
                    subnets=dict(type="list", elements="str", required=True),
                    security_groups=dict(type="list", elements="str", default=[]),
                    assign_public_ip=dict(type="bool", default=False))),
                health_check_grace_period_seconds=dict(type="int"),
            )),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=900),
            wait_delay=dict(type="int", default=10),
            force=dict(type="bool", default=False),
            smoke_test=dict(type="dict", options=dict(
                port=dict(type="int", required=True),
                path=dict(type="str", default="/"),
                env=dict(type="dict", default={}),
                timeout=dict(type="int", default=30))),
        ),
        supports_check_mode=True,
    )
    error = validate(module.params)
    if error:
        module.fail_json(msg=error)

    deployer = Deployer(module)
    try:
        module.exit_json(**deployer.run())
    except DeployFailed as e:
        module.fail_json(msg=str(e), **deployer.finish(**e.extra))
    except (docker_engine.DockerError, RegistryError, ecs_utils.ECSError) as e:
        module.fail_json(msg=str(e), **deployer.finish())
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg="AWS call failed after: %s" % (" ".join(deployer.actions) or "nothing done"),
                             **deployer.finish())


if __name__ == "__main__":
    main()
