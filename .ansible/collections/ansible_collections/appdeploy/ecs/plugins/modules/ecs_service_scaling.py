#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: appdeploy.ecs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ecs_service_scaling
short_description: Target-tracking autoscaling for an ECS service (scalable target and policies together)
version_added: 0.1.0
description:
  - Manages the Application Auto Scaling scalable target of an ECS service's desired count and its target-tracking
    scaling policies as one unit. With O(state=absent) it deletes the policies and deregisters the scalable target.
  - Written because C(community.aws.application_autoscaling_policy) is wrong for this job in two ways. It registers
    the scalable target even in check mode (a real change in AWS while the user asked for none), and it never
    deregisters the scalable target, so a teardown leaves it behind.
  - Only what the options name is compared; a rerun with the same options calls no mutating API.
author:
  - appdeploy.ecs contributors (@appdeploy)
options:
  cluster:
    description: The ECS cluster name.
    type: str
    required: true
  service:
    description: The ECS service name.
    type: str
    required: true
  state:
    description: Whether the scaling setup should exist.
    type: str
    choices: [present, absent]
    default: present
  min_capacity:
    description: Minimum number of tasks. Required with O(state=present).
    type: int
  max_capacity:
    description: Maximum number of tasks, at least O(min_capacity). Required with O(state=present).
    type: int
  policies:
    description: Target-tracking policies. Policies of the service that are not listed are deleted when O(purge_policies=true).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Policy name, unique for the service.
        type: str
        required: true
      metric:
        description:
          - V(cpu) is C(ECSServiceAverageCPUUtilization), V(memory) C(ECSServiceAverageMemoryUtilization),
            V(alb_requests_per_target) C(ALBRequestCountPerTarget) (needs O(policies[].resource_label)).
        type: str
        required: true
        choices: [cpu, memory, alb_requests_per_target]
      target_value:
        description: The metric value to keep the service at (percent, or requests per target per minute).
        type: float
        required: true
      resource_label:
        description: For V(alb_requests_per_target), C(app/<alb name>/<id>/targetgroup/<target group name>/<id>).
        type: str
      scale_in_cooldown:
        description: Seconds after a scale-in before another scale-in.
        type: int
        default: 300
      scale_out_cooldown:
        description: Seconds after a scale-out before another scale-out.
        type: int
        default: 60
      disable_scale_in:
        description: Only scale out with this policy.
        type: bool
        default: false
  purge_policies:
    description: Delete scaling policies of the service that O(policies) does not list.
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Only the Describe calls are made; nothing is registered, put, deleted or deregistered.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Scalable target bounds and policy configurations before and after.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: A second run with the same options calls no mutating API.
"""

EXAMPLES = r"""
- name: Scale the app between 2 and 6 tasks on CPU and on requests per target
  appdeploy.ecs.ecs_service_scaling:
    cluster: appdeploy
    service: ordermanagement
    min_capacity: 2
    max_capacity: 6
    policies:
      - name: ordermanagement-cpu
        metric: cpu
        target_value: 60
      - name: ordermanagement-requests
        metric: alb_requests_per_target
        target_value: 1000
        resource_label: app/ordermanagement/50dc6c495c0c9188/targetgroup/ordermanagement/6d0ecf831eec9f09

- name: Remove the scaling policies and deregister the scalable target
  appdeploy.ecs.ecs_service_scaling:
    cluster: appdeploy
    service: ordermanagement
    state: absent
"""

RETURN = r"""
resource_id:
  description: The Application Auto Scaling resource id of the service.
  returned: always
  type: str
  sample: service/appdeploy/ordermanagement
scalable_target:
  description: The scalable target after the run (empty when absent).
  returned: always
  type: dict
  sample: {"min_capacity": 2, "max_capacity": 6}
policies:
  description: Names of the target-tracking policies after the run.
  returned: always
  type: list
  elements: str
  sample: ["ordermanagement-cpu", "ordermanagement-requests"]
actions:
  description: What the module did (or would do in check mode), one sentence each.
  returned: always
  type: list
  elements: str
  sample: ["Registered scalable target service/appdeploy/ordermanagement (2-6).", "Created policy ordermanagement-cpu."]
diff:
  description: Scalable target and policies before and after.
  returned: in diff mode
  type: dict
  sample: {"before": {"min_capacity": 1, "max_capacity": 4, "policies": {}}, "after": {"min_capacity": 2, "max_capacity": 6, "policies": {}}}
"""

import re

try:
    import botocore  # pylint: disable=unused-import
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.appdeploy.ecs.plugins.module_utils.retries import retry_decorator

NAMESPACE = "ecs"
DIMENSION = "ecs:service:DesiredCount"
METRICS = {
    "cpu": "ECSServiceAverageCPUUtilization",
    "memory": "ECSServiceAverageMemoryUtilization",
    "alb_requests_per_target": "ALBRequestCountPerTarget",
}
RESOURCE_LABEL_RE = re.compile(r"^app/[^/]+/[^/]+/targetgroup/[^/]+/[^/]+$")


def validate(params):
    """Return a one-line error for bad input, or None. Runs before any AWS call."""
    if params["state"] == "present":
        lo, hi = params["min_capacity"], params["max_capacity"]
        if lo is None or hi is None:
            return "min_capacity and max_capacity are required with state=present"
        if lo < 0:
            return "min_capacity is %d; allowed: 0 or more" % lo
        if hi < lo:
            return "max_capacity (%d) is below min_capacity (%d); allowed: max_capacity >= min_capacity" % (hi, lo)
    seen = set()
    for policy in params["policies"]:
        name = policy["name"]
        if not name or len(name) > 256:
            return "policies[].name %r is not allowed: 1 to 256 characters" % (name,)
        if name in seen:
            return "policies[].name %r appears twice; names must be unique" % (name,)
        seen.add(name)
        if policy["target_value"] <= 0:
            return "policies[%s].target_value is %s; allowed: greater than 0" % (name, policy["target_value"])
        for key in ("scale_in_cooldown", "scale_out_cooldown"):
            if policy[key] < 0:
                return "policies[%s].%s is %d; allowed: 0 or more seconds" % (name, key, policy[key])
        label = policy.get("resource_label")
        if policy["metric"] == "alb_requests_per_target":
            if not label or not RESOURCE_LABEL_RE.match(label):
                return (
                    "policies[%s].resource_label %r is not allowed: alb_requests_per_target needs "
                    "app/<alb name>/<id>/targetgroup/<target group name>/<id>" % (name, label)
                )
        elif label:
            return "policies[%s].resource_label is only allowed with metric alb_requests_per_target" % name
    return None


def desired_configuration(policy):
    """The TargetTrackingScalingPolicyConfiguration for a policy option, in the API's shape."""
    spec = {"PredefinedMetricType": METRICS[policy["metric"]]}
    if policy.get("resource_label"):
        spec["ResourceLabel"] = policy["resource_label"]
    return {
        "TargetValue": float(policy["target_value"]),
        "PredefinedMetricSpecification": spec,
        "ScaleInCooldown": int(policy["scale_in_cooldown"]),
        "ScaleOutCooldown": int(policy["scale_out_cooldown"]),
        "DisableScaleIn": bool(policy["disable_scale_in"]),
    }


def normalise_configuration(config):
    """Compare-ready form of a configuration AWS returned: defaults filled, numbers typed, extra keys dropped."""
    config = config or {}
    spec = config.get("PredefinedMetricSpecification") or {}
    out_spec = {"PredefinedMetricType": spec.get("PredefinedMetricType")}
    if spec.get("ResourceLabel"):
        out_spec["ResourceLabel"] = spec["ResourceLabel"]
    return {
        "TargetValue": float(config.get("TargetValue", 0)),
        "PredefinedMetricSpecification": out_spec,
        "ScaleInCooldown": int(config.get("ScaleInCooldown", 0)),
        "ScaleOutCooldown": int(config.get("ScaleOutCooldown", 0)),
        "DisableScaleIn": bool(config.get("DisableScaleIn", False)),
    }


def plan(current_target, current_policies, params):
    """Work out the calls to make. Pure: returns (calls, after_state); calls are (verb, argument, sentence)."""
    calls = []
    resource_id = "service/%s/%s" % (params["cluster"], params["service"])
    wanted = {} if params["state"] == "absent" else {p["name"]: desired_configuration(p) for p in params["policies"]}
    after_policies = {}

    for name, config in sorted(current_policies.items()):
        if name in wanted:
            continue
        if params["state"] == "absent" or params["purge_policies"]:
            calls.append(("delete_policy", name, "Deleted policy %s." % name))
        else:
            after_policies[name] = config

    if params["state"] == "absent":
        if current_target is not None:
            calls.append(("deregister", resource_id, "Deregistered scalable target %s." % resource_id))
        return calls, {"min_capacity": None, "max_capacity": None, "policies": after_policies}

    target = {"min_capacity": params["min_capacity"], "max_capacity": params["max_capacity"]}
    if current_target != target:
        verb = "Registered" if current_target is None else "Updated"
        calls.insert(0, ("register", target, "%s scalable target %s (%d-%d)." % (verb, resource_id, target["min_capacity"], target["max_capacity"])))
    for name, config in wanted.items():
        if current_policies.get(name) != config:
            verb = "Created" if name not in current_policies else "Updated"
            calls.append(("put_policy", name, "%s policy %s." % (verb, name)))
        after_policies[name] = config
    return calls, dict(target, policies=after_policies)


class Scaling:
    def __init__(self, module):
        self.module = module
        self.client = module.client("application-autoscaling", retry_decorator=retry_decorator())
        self.resource_id = "service/%s/%s" % (module.params["cluster"], module.params["service"])

    def read(self):
        try:
            targets = self.client.describe_scalable_targets(
                aws_retry=True, ServiceNamespace=NAMESPACE, ResourceIds=[self.resource_id], ScalableDimension=DIMENSION
            )["ScalableTargets"]
            paginator = self.client.get_paginator("describe_scaling_policies")
            policies = paginator.paginate(
                ServiceNamespace=NAMESPACE, ResourceId=self.resource_id, ScalableDimension=DIMENSION
            ).build_full_result()["ScalingPolicies"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.module.fail_json_aws(e, msg="Could not read the autoscaling of %s" % self.resource_id)
        target = None
        if targets:
            target = {"min_capacity": targets[0]["MinCapacity"], "max_capacity": targets[0]["MaxCapacity"]}
        current = {}
        for policy in policies:
            if policy.get("PolicyType") == "TargetTrackingScaling":
                current[policy["PolicyName"]] = normalise_configuration(policy.get("TargetTrackingScalingPolicyConfiguration"))
        return target, current

    def apply(self, calls, wanted):
        for verb, arg, _sentence in calls:
            try:
                if verb == "register":
                    self.client.register_scalable_target(
                        aws_retry=True, ServiceNamespace=NAMESPACE, ResourceId=self.resource_id, ScalableDimension=DIMENSION,
                        MinCapacity=arg["min_capacity"], MaxCapacity=arg["max_capacity"],
                    )
                elif verb == "put_policy":
                    self.client.put_scaling_policy(
                        aws_retry=True, PolicyName=arg, ServiceNamespace=NAMESPACE, ResourceId=self.resource_id,
                        ScalableDimension=DIMENSION, PolicyType="TargetTrackingScaling",
                        TargetTrackingScalingPolicyConfiguration=wanted[arg],
                    )
                elif verb == "delete_policy":
                    try:
                        self.client.delete_scaling_policy(
                            aws_retry=True, PolicyName=arg, ServiceNamespace=NAMESPACE, ResourceId=self.resource_id,
                            ScalableDimension=DIMENSION,
                        )
                    except is_boto3_error_code("ObjectNotFoundException"):
                        pass
                elif verb == "deregister":
                    try:
                        self.client.deregister_scalable_target(
                            aws_retry=True, ServiceNamespace=NAMESPACE, ResourceId=self.resource_id, ScalableDimension=DIMENSION
                        )
                    except is_boto3_error_code("ObjectNotFoundException"):
                        pass
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
                self.module.fail_json_aws(e, msg="Could not change the autoscaling of %s (%s)" % (self.resource_id, verb))


def main():
    argument_spec = dict(
        cluster=dict(type="str", required=True),
        service=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        min_capacity=dict(type="int"),
        max_capacity=dict(type="int"),
        policies=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                name=dict(type="str", required=True),
                metric=dict(type="str", required=True, choices=list(METRICS)),
                target_value=dict(type="float", required=True),
                resource_label=dict(type="str"),
                scale_in_cooldown=dict(type="int", default=300),
                scale_out_cooldown=dict(type="int", default=60),
                disable_scale_in=dict(type="bool", default=False),
            ),
        ),
        purge_policies=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    error = validate(module.params)
    if error:
        module.fail_json(msg=error)

    scaling = Scaling(module)
    current_target, current_policies = scaling.read()
    calls, after = plan(current_target, current_policies, module.params)
    wanted = {p["name"]: desired_configuration(p) for p in module.params["policies"]}
    if calls and not module.check_mode:
        scaling.apply(calls, wanted)

    result = dict(
        changed=bool(calls),
        resource_id=scaling.resource_id,
        scalable_target={} if after["min_capacity"] is None else {"min_capacity": after["min_capacity"], "max_capacity": after["max_capacity"]},
        policies=sorted(after["policies"]),
        actions=[sentence for _verb, _arg, sentence in calls],
    )
    if module._diff:
        before = dict(
            (current_target or {"min_capacity": None, "max_capacity": None}), policies=current_policies
        )
        result["diff"] = {"before": before, "after": after}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
