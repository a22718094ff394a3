#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: appdeploy.ecs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ecr_repository
short_description: Create or update an ECR repository with its scanning, encryption, lifecycle and repository policies
version_added: 0.1.0
description:
  - Creates an Amazon ECR private repository, or brings an existing one to the given tag mutability, scan-on-push
    setting, lifecycle policy and repository policy. Encryption is set at creation; ECR cannot change it later, so
    a different O(encryption_type) or O(kms_key) on an existing repository fails with a one-line error.
  - A run that changes nothing makes three reads (C(DescribeRepositories), C(GetLifecyclePolicy),
    C(GetRepositoryPolicy)).
  - Why not M(community.aws.ecs_ecr) (10.x), which the collection used before? It is still used to delete
    repositories. With AES256 it fails on every rerun (it sends C(kmsKey=null), which botocore rejects); in check
    mode it fails with "could not find repository" when a lifecycle policy is given for a repository that does not
    exist yet, and reports a predicted change as C(skipped); the role needed three calls and nine requests on a
    no-op run to route around this.
author:
  - appdeploy.ecs contributors (@appdeploy)
options:
  name:
    description: Repository name; ECR allows lowercase letters and digits with single C(.), C(_), C(-) or C(/) separators, 2 to 256 characters.
    type: str
    required: true
  image_tag_mutability:
    description: Whether a tag can be moved to another image.
    type: str
    choices: [MUTABLE, IMMUTABLE]
    default: IMMUTABLE
  scan_on_push:
    description: Scan each image for vulnerabilities when it is pushed.
    type: bool
    default: true
  encryption_type:
    description: Encryption at rest, fixed at creation.
    type: str
    choices: [AES256, KMS]
    default: AES256
  kms_key:
    description:
      - KMS key (ARN, id or alias) with O(encryption_type=KMS); empty uses the AWS managed key C(aws/ecr).
      - On an existing repository only an ARN can be compared with what ECR reports; an id or alias is not checked.
    type: str
    default: ""
  lifecycle_policy:
    description: The lifecycle policy (a dict with C(rules)). Unset leaves it alone; V({}) removes it.
    type: dict
  repository_policy:
    description: The repository policy (a policy document). Unset leaves it alone; V({}) removes it.
    type: dict
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Nothing is created or modified; C(changes) lists what a real run would do.
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
- name: An immutable, scanned repository that keeps the last 30 tagged images
  appdeploy.ecs.ecr_repository:
    name: ordermanagement
    lifecycle_policy:
      rules:
        - rulePriority: 1
          description: Keep the last 30 tagged images
          selection: {tagStatus: tagged, tagPatternList: ["*"], countType: imageCountMoreThan, countNumber: 30}
          action: {type: expire}
  register: repo
"""

RETURN = r"""
repository:
  description: The repository as ECR describes it (empty in check mode when it would be created).
  returned: always
  type: dict
  sample: {"repositoryName": "ordermanagement", "repositoryUri": "123456789012.dkr.ecr.eu-central-1.amazonaws.com/ordermanagement",
           "repositoryArn": "arn:aws:ecr:eu-central-1:123456789012:repository/ordermanagement", "registryId": "123456789012"}
changes:
  description: What the run changed (or, in check mode, would change), one line each.
  returned: always
  type: list
  elements: str
  sample: ["create repository ordermanagement (IMMUTABLE, scan on push, AES256)", "put lifecycle policy"]
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
from ansible_collections.appdeploy.ecs.plugins.module_utils import ecr as ecr_utils
from ansible_collections.appdeploy.ecs.plugins.module_utils.retries import retry_decorator

NAME_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")


class ECRInputError(Exception):
    pass


def canonical(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


class Repository:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.ecr = module.client("ecr", retry_decorator=retry_decorator())
        self.changes = []

    def write(self, line, method, **kwargs):
        self.changes.append(line)
        if not self.check:
            return getattr(self.ecr, method)(aws_retry=True, repositoryName=self.p["name"], **kwargs)
        return None

    def validate(self):
        p = self.p
        if not 2 <= len(p["name"]) <= 256 or not NAME_RE.match(p["name"]):
            raise ECRInputError("name %r is not a valid repository name: lowercase letters and digits, separated by "
                                "single . _ - or /, 2 to 256 characters" % p["name"])
        if p["kms_key"] and p["encryption_type"] != "KMS":
            raise ECRInputError("kms_key is set but encryption_type is %s; kms_key needs encryption_type KMS" % p["encryption_type"])
        if p["lifecycle_policy"] and not isinstance(p["lifecycle_policy"].get("rules"), list):
            raise ECRInputError("lifecycle_policy must be a dict with a list of rules")

    def run(self):
        self.validate()
        p = self.p
        repo = ecr_utils.describe_repository(self.ecr, p["name"])
        if repo is None:
            return self.create()
        encryption = repo.get("encryptionConfiguration") or {"encryptionType": "AES256"}
        if encryption.get("encryptionType") != p["encryption_type"] or (
                p["kms_key"].startswith("arn:") and encryption.get("kmsKey") != p["kms_key"]):
            raise ECRInputError("encryption_type / kms_key: repository %s is encrypted with %s %s; ECR cannot change the "
                                "encryption of an existing repository (create a new one, or set the options to match)"
                                % (p["name"], encryption.get("encryptionType"), encryption.get("kmsKey", "")))
        if repo.get("imageTagMutability") != p["image_tag_mutability"]:
            self.write("set tag mutability %s" % p["image_tag_mutability"], "put_image_tag_mutability",
                       imageTagMutability=p["image_tag_mutability"])
        if bool((repo.get("imageScanningConfiguration") or {}).get("scanOnPush")) != p["scan_on_push"]:
            self.write("turn scan on push %s" % ("on" if p["scan_on_push"] else "off"), "put_image_scanning_configuration",
                       imageScanningConfiguration={"scanOnPush": p["scan_on_push"]})
        self.ensure_lifecycle(existing=True)
        self.ensure_policy(existing=True)
        return repo

    def create(self):
        p = self.p
        encryption = {"encryptionType": p["encryption_type"]}
        if p["kms_key"]:
            encryption["kmsKey"] = p["kms_key"]
        repo = self.write("create repository %s (%s, scan on push %s, %s)" % (
            p["name"], p["image_tag_mutability"], "on" if p["scan_on_push"] else "off", p["encryption_type"]),
            "create_repository", imageTagMutability=p["image_tag_mutability"],
            imageScanningConfiguration={"scanOnPush": p["scan_on_push"]}, encryptionConfiguration=encryption)
        self.ensure_lifecycle(existing=False)
        self.ensure_policy(existing=False)
        return repo["repository"] if repo else {}

    def ensure_lifecycle(self, existing):
        wanted = self.p["lifecycle_policy"]
        if wanted is None:
            return
        current = None
        if existing:
            try:
                current = json.loads(self.ecr.get_lifecycle_policy(
                    aws_retry=True, repositoryName=self.p["name"])["lifecyclePolicyText"])
            except is_boto3_error_code("LifecyclePolicyNotFoundException"):
                current = None
        if wanted and (current is None or canonical(current) != canonical(wanted)):
            self.write("put lifecycle policy", "put_lifecycle_policy", lifecyclePolicyText=canonical(wanted))
        elif not wanted and current is not None:
            self.write("delete lifecycle policy", "delete_lifecycle_policy")

    def ensure_policy(self, existing):
        wanted = self.p["repository_policy"]
        if wanted is None:
            return
        current = None
        if existing:
            try:
                current = json.loads(self.ecr.get_repository_policy(
                    aws_retry=True, repositoryName=self.p["name"])["policyText"])
            except is_boto3_error_code("RepositoryPolicyNotFoundException"):
                current = None
        if wanted and (current is None or compare_policies(current, wanted)):
            self.write("set repository policy", "set_repository_policy", policyText=canonical(wanted))
        elif not wanted and current is not None:
            self.write("delete repository policy", "delete_repository_policy")


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        image_tag_mutability=dict(type="str", choices=["MUTABLE", "IMMUTABLE"], default="IMMUTABLE"),
        scan_on_push=dict(type="bool", default=True),
        encryption_type=dict(type="str", choices=["AES256", "KMS"], default="AES256"),
        kms_key=dict(type="str", default="", no_log=False),
        lifecycle_policy=dict(type="dict"),
        repository_policy=dict(type="dict"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    repository = Repository(module)
    try:
        repo = repository.run()
    except ECRInputError as e:
        module.fail_json(msg=str(e), changes=repository.changes)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="ECR call failed after: %s" % ("; ".join(repository.changes) or "nothing changed"))
    module.exit_json(changed=bool(repository.changes), changes=repository.changes, repository=repo or {},
                     diff={"before": "", "after": "".join(line + "\n" for line in repository.changes)})


if __name__ == "__main__":
    main()
