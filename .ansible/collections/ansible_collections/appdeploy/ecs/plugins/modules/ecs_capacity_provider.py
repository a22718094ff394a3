#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: appdeploy.ecs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecs_capacity_provider
short_description: Manage an ECS capacity provider and the capacity settings of a cluster
version_added: 0.1.0
description:
  - Creates, updates or deletes an Amazon ECS capacity provider backed by an EC2 Auto Scaling group (managed scaling,
    managed termination protection, managed draining, tags).
  - With O(cluster), also attaches the provider to that cluster (C(PutClusterCapacityProviders)), optionally together
    with other providers such as V(FARGATE) and V(FARGATE_SPOT), sets the cluster's default capacity provider strategy,
    its Container Insights setting and its tags, creating the cluster when it does not exist. Without O(name), only
    the cluster is managed. The module returns the cluster's description, since no ECS cluster info module exists.
  - Clusters are deleted with M(community.aws.ecs_cluster). It is not used to create them because it cannot set
    Container Insights or tags, purges providers it was not given by default, and fails on a rerun against moto
    (a C(KeyError) on C(capacityProviders)).
  - The AWS-managed providers V(FARGATE) and V(FARGATE_SPOT) can be given as O(name); they are then only attached to
    or detached from O(cluster), never created or deleted.
  - Neither amazon.aws nor community.aws has a module for capacity providers, hence this module.
  - Options that are not set leave the matching setting alone; options that are set replace it (O(tags) with
    O(purge_tags=true), O(default_capacity_provider_strategy)).
author:
  - appdeploy.ecs contributors (@appdeploy)
options:
  name:
    description:
      - Name of the capacity provider. Up to 255 letters, digits, underscores and hyphens; it may not start with
        C(aws), C(ecs) or C(fargate) unless it is V(FARGATE) or V(FARGATE_SPOT).
      - Without it (only with O(cluster) and O(state=present)), the module manages just the cluster.
    type: str
  state:
    description:
      - V(present) creates or updates the provider (and attaches it to O(cluster)).
      - V(absent) detaches it from O(cluster) when given, then deletes it.
    type: str
    choices: [present, absent]
    default: present
  auto_scaling_group_arn:
    description:
      - ARN of the Auto Scaling group the provider scales. Required to create the provider.
      - It cannot be changed on an existing provider; the module fails when it differs.
    type: str
  managed_scaling:
    description:
      - ECS managed scaling of the Auto Scaling group. Suboptions left unset keep their current (or, on creation, the
        AWS default) value.
    type: dict
    suboptions:
      status:
        description: Whether ECS scales the group.
        type: str
        choices: [enabled, disabled]
        default: enabled
      target_capacity:
        description: Target utilisation of the group in percent, 1 to 100.
        type: int
      minimum_scaling_step_size:
        description: Minimum number of instances added or removed at once, 1 to 10000.
        type: int
      maximum_scaling_step_size:
        description: Maximum number of instances added or removed at once, 1 to 10000.
        type: int
      instance_warmup_period:
        description: Seconds a new instance needs before it counts in the group's metrics, 0 to 10000.
        type: int
  managed_termination_protection:
    description:
      - Whether ECS protects instances running tasks from scale-in. V(enabled) needs managed scaling and an Auto
        Scaling group whose new instances are protected from scale-in.
    type: str
    choices: [enabled, disabled]
  managed_draining:
    description: Whether ECS drains tasks from an instance before the group terminates it.
    type: str
    choices: [enabled, disabled]
  tags:
    description: Tags of the provider. Unset leaves them alone.
    type: dict
    aliases: [resource_tags]
  purge_tags:
    description: Remove tags not listed in O(tags).
    type: bool
    default: true
  cluster:
    description:
      - Name of the ECS cluster to attach the provider to (O(state=present), creating the cluster when missing) or
        detach it from (O(state=absent)). An ARN works for an existing cluster.
    type: str
  cluster_capacity_providers:
    description:
      - Other capacity providers O(cluster) should have besides O(name), for example V(FARGATE) and V(FARGATE_SPOT).
      - Providers already attached stay attached unless O(purge_cluster_capacity_providers=true).
    type: list
    elements: str
    default: []
  purge_cluster_capacity_providers:
    description:
      - Detach from O(cluster) every provider that is neither O(name) nor in O(cluster_capacity_providers).
      - Off by default so that one task per provider can attach several providers to one cluster.
    type: bool
    default: false
  default_capacity_provider_strategy:
    description:
      - The cluster's default capacity provider strategy, used by services and tasks that name neither a launch type
        nor a strategy. Replaces the current one when set; unset leaves it alone.
      - Every provider named must end up attached to O(cluster); a strategy cannot mix V(FARGATE)/V(FARGATE_SPOT)
        with Auto Scaling group providers; at most one entry may have a O(default_capacity_provider_strategy[].base)
        above 0.
    type: list
    elements: dict
    suboptions:
      capacity_provider:
        description: Provider name.
        type: str
        required: true
      weight:
        description: Relative share of tasks placed with this provider, 0 to 1000.
        type: int
        default: 1
      base:
        description: Tasks placed with this provider first, 0 to 100000.
        type: int
        default: 0
  container_insights:
    description:
      - The C(containerInsights) setting of O(cluster) (set with C(UpdateCluster)). Unset leaves it alone.
    type: str
    choices: [enabled, disabled, enhanced]
  cluster_tags:
    description:
      - Tags of O(cluster). Unset leaves them alone.
      - M(community.aws.ecs_cluster) cannot tag, and M(community.aws.ecs_tag) fails on a cluster without tags
        under moto (which then omits C(tags) from C(ListTagsForResource)).
    type: dict
  purge_cluster_tags:
    description: Remove cluster tags not listed in O(cluster_tags).
    type: bool
    default: true
  wait:
    description:
      - Wait until a provider update or deletion, and a cluster attachment update, has finished.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait with O(wait=true).
    type: int
    default: 300
notes:
  - ECS deletes a provider asynchronously; a provider whose status is C(INACTIVE) counts as absent.
  - A provider in use by a service, or still attached to a cluster other than O(cluster), cannot be deleted; AWS says so
    and the module fails with its message.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Nothing is created, updated, tagged or attached; C(changed) and the returned state are the prediction.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Before and after of the provider's scaling settings and tags and of the cluster's providers, strategy and Container Insights.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: A second run with the same inputs reports no change and calls no mutating API.
"""

EXAMPLES = r"""
- name: Create a capacity provider with managed scaling and attach it to the cluster as its default strategy
  appdeploy.ecs.ecs_capacity_provider:
    name: ordermanagement-ec2
    auto_scaling_group_arn: "{{ asg.auto_scaling_group_arn }}"
    managed_scaling:
      status: enabled
      target_capacity: 100
    managed_termination_protection: disabled
    tags:
      appdeploy:stack: ordermanagement
    cluster: ordermanagement
    default_capacity_provider_strategy:
      - capacity_provider: ordermanagement-ec2
        weight: 1
        base: 1
    container_insights: enabled
    cluster_tags:
      appdeploy:stack: ordermanagement

- name: Also make FARGATE and FARGATE_SPOT available to the cluster (Fargate services name them in their strategy)
  appdeploy.ecs.ecs_capacity_provider:
    name: ordermanagement-ec2
    auto_scaling_group_arn: "{{ asg.auto_scaling_group_arn }}"
    cluster: ordermanagement
    cluster_capacity_providers: [FARGATE, FARGATE_SPOT]

- name: Create a cluster with Container Insights and tags, no provider yet (instances can join it by name)
  appdeploy.ecs.ecs_capacity_provider:
    cluster: ordermanagement
    container_insights: enabled
    cluster_tags:
      appdeploy:stack: ordermanagement

- name: A Fargate-only cluster
  appdeploy.ecs.ecs_capacity_provider:
    name: FARGATE
    cluster: ordermanagement
    cluster_capacity_providers: [FARGATE_SPOT]
    default_capacity_provider_strategy:
      - capacity_provider: FARGATE
        weight: 1
        base: 1
      - capacity_provider: FARGATE_SPOT
        weight: 3

- name: Read the cluster (and the provider) without changing anything
  appdeploy.ecs.ecs_capacity_provider:
    name: ordermanagement-ec2
    cluster: ordermanagement
  check_mode: true
  register: capacity

- name: Detach the provider from the cluster and delete it
  appdeploy.ecs.ecs_capacity_provider:
    name: ordermanagement-ec2
    cluster: ordermanagement
    state: absent
"""

RETURN = r"""
capacity_provider:
  description: The capacity provider after the run (predicted in check mode). Empty when absent or AWS-managed.
  returned: always
  type: dict
  contains:
    capacity_provider_arn:
      description: ARN of the provider.
      returned: when the provider exists
      type: str
      sample: arn:aws:ecs:eu-central-1:123456789012:capacity-provider/ordermanagement-ec2
    name:
      description: Name of the provider.
      returned: when the provider exists
      type: str
      sample: ordermanagement-ec2
    status:
      description: C(ACTIVE) or C(INACTIVE).
      returned: when the provider exists
      type: str
      sample: ACTIVE
    update_status:
      description: State of the last update or deletion, for example C(UPDATE_COMPLETE) or C(DELETE_IN_PROGRESS).
      returned: when AWS reports it
      type: str
      sample: UPDATE_COMPLETE
    auto_scaling_group_provider:
      description: The Auto Scaling group settings.
      returned: when the provider exists
      type: dict
      contains:
        auto_scaling_group_arn:
          description: ARN of the group.
          returned: always
          type: str
          sample: "arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:0a1b:autoScalingGroupName/om-ecs"
        managed_scaling:
          description: Managed scaling settings.
          returned: always
          type: dict
          sample: {"status": "ENABLED", "target_capacity": 100, "minimum_scaling_step_size": 1,
                   "maximum_scaling_step_size": 10000, "instance_warmup_period": 300}
        managed_termination_protection:
          description: C(ENABLED) or C(DISABLED).
          returned: always
          type: str
          sample: DISABLED
        managed_draining:
          description: C(ENABLED) or C(DISABLED).
          returned: when AWS reports it
          type: str
          sample: ENABLED
    tags:
      description: Tags of the provider.
      returned: when the provider exists
      type: dict
      sample: {"appdeploy:stack": "ordermanagement"}
cluster:
  description: The cluster after the run (predicted in check mode). Only with O(cluster); empty when the cluster does not exist.
  returned: when O(cluster) is set
  type: dict
  contains:
    cluster_arn:
      description: ARN of the cluster.
      returned: when the cluster exists
      type: str
      sample: arn:aws:ecs:eu-central-1:123456789012:cluster/ordermanagement
    cluster_name:
      description: Name of the cluster.
      returned: when the cluster exists
      type: str
      sample: ordermanagement
    status:
      description: Status of the cluster.
      returned: when the cluster exists
      type: str
      sample: ACTIVE
    capacity_providers:
      description: Providers attached to the cluster.
      returned: when the cluster exists
      type: list
      elements: str
      sample: ["ordermanagement-ec2", "FARGATE"]
    default_capacity_provider_strategy:
      description: The cluster's default strategy.
      returned: when the cluster exists
      type: list
      elements: dict
      sample: [{"capacity_provider": "ordermanagement-ec2", "weight": 1, "base": 1}]
    tags:
      description: Tags of the cluster.
      returned: when the cluster exists
      type: dict
      sample: {"appdeploy:stack": "ordermanagement"}
    settings:
      description: Cluster settings, such as C(containerInsights).
      returned: when the cluster exists
      type: list
      elements: dict
      sample: [{"name": "containerInsights", "value": "enabled"}]
    attachments_status:
      description: State of the cluster's capacity provider attachments.
      returned: when AWS reports it
      type: str
      sample: UPDATE_COMPLETE
    registered_container_instances_count:
      description: Container instances registered with the cluster.
      returned: when the cluster exists
      type: int
      sample: 2
    running_tasks_count:
      description: Running tasks.
      returned: when the cluster exists
      type: int
      sample: 2
    active_services_count:
      description: Active services.
      returned: when the cluster exists
      type: int
      sample: 1
actions:
  description: What was done (or, in check mode, would be done), one sentence each.
  returned: always
  type: list
  elements: str
  sample: ["created capacity provider ordermanagement-ec2", "attached ordermanagement-ec2 to cluster ordermanagement"]
diff:
  description: Before and after (in diff mode).
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: The provider and cluster settings before the run.
      returned: always
      type: dict
    after:
      description: The provider and cluster settings after the run.
      returned: always
      type: dict
"""

import copy
import re
import time

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.appdeploy.ecs.plugins.module_utils.retries import retry_decorator
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

AWS_MANAGED = ("FARGATE", "FARGATE_SPOT")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
ASG_ARN_RE = re.compile(r"^arn:aws[a-z-]*:autoscaling:[a-z0-9-]+:\d{12}:autoScalingGroup:[^:]+:autoScalingGroupName/.+$")
SCALING_KEYS = (
    ("target_capacity", "targetCapacity", 1, 100),
    ("minimum_scaling_step_size", "minimumScalingStepSize", 1, 10000),
    ("maximum_scaling_step_size", "maximumScalingStepSize", 1, 10000),
    ("instance_warmup_period", "instanceWarmupPeriod", 0, 10000),
)
BUSY = ("UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS", "CREATE_IN_PROGRESS")


class CapacityProviderError(Exception):
    pass


def validate(params):
    """Return a one-line message naming the offending option, or None. Runs before any AWS call."""
    name = params["name"]
    if name is None:
        if not params.get("cluster"):
            return "name or cluster is required"
        if params["state"] == "absent":
            return "name is required with state=absent (the module never deletes clusters; use community.aws.ecs_cluster)"
        given = [k for k in ("auto_scaling_group_arn", "managed_scaling", "managed_termination_protection",
                             "managed_draining", "tags") if params.get(k) is not None]
        if given:
            return "%s: needs name (the capacity provider)" % ", ".join(given)
        name = ""
    managed = name in AWS_MANAGED
    if name and not NAME_RE.match(name):
        return "name %r is not allowed: use 1 to 255 letters, digits, underscores and hyphens" % name
    if name and not managed and name.lower().startswith(("aws", "ecs", "fargate")):
        return "name %r is not allowed: it may not start with aws, ecs or fargate (FARGATE and FARGATE_SPOT are AWS-managed)" % name
    own = ("auto_scaling_group_arn", "managed_scaling", "managed_termination_protection", "managed_draining", "tags")
    if managed:
        given = [k for k in own if params.get(k) is not None]
        if given:
            return "%s: not allowed with the AWS-managed provider %s, which can only be attached to a cluster" % (
                ", ".join(given), name)
    arn = params.get("auto_scaling_group_arn")
    if arn is not None and not ASG_ARN_RE.match(arn):
        return ("auto_scaling_group_arn %r is not an Auto Scaling group ARN "
                "(arn:aws:autoscaling:REGION:ACCOUNT:autoScalingGroup:UUID:autoScalingGroupName/NAME)" % arn)
    scaling = params.get("managed_scaling")
    if scaling:
        for key, _camel, low, high in SCALING_KEYS:
            value = scaling.get(key)
            if value is not None and not low <= value <= high:
                return "managed_scaling.%s is %s; allowed: %d to %d" % (key, value, low, high)
        lo, hi = scaling.get("minimum_scaling_step_size"), scaling.get("maximum_scaling_step_size")
        if lo is not None and hi is not None and lo > hi:
            return "managed_scaling.minimum_scaling_step_size (%d) is above managed_scaling.maximum_scaling_step_size (%d)" % (lo, hi)
    if params.get("managed_termination_protection") == "enabled" and scaling and scaling.get("status") == "disabled":
        return "managed_termination_protection=enabled needs managed_scaling.status=enabled"
    cluster_only = ("default_capacity_provider_strategy", "container_insights", "cluster_tags")
    if not params.get("cluster"):
        given = [k for k in cluster_only if params.get(k) is not None] + (
            ["cluster_capacity_providers"] if params.get("cluster_capacity_providers") else [])
        if given:
            return "%s: needs cluster" % ", ".join(given)
    for extra in params.get("cluster_capacity_providers") or []:
        if not NAME_RE.match(extra or ""):
            return "cluster_capacity_providers: %r is not a capacity provider name" % extra
    strategy = params.get("default_capacity_provider_strategy")
    if strategy is not None:
        names = [s["capacity_provider"] for s in strategy]
        if len(set(names)) != len(names):
            return "default_capacity_provider_strategy names a provider more than once"
        for item in strategy:
            if not 0 <= item["weight"] <= 1000:
                return "default_capacity_provider_strategy: weight %s of %s; allowed: 0 to 1000" % (item["weight"], item["capacity_provider"])
            if not 0 <= item["base"] <= 100000:
                return "default_capacity_provider_strategy: base %s of %s; allowed: 0 to 100000" % (item["base"], item["capacity_provider"])
        if len([s for s in strategy if s["base"] > 0]) > 1:
            return "default_capacity_provider_strategy: only one provider may have a base above 0"
        if strategy and not any(s["weight"] > 0 for s in strategy):
            return "default_capacity_provider_strategy: at least one provider needs a weight above 0"
        kinds = set(n in AWS_MANAGED for n in names)
        if len(kinds) > 1:
            return "default_capacity_provider_strategy cannot mix FARGATE/FARGATE_SPOT with Auto Scaling group providers"
        if params["state"] == "present" and params.get("purge_cluster_capacity_providers"):
            attached = set(([name] if name else []) + list(params.get("cluster_capacity_providers") or []))
            missing = sorted(set(names) - attached)
            if missing:
                return ("default_capacity_provider_strategy names %s, which would not be attached "
                        "(add them to cluster_capacity_providers)" % ", ".join(missing))
    if params.get("wait_timeout") is not None and params["wait_timeout"] < 0:
        return "wait_timeout must be 0 or more"
    return None


def normalise_strategy(strategy):
    """Camel-case strategy entries in a stable order with AWS defaults filled in (weight 0, base 0)."""
    out = []
    for item in strategy or []:
        provider = item.get("capacityProvider", item.get("capacity_provider"))
        out.append({"capacityProvider": provider, "weight": int(item.get("weight") or 0), "base": int(item.get("base") or 0)})
    return sorted(out, key=lambda s: s["capacityProvider"])


def desired_asg_provider(params):
    """The autoScalingGroupProvider fields the user set, in API shape (unset fields are absent)."""
    out = {}
    scaling = params.get("managed_scaling")
    if scaling:
        wanted = {"status": scaling["status"].upper()}
        for key, camel, _low, _high in SCALING_KEYS:
            if scaling.get(key) is not None:
                wanted[camel] = scaling[key]
        out["managedScaling"] = wanted
    if params.get("managed_termination_protection"):
        out["managedTerminationProtection"] = params["managed_termination_protection"].upper()
    if params.get("managed_draining"):
        out["managedDraining"] = params["managed_draining"].upper()
    return out


def asg_provider_changes(current, wanted):
    """The part of `wanted` that differs from `current` (both autoScalingGroupProvider dicts), or {}."""
    changes = {}
    cur_scaling = current.get("managedScaling") or {}
    for key, value in (wanted.get("managedScaling") or {}).items():
        if cur_scaling.get(key) != value:
            changes["managedScaling"] = wanted["managedScaling"]
            break
    for key in ("managedTerminationProtection", "managedDraining"):
        if key in wanted and current.get(key) != wanted[key]:
            changes[key] = wanted[key]
    return changes


def merge_asg_provider(current, changes):
    merged = copy.deepcopy(current)
    for key, value in changes.items():
        if key == "managedScaling":
            merged.setdefault("managedScaling", {}).update(value)
        else:
            merged[key] = value
    return merged


def container_insights_of(cluster):
    for setting in (cluster or {}).get("settings") or []:
        if setting.get("name") == "containerInsights":
            return setting.get("value")
    return None


def provider_view(provider):
    """What the diff shows of a provider."""
    if not provider:
        return {}
    asg = provider.get("autoScalingGroupProvider") or {}
    return {
        "auto_scaling_group_arn": asg.get("autoScalingGroupArn"),
        "managed_scaling": camel_dict_to_snake_dict(asg.get("managedScaling") or {}),
        "managed_termination_protection": asg.get("managedTerminationProtection"),
        "managed_draining": asg.get("managedDraining"),
        "tags": boto3_tag_list_to_ansible_dict(provider.get("tags") or [], "key", "value"),
    }


def cluster_view(cluster):
    if not cluster:
        return {}
    return {
        "capacity_providers": sorted(cluster.get("capacityProviders") or []),
        "default_capacity_provider_strategy": [camel_dict_to_snake_dict(s) for s in normalise_strategy(cluster.get("defaultCapacityProviderStrategy"))],
        "container_insights": container_insights_of(cluster),
        "tags": boto3_tag_list_to_ansible_dict(cluster.get("tags") or [], "key", "value"),
    }


def provider_result(provider):
    if not provider:
        return {}
    tags = boto3_tag_list_to_ansible_dict(provider.get("tags") or [], "key", "value")
    result = camel_dict_to_snake_dict({k: v for k, v in provider.items() if k != "tags"})
    result["tags"] = tags
    return result


def cluster_result(cluster):
    if not cluster:
        return {}
    result = camel_dict_to_snake_dict({k: v for k, v in cluster.items() if k not in ("tags", "statistics")})
    result["tags"] = boto3_tag_list_to_ansible_dict(cluster.get("tags") or [], "key", "value")
    return result


class CapacityProviderManager:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.changed = False
        self.actions = []
        # UpdateInProgressException: a cluster whose attachments are still being updated refuses another update
        # for a short while; retrying is what the AWS documentation asks for.
        self.ecs = module.client(
            "ecs", retry_decorator=retry_decorator("UpdateInProgressException")
        )

    def act(self, sentence):
        self.changed = True
        self.actions.append(("would have " if self.check_mode else "") + sentence)

    # ---- reads -------------------------------------------------------------------------------------------------

    def describe_provider(self, name):
        """The ACTIVE provider called `name`, or None (INACTIVE means deleted or being deleted)."""
        res = self.ecs.describe_capacity_providers(capacityProviders=[name], include=["TAGS"], aws_retry=True)
        for provider in res.get("capacityProviders") or []:
            if provider.get("name") == name and provider.get("status") != "INACTIVE":
                return provider
        return None

    def describe_cluster(self, cluster):
        res = self.ecs.describe_clusters(clusters=[cluster], include=["ATTACHMENTS", "SETTINGS", "TAGS"], aws_retry=True)
        for found in res.get("clusters") or []:
            if found.get("status") != "INACTIVE":
                return found
        return None

    def wait_provider(self, name, deleting=False):
        if not self.params["wait"] or self.check_mode:
            return self.describe_provider(name)
        deadline = time.time() + self.params["wait_timeout"]
        while True:
            provider = self.describe_provider(name)
            if provider is None:
                return None
            status = provider.get("updateStatus")
            if status == "DELETE_FAILED" or status == "UPDATE_FAILED":
                raise CapacityProviderError("capacity provider %s: %s: %s" % (name, status, provider.get("updateStatusReason", "")))
            if status not in BUSY and not deleting:
                return provider
            if time.time() >= deadline:
                raise CapacityProviderError("capacity provider %s still %s after %ss (wait_timeout)" % (name, status, self.params["wait_timeout"]))
            time.sleep(5)

    def wait_cluster(self, cluster):
        if not self.params["wait"] or self.check_mode:
            return self.describe_cluster(cluster)
        deadline = time.time() + self.params["wait_timeout"]
        while True:
            found = self.describe_cluster(cluster)
            status = (found or {}).get("attachmentsStatus")
            if status == "UPDATE_FAILED":
                raise CapacityProviderError("cluster %s: capacity provider attachment update failed" % cluster)
            if status != "UPDATE_IN_PROGRESS":
                return found
            if time.time() >= deadline:
                raise CapacityProviderError("cluster %s attachments still UPDATE_IN_PROGRESS after %ss (wait_timeout)" % (cluster, self.params["wait_timeout"]))
            time.sleep(5)

    # ---- the provider ------------------------------------------------------------------------------------------

    def ensure_provider(self, current):
        name = self.params["name"]
        wanted = desired_asg_provider(self.params)
        tags = self.params.get("tags")
        if current is None:
            arn = self.params.get("auto_scaling_group_arn")
            if not arn:
                raise CapacityProviderError("auto_scaling_group_arn is required to create capacity provider %s" % name)
            asg = dict(wanted, autoScalingGroupArn=arn)
            self.act("created capacity provider %s" % name)
            if self.check_mode:
                return {"name": name, "status": "ACTIVE", "autoScalingGroupProvider": asg,
                        "tags": ansible_dict_to_boto3_tag_list(tags or {}, "key", "value")}
            kwargs = dict(name=name, autoScalingGroupProvider=asg)
            if tags:
                kwargs["tags"] = ansible_dict_to_boto3_tag_list(tags, "key", "value")
            self.ecs.create_capacity_provider(aws_retry=True, **kwargs)
            return self.wait_provider(name)

        asg_current = current.get("autoScalingGroupProvider") or {}
        arn = self.params.get("auto_scaling_group_arn")
        if arn and asg_current.get("autoScalingGroupArn") != arn:
            raise CapacityProviderError(
                "auto_scaling_group_arn: capacity provider %s already scales %s; the group of a provider cannot change "
                "(delete the provider with state=absent first)" % (name, asg_current.get("autoScalingGroupArn")))
        after = copy.deepcopy(current)
        changes = asg_provider_changes(asg_current, wanted)
        if changes:
            self.act("updated %s of capacity provider %s" % (", ".join(sorted(changes)), name))
            after["autoScalingGroupProvider"] = merge_asg_provider(asg_current, changes)
            if not self.check_mode:
                self.ecs.update_capacity_provider(name=name, autoScalingGroupProvider=changes, aws_retry=True)
        if tags is not None:
            current_tags = boto3_tag_list_to_ansible_dict(current.get("tags") or [], "key", "value")
            to_set, to_unset = compare_aws_tags(current_tags, tags, self.params["purge_tags"])
            if to_set or to_unset:
                self.act("retagged capacity provider %s" % name)
                new_tags = dict((k, v) for k, v in current_tags.items() if k not in to_unset)
                new_tags.update(to_set)
                after["tags"] = ansible_dict_to_boto3_tag_list(new_tags, "key", "value")
                if not self.check_mode:
                    if to_unset:
                        self.ecs.untag_resource(resourceArn=current["capacityProviderArn"], tagKeys=to_unset, aws_retry=True)
                    if to_set:
                        self.ecs.tag_resource(resourceArn=current["capacityProviderArn"],
                                              tags=ansible_dict_to_boto3_tag_list(to_set, "key", "value"), aws_retry=True)
        if self.check_mode or not self.changed:
            return after
        return self.wait_provider(name)

    def delete_provider(self, current):
        name = self.params["name"]
        self.act("deleted capacity provider %s" % name)
        if self.check_mode:
            return
        try:
            self.ecs.delete_capacity_provider(capacityProvider=name, aws_retry=True)
        except is_boto3_error_code("ClientException") as e:
            # Deleted meanwhile: the wanted state. Anything else (in use by a service or another cluster) is real.
            if "not found" not in str(e).lower() and "does not exist" not in str(e).lower():
                raise
        self.wait_provider(name, deleting=True)

    # ---- the cluster -------------------------------------------------------------------------------------------

    def create_cluster(self, cluster):
        if cluster.startswith("arn:"):
            raise CapacityProviderError("cluster: %s not found (a missing cluster can only be created by name)" % cluster)
        name = self.params["name"]
        providers = list(dict.fromkeys(([name] if name else []) + list(self.params["cluster_capacity_providers"])))
        strategy = normalise_strategy(self.params.get("default_capacity_provider_strategy"))
        missing = sorted(set(s["capacityProvider"] for s in strategy) - set(providers))
        if missing:
            raise CapacityProviderError(
                "default_capacity_provider_strategy names %s, not attached to cluster %s (add them to cluster_capacity_providers)"
                % (", ".join(missing), cluster))
        kwargs = dict(clusterName=cluster)
        if providers:
            kwargs["capacityProviders"] = providers
            kwargs["defaultCapacityProviderStrategy"] = strategy
        if self.params.get("container_insights"):
            kwargs["settings"] = [{"name": "containerInsights", "value": self.params["container_insights"]}]
        if self.params.get("cluster_tags"):
            kwargs["tags"] = ansible_dict_to_boto3_tag_list(self.params["cluster_tags"], "key", "value")
        self.act("created cluster %s" % cluster + (" with %s" % ", ".join(providers) if providers else ""))
        if self.check_mode:
            return {"clusterName": cluster, "status": "ACTIVE", "capacityProviders": providers,
                    "defaultCapacityProviderStrategy": strategy, "settings": kwargs.get("settings", []),
                    "tags": kwargs.get("tags", [])}
        self.ecs.create_cluster(aws_retry=True, **kwargs)
        return self.wait_cluster(cluster)

    def ensure_cluster(self, cluster, present, current):
        """`current` is the cluster as run() read it: creating or deleting a provider does not change it."""
        name = self.params["name"]
        if current is None:
            return self.create_cluster(cluster) if present else None

        providers = list(current.get("capacityProviders") or [])
        strategy = normalise_strategy(current.get("defaultCapacityProviderStrategy"))
        if present:
            wanted = ([name] if name else []) + [p for p in self.params["cluster_capacity_providers"] if p != name]
            if self.params["purge_cluster_capacity_providers"]:
                new_providers = list(dict.fromkeys(wanted))
            else:
                new_providers = providers + [p for p in dict.fromkeys(wanted) if p not in providers]
            new_strategy = strategy
            if self.params.get("default_capacity_provider_strategy") is not None:
                new_strategy = normalise_strategy(self.params["default_capacity_provider_strategy"])
            missing = sorted(set(s["capacityProvider"] for s in new_strategy) - set(new_providers))
            if missing:
                raise CapacityProviderError(
                    "default_capacity_provider_strategy names %s, not attached to cluster %s (add them to cluster_capacity_providers)"
                    % (", ".join(missing), cluster))
        else:
            new_providers = [p for p in providers if p != name]
            new_strategy = [s for s in strategy if s["capacityProvider"] != name]

        after = copy.deepcopy(current)
        if set(new_providers) != set(providers) or new_strategy != strategy:
            added = sorted(set(new_providers) - set(providers))
            removed = sorted(set(providers) - set(new_providers))
            if added:
                self.act("attached %s to cluster %s" % (", ".join(added), cluster))
            if removed:
                self.act("detached %s from cluster %s" % (", ".join(removed), cluster))
            if new_strategy != strategy:
                self.act("set the default capacity provider strategy of cluster %s to %s" % (
                    cluster, ", ".join("%s (weight %d, base %d)" % (s["capacityProvider"], s["weight"], s["base"])
                                       for s in new_strategy) or "none"))
            after["capacityProviders"] = new_providers
            after["defaultCapacityProviderStrategy"] = new_strategy
            if not self.check_mode:
                self.ecs.put_cluster_capacity_providers(
                    cluster=cluster, capacityProviders=new_providers, defaultCapacityProviderStrategy=new_strategy,
                    aws_retry=True)
        insights = self.params.get("container_insights") if present else None
        if insights is not None and container_insights_of(current) != insights:
            self.act("set containerInsights=%s on cluster %s" % (insights, cluster))
            settings = [s for s in after.get("settings") or [] if s.get("name") != "containerInsights"]
            after["settings"] = settings + [{"name": "containerInsights", "value": insights}]
            if not self.check_mode:
                # UpdateCluster takes the same settings as UpdateClusterSettings, and moto implements only the former.
                self.ecs.update_cluster(cluster=cluster, settings=[{"name": "containerInsights", "value": insights}],
                                        aws_retry=True)
        wanted_tags = self.params.get("cluster_tags") if present else None
        if wanted_tags is not None:
            current_tags = boto3_tag_list_to_ansible_dict(current.get("tags") or [], "key", "value")
            to_set, to_unset = compare_aws_tags(current_tags, wanted_tags, self.params["purge_cluster_tags"])
            if to_set or to_unset:
                self.act("retagged cluster %s" % cluster)
                new_tags = dict((k, v) for k, v in current_tags.items() if k not in to_unset)
                new_tags.update(to_set)
                after["tags"] = ansible_dict_to_boto3_tag_list(new_tags, "key", "value")
                if not self.check_mode:
                    if to_unset:
                        self.ecs.untag_resource(resourceArn=current["clusterArn"], tagKeys=to_unset, aws_retry=True)
                    if to_set:
                        self.ecs.tag_resource(resourceArn=current["clusterArn"],
                                              tags=ansible_dict_to_boto3_tag_list(to_set, "key", "value"), aws_retry=True)
        if self.check_mode or after == current:
            return after
        return self.wait_cluster(cluster)

    # ---- the run -----------------------------------------------------------------------------------------------

    def run(self):
        name = self.params["name"]
        cluster = self.params.get("cluster")
        present = self.params["state"] == "present"
        managed = not name or name in AWS_MANAGED
        provider_before = None if managed else self.describe_provider(name)
        cluster_before = self.describe_cluster(cluster) if cluster else None
        provider_after = provider_before
        cluster_after = cluster_before

        if present:
            if not managed:
                provider_after = self.ensure_provider(provider_before)
            if cluster:
                cluster_after = self.ensure_cluster(cluster, present=True, current=cluster_before)
        else:
            # Detach first: ECS refuses to delete a provider that a cluster still lists.
            if cluster:
                cluster_after = self.ensure_cluster(cluster, present=False, current=cluster_before)
            if provider_before is not None:
                self.delete_provider(provider_before)
            provider_after = None

        result = dict(changed=self.changed, actions=self.actions, capacity_provider=provider_result(provider_after))
        if cluster:
            result["cluster"] = cluster_result(cluster_after)
        if self.module._diff:
            before = {"capacity_provider": provider_view(provider_before)}
            after = {"capacity_provider": provider_view(provider_after)}
            if cluster:
                before["cluster"] = cluster_view(cluster_before)
                after["cluster"] = cluster_view(cluster_after)
            result["diff"] = {"before": before, "after": after}
        return result


def main():
    argument_spec = dict(
        name=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        auto_scaling_group_arn=dict(type="str"),
        managed_scaling=dict(type="dict", options=dict(
            status=dict(type="str", choices=["enabled", "disabled"], default="enabled"),
            target_capacity=dict(type="int"),
            minimum_scaling_step_size=dict(type="int"),
            maximum_scaling_step_size=dict(type="int"),
            instance_warmup_period=dict(type="int"),
        )),
        managed_termination_protection=dict(type="str", choices=["enabled", "disabled"]),
        managed_draining=dict(type="str", choices=["enabled", "disabled"]),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        cluster=dict(type="str"),
        cluster_capacity_providers=dict(type="list", elements="str", default=[]),
        purge_cluster_capacity_providers=dict(type="bool", default=False),
        default_capacity_provider_strategy=dict(type="list", elements="dict", options=dict(
            capacity_provider=dict(type="str", required=True),
            weight=dict(type="int", default=1),
            base=dict(type="int", default=0),
        )),
        container_insights=dict(type="str", choices=["enabled", "disabled", "enhanced"]),
        cluster_tags=dict(type="dict"),
        purge_cluster_tags=dict(type="bool", default=True),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    error = validate(module.params)
    if error:
        module.fail_json(msg=error)

    manager = CapacityProviderManager(module)
    try:
        module.exit_json(**manager.run())
    except CapacityProviderError as e:
        module.fail_json(msg=str(e), actions=manager.actions)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        module.fail_json_aws(e, msg="ECS call failed after: %s" % ("; ".join(manager.actions) or "nothing done"),
                             actions=manager.actions)


if __name__ == "__main__":
    main()
