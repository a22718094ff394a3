#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: appdeploy.ecs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: iam_roles
short_description: Converge a set of IAM roles, their policies and instance profiles in one call
version_added: 0.1.0
description:
  - Creates or updates IAM roles with their trust policy, description, permissions boundary, tags, the exact set of
    attached managed policies, the exact set of inline policies, and optionally an instance profile of the same name
    that holds the role.
  - Each role costs three reads when nothing differs (C(GetRole), C(ListAttachedRolePolicies), C(ListRolePolicies)),
    plus one C(GetRolePolicy) per inline policy and one C(GetInstanceProfile) per profile; only what differs is
    written.
  - Why not M(amazon.aws.iam_role), M(amazon.aws.iam_policy) and M(amazon.aws.iam_instance_profile)? The three roles of
    an ECS cluster took six tasks and 21 requests on a run that changed nothing (C(iam_role) reads the role twice and
    lists its instance profiles; C(iam_policy) lists and reads every inline policy per call), about 5 s of the
    playbook's run time. See C(docs/benchmarks.md).
  - Roles are deleted by the C(appdeploy.ecs.ecs_cluster) role with M(amazon.aws.iam_role).
author:
  - appdeploy.ecs contributors (@appdeploy)
options:
  roles:
    description: The roles, converged in the order given.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Role name, 1 to 64 of letters, digits and C(+=,.@_-).
        type: str
        required: true
      path:
        description: Path of the role (and of its instance profile). The path of an existing role cannot change.
        type: str
        default: /
      description:
        description: Description of the role.
        type: str
        default: ""
      assume_role_policy:
        description: The trust policy, as a dict.
        type: dict
        required: true
      managed_policy_arns:
        description: ARNs of the managed policies attached to the role; others are detached.
        type: list
        elements: str
        default: []
      inline_policies:
        description:
          - Inline policies by name, each a policy document (dict). Inline policies not listed are deleted.
        type: dict
        default: {}
      permissions_boundary:
        description: ARN of the permissions boundary; empty removes it.
        type: str
        default: ""
      tags:
        description: Tags of the role (and of its instance profile); others are removed.
        type: dict
        default: {}
      instance_profile:
        description: Also keep an instance profile of the same name that holds exactly this role.
        type: bool
        default: false
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Nothing is created or modified; C(changes) lists what a real run would do. ARNs of roles that do not exist yet are empty.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff lists the changes, one per line.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: A second run with the same inputs reports no change and calls no mutating API.
"""

EXAMPLES = r"""
- name: The task execution role and the container instance role of a cluster
  appdeploy.ecs.iam_roles:
    roles:
      - name: web-ecs-execution
        assume_role_policy:
          Version: "2012-10-17"
          Statement:
            - {Effect: Allow, Principal: {Service: ecs-tasks.amazonaws.com}, Action: sts:AssumeRole}
        inline_policies:
          web-ecs-execution:
            Version: "2012-10-17"
            Statement:
              - {Effect: Allow, Action: [logs:CreateLogStream, logs:PutLogEvents], Resource: "arn:aws:logs:*:*:log-group:web:*"}
      - name: web-ecs-instance
        assume_role_policy:
          Version: "2012-10-17"
          Statement:
            - {Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: sts:AssumeRole}
        managed_policy_arns:
          - arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role
        instance_profile: true
  register: iam
"""

RETURN = r"""
roles:
  description: Per role name, its ARN (empty in check mode when it does not exist yet) and its instance profile's ARN.
  returned: always
  type: dict
  sample: {"web-ecs-execution": {"arn": "arn:aws:iam::123456789012:role/web-ecs-execution", "instance_profile_arn": ""}}
changes:
  description: What the run changed (or, in check mode, would change), one line each.
  returned: always
  type: list
  elements: str
  sample: ["create role web-ecs-execution", "put inline policy web-ecs-execution on role web-ecs-execution"]
"""

import json
import re

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.policy import compare_policies
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags
from ansible_collections.appdeploy.ecs.plugins.module_utils.retries import retry_decorator

NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
PATH_RE = re.compile(r"^/([\x21-\x7e]{0,510}/)?$")


class IAMInputError(Exception):
    """Bad input, reported as one line before anything is changed."""


def policy_json(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


class Roles:
    def __init__(self, module):
        self.module = module
        self.check = module.check_mode
        self.iam = module.client("iam", retry_decorator=retry_decorator())
        self.changes = []
        self.out = {}

    def change(self, line):
        self.changes.append(line)

    def write(self, method, **kwargs):
        if not self.check:
            getattr(self.iam, method)(aws_retry=True, **kwargs)

    def validate(self, roles):
        names = [r["name"] for r in roles]
        if len(set(names)) != len(names):
            raise IAMInputError("roles: each name must be unique (got %s)" % ", ".join(names))
        for role in roles:
            if not NAME_RE.match(role["name"]):
                raise IAMInputError("roles[].name %r is not allowed: 1 to 64 letters, digits and +=,.@_-" % role["name"])
            if not PATH_RE.match(role["path"]):
                raise IAMInputError("roles[%s].path %r must start and end with /" % (role["name"], role["path"]))
            for key in ("assume_role_policy",):
                if not isinstance(role[key].get("Statement"), (list, dict)):
                    raise IAMInputError("roles[%s].%s must be a policy document with a Statement" % (role["name"], key))
            for name, document in role["inline_policies"].items():
                if not isinstance(document, dict) or not isinstance(document.get("Statement"), (list, dict)):
                    raise IAMInputError("roles[%s].inline_policies.%s must be a policy document with a Statement"
                                        % (role["name"], name))
            for arn in role["managed_policy_arns"]:
                if not str(arn).startswith("arn:"):
                    raise IAMInputError("roles[%s].managed_policy_arns: %r is not an ARN" % (role["name"], arn))

    def get_role(self, name):
        try:
            return self.iam.get_role(aws_retry=True, RoleName=name)["Role"]
        except is_boto3_error_code("NoSuchEntity"):
            return None

    def ensure(self, role):
        name = role["name"]
        current = self.get_role(name)
        if current is None:
            self.create(role)
            return
        if current.get("Path", "/") != role["path"]:
            raise IAMInputError("roles[%s].path is %s but the existing role has %s; the path of a role cannot change"
                                % (name, role["path"], current.get("Path")))
        self.out[name] = {"arn": current["Arn"], "instance_profile_arn": ""}
        if compare_policies(current.get("AssumeRolePolicyDocument") or {}, role["assume_role_policy"]):
            self.change("update the trust policy of role %s" % name)
            self.write("update_assume_role_policy", RoleName=name, PolicyDocument=policy_json(role["assume_role_policy"]))
        if (current.get("Description") or "") != role["description"]:
            self.change("update the description of role %s" % name)
            self.write("update_role", RoleName=name, Description=role["description"])
        boundary = (current.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn", "")
        if boundary != role["permissions_boundary"]:
            if role["permissions_boundary"]:
                self.change("set the permissions boundary of role %s" % name)
                self.write("put_role_permissions_boundary", RoleName=name, PermissionsBoundary=role["permissions_boundary"])
            else:
                self.change("remove the permissions boundary of role %s" % name)
                self.write("delete_role_permissions_boundary", RoleName=name)
        self.ensure_tags(name, boto3_tag_list_to_ansible_dict(current.get("Tags") or []), role["tags"])
        attached = set(p["PolicyArn"] for p in self.iam.get_paginator("list_attached_role_policies").paginate(
            RoleName=name).build_full_result()["AttachedPolicies"])
        self.ensure_managed(name, attached, role["managed_policy_arns"])
        inline = self.iam.get_paginator("list_role_policies").paginate(RoleName=name).build_full_result()["PolicyNames"]
        self.ensure_inline(name, inline, role["inline_policies"])
        if role["instance_profile"]:
            self.ensure_profile(role)

    def create(self, role):
        name = role["name"]
        self.change("create role %s" % name)
        self.out[name] = {"arn": "", "instance_profile_arn": ""}
        if not self.check:
            params = dict(RoleName=name, Path=role["path"], Description=role["description"],
                          AssumeRolePolicyDocument=policy_json(role["assume_role_policy"]))
            if role["permissions_boundary"]:
                params["PermissionsBoundary"] = role["permissions_boundary"]
            if role["tags"]:
                params["Tags"] = ansible_dict_to_boto3_tag_list(role["tags"])
            created = self.iam.create_role(aws_retry=True, **params)["Role"]
            self.out[name]["arn"] = created["Arn"]
            self.iam.get_waiter("role_exists").wait(RoleName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        self.ensure_managed(name, set(), role["managed_policy_arns"])
        self.ensure_inline(name, [], role["inline_policies"])
        if role["instance_profile"]:
            self.ensure_profile(role, role_is_new=True)

    def ensure_tags(self, name, current, wanted):
        to_set, to_unset = compare_aws_tags(current, wanted)
        if to_set:
            self.change("tag role %s: %s" % (name, ", ".join(sorted(to_set))))
            self.write("tag_role", RoleName=name, Tags=ansible_dict_to_boto3_tag_list(to_set))
        if to_unset:
            self.change("untag role %s: %s" % (name, ", ".join(sorted(to_unset))))
            self.write("untag_role", RoleName=name, TagKeys=to_unset)

    def ensure_managed(self, name, attached, wanted):
        for arn in wanted:
            if arn not in attached:
                self.change("attach %s to role %s" % (arn, name))
                self.write("attach_role_policy", RoleName=name, PolicyArn=arn)
        for arn in sorted(attached - set(wanted)):
            self.change("detach %s from role %s" % (arn, name))
            self.write("detach_role_policy", RoleName=name, PolicyArn=arn)

    def ensure_inline(self, name, existing, wanted):
        for policy_name, document in wanted.items():
            if policy_name in existing:
                current = self.iam.get_role_policy(aws_retry=True, RoleName=name, PolicyName=policy_name)["PolicyDocument"]
                if not compare_policies(current, document):
                    continue
                self.change("update inline policy %s of role %s" % (policy_name, name))
            else:
                self.change("put inline policy %s on role %s" % (policy_name, name))
            self.write("put_role_policy", RoleName=name, PolicyName=policy_name, PolicyDocument=policy_json(document))
        for policy_name in sorted(set(existing) - set(wanted)):
            self.change("delete inline policy %s of role %s" % (policy_name, name))
            self.write("delete_role_policy", RoleName=name, PolicyName=policy_name)

    def ensure_profile(self, role, role_is_new=False):
        name = role["name"]
        try:
            profile = self.iam.get_instance_profile(aws_retry=True, InstanceProfileName=name)["InstanceProfile"]
        except is_boto3_error_code("NoSuchEntity"):
            profile = None
        if profile is None:
            self.change("create instance profile %s with role %s" % (name, name))
            if not self.check:
                params = dict(InstanceProfileName=name, Path=role["path"])
                if role["tags"]:
                    params["Tags"] = ansible_dict_to_boto3_tag_list(role["tags"])
                profile = self.iam.create_instance_profile(aws_retry=True, **params)["InstanceProfile"]
                self.iam.add_role_to_instance_profile(aws_retry=True, InstanceProfileName=name, RoleName=name)
                self.out[name]["instance_profile_arn"] = profile["Arn"]
            return
        self.out[name]["instance_profile_arn"] = profile["Arn"]
        holds = [r["RoleName"] for r in profile.get("Roles", [])]
        for other in holds:
            if other != name:
                self.change("remove role %s from instance profile %s" % (other, name))
                self.write("remove_role_from_instance_profile", InstanceProfileName=name, RoleName=other)
        if name not in holds:
            self.change("add role %s to instance profile %s" % (name, name))
            self.write("add_role_to_instance_profile", InstanceProfileName=name, RoleName=name)
        current = boto3_tag_list_to_ansible_dict(profile.get("Tags") or [])
        to_set, to_unset = compare_aws_tags(current, role["tags"])
        if to_set:
            self.change("tag instance profile %s: %s" % (name, ", ".join(sorted(to_set))))
            self.write("tag_instance_profile", InstanceProfileName=name, Tags=ansible_dict_to_boto3_tag_list(to_set))
        if to_unset:
            self.change("untag instance profile %s: %s" % (name, ", ".join(sorted(to_unset))))
            self.write("untag_instance_profile", InstanceProfileName=name, TagKeys=to_unset)

    def run(self, roles):
        self.validate(roles)
        for role in roles:
            self.ensure(role)
        return self.out


def main():
    argument_spec = dict(
        roles=dict(type="list", elements="dict", required=True, options=dict(
            name=dict(type="str", required=True),
            path=dict(type="str", default="/"),
            description=dict(type="str", default=""),
            assume_role_policy=dict(type="dict", required=True),
            managed_policy_arns=dict(type="list", elements="str", default=[]),
            inline_policies=dict(type="dict", default={}),
            permissions_boundary=dict(type="str", default=""),
            tags=dict(type="dict", default={}),
            instance_profile=dict(type="bool", default=False),
        )),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    manager = Roles(module)
    try:
        roles = manager.run(module.params["roles"])
    except IAMInputError as e:
        module.fail_json(msg=str(e), changes=manager.changes)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, botocore.exceptions.WaiterError) as e:
        module.fail_json_aws(e, msg="IAM call failed after: %s" % ("; ".join(manager.changes) or "nothing changed"))
    module.exit_json(changed=bool(manager.changes), changes=manager.changes, roles=roles,
                     diff={"before": "", "after": "".join(line + "\n" for line in manager.changes)})


if __name__ == "__main__":
    main()
