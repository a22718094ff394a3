#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: appdeploy.ecs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: alb
short_description: Converge an Application Load Balancer that terminates TLS, its app target group and listeners in one call
version_added: 0.1.0
description:
  - Creates or updates an internet-facing or internal Application Load Balancer, one HTTP target group for the app,
    an HTTPS listener that forwards to the target group, and an HTTP listener that redirects to HTTPS with a 301.
    Listeners on other ports are deleted.
  - It reads the target group, the load balancer, their attributes, their tags (one call for both) and the listeners,
    six requests when nothing differs, and writes only what differs.
  - Why not M(community.aws.elb_target_group) and M(amazon.aws.elb_application_lb), which the collection used before
    and still uses for deletion? Together they made 17 requests on a run that changed nothing (the load balancer
    module reads the balancer, its attributes, tags, listeners and each listener's rules, then all of it again to
    return it), and 24 on a first run. See C(docs/benchmarks.md).
  - Settings that cannot change on an existing resource (target group protocol, port, VPC and target type; the
    scheme of the load balancer) make the module fail with a one-line error instead of replacing anything.
author:
  - appdeploy.ecs contributors (@appdeploy)
options:
  name:
    description: Name of the load balancer (1 to 32 letters, digits and hyphens, not starting or ending with a hyphen).
    type: str
    required: true
  scheme:
    description: Whether the load balancer is reachable from the internet. Fixed at creation.
    type: str
    choices: [internet-facing, internal]
    default: internet-facing
  subnets:
    description: Subnets of the load balancer, at least two in different zones.
    type: list
    elements: str
    required: true
  security_groups:
    description: Security groups of the load balancer.
    type: list
    elements: str
    required: true
  deletion_protection:
    description: Whether the load balancer refuses deletion.
    type: bool
    default: false
  drop_invalid_header_fields:
    description: Drop HTTP headers with invalid fields (AWS FSBP ELB.4). Unset leaves the attribute alone.
    type: bool
  access_logs_bucket:
    description: S3 bucket for access logs; empty turns access logs off.
    type: str
    default: ""
  access_logs_prefix:
    description: Prefix of the access logs in O(access_logs_bucket).
    type: str
    default: ""
  certificate_arn:
    description: ACM certificate of the HTTPS listener.
    type: str
    required: true
  ssl_policy:
    description: Security policy of the HTTPS listener.
    type: str
    default: ELBSecurityPolicy-TLS13-1-2-2021-06
  tags:
    description: Tags of the load balancer and the target group; others are removed.
    type: dict
    default: {}
  target_group:
    description: The app's target group.
    type: dict
    required: true
    suboptions:
      name:
        description: Name of the target group.
        type: str
        required: true
      vpc_id:
        description: VPC of the target group. Fixed at creation.
        type: str
        required: true
      port:
        description: Port of the targets. Fixed at creation.
        type: int
        required: true
      target_type:
        description: V(instance) for EC2 bridge networking, V(ip) for awsvpc (Fargate). Fixed at creation.
        type: str
        choices: [instance, ip]
        default: instance
      health_check_path:
        description: Path of the HTTP health check.
        type: str
        default: /
      health_check_interval:
        description: Seconds between health checks.
        type: int
        default: 30
      health_check_timeout:
        description: Seconds before a health check fails.
        type: int
        default: 5
      healthy_threshold:
        description: Successful checks before a target is healthy.
        type: int
        default: 5
      unhealthy_threshold:
        description: Failed checks before a target is unhealthy.
        type: int
        default: 2
      matcher:
        description: HTTP codes that count as healthy, for example V(200) or V(200-399).
        type: str
        default: "200"
      deregistration_delay:
        description: Seconds a deregistering target keeps its connections.
        type: int
        default: 300
      stickiness:
        description: Load-balancer cookie stickiness.
        type: bool
        default: false
      stickiness_duration:
        description: Seconds the stickiness cookie lasts. Unset leaves the attribute alone.
        type: int
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Nothing is created or modified; C(changes) lists what a real run would do. ARNs of resources that do not exist yet are empty.
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
- name: The load balancer of the ordermanagement stack, sticky sessions for Vaadin
  appdeploy.ecs.alb:
    name: ordermanagement
    subnets: "{{ vpc_public_subnet_ids }}"
    security_groups: ["{{ vpc_alb_security_group_id }}"]
    certificate_arn: "{{ certificate_arn }}"
    drop_invalid_header_fields: true
    target_group:
      name: ordermanagement-app
      vpc_id: "{{ vpc_id }}"
      port: 8080
      health_check_path: /app/dispatch/health
      stickiness: true
      stickiness_duration: 3600
  register: alb
"""

RETURN = r"""
load_balancer_arn:
  description: ARN of the load balancer (empty in check mode when it would be created).
  returned: always
  type: str
dns_name:
  description: DNS name of the load balancer.
  returned: always
  type: str
canonical_hosted_zone_id:
  description: Route 53 zone of the load balancer's DNS name, for alias records.
  returned: always
  type: str
target_group_arn:
  description: ARN of the target group (empty in check mode when it would be created).
  returned: always
  type: str
listeners:
  description: The listeners, each with C(port), C(protocol) and C(listener_arn).
  returned: always
  type: list
  elements: dict
changes:
  description: What the run changed (or, in check mode, would change), one line each.
  returned: always
  type: list
  elements: str
  sample: ["create target group web-app", "create load balancer web", "create listener HTTPS:443"]
"""

import re

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags
from ansible_collections.appdeploy.ecs.plugins.module_utils.retries import retry_decorator

NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")


class ALBInputError(Exception):
    pass


def redirect_action():
    return {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "Host": "#{host}",
                                                   "Path": "/#{path}", "Query": "#{query}", "StatusCode": "HTTP_301"}}


def action_key(action):
    """What matters of a default action, whatever extra fields the API adds (Order, ForwardConfig)."""
    kind = action.get("Type")
    if kind == "forward":
        arn = action.get("TargetGroupArn")
        if not arn:
            groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
            arn = groups[0].get("TargetGroupArn") if len(groups) == 1 else tuple(sorted(g.get("TargetGroupArn") for g in groups))
        return ("forward", arn)
    if kind == "redirect":
        config = action.get("RedirectConfig") or {}
        return ("redirect",) + tuple(config.get(k) for k in ("Protocol", "Port", "Host", "Path", "Query", "StatusCode"))
    return (kind, repr(sorted(action.items())))


class LoadBalancer:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.tg = module.params["target_group"]
        self.check = module.check_mode
        self.elb = module.client("elbv2", retry_decorator=retry_decorator())
        self.changes = []

    def call(self, line, method, **kwargs):
        self.changes.append(line)
        if self.check:
            return None
        return getattr(self.elb, method)(aws_retry=True, **kwargs)

    def validate(self):
        p, tg = self.p, self.tg
        for option, value in (("name", p["name"]), ("target_group.name", tg["name"])):
            if not NAME_RE.match(value or ""):
                raise ALBInputError("%s %r is not allowed: 1 to 32 letters, digits and hyphens, not starting or ending "
                                    "with a hyphen" % (option, value))
        if len(set(p["subnets"])) < 2:
            raise ALBInputError("subnets lists %d subnet(s); an Application Load Balancer needs at least 2 (in 2 zones)"
                                % len(set(p["subnets"])))
        if not p["security_groups"]:
            raise ALBInputError("security_groups is empty; give the load balancer's security group")
        if not str(p["certificate_arn"]).startswith("arn:"):
            raise ALBInputError("certificate_arn %r is not an ARN" % p["certificate_arn"])
        if not 1 <= tg["port"] <= 65535:
            raise ALBInputError("target_group.port %d must be 1-65535" % tg["port"])
        if not tg["health_check_path"].startswith("/"):
            raise ALBInputError("target_group.health_check_path %r must start with /" % tg["health_check_path"])
        if not 5 <= tg["health_check_interval"] <= 300 or not 2 <= tg["health_check_timeout"] < tg["health_check_interval"]:
            raise ALBInputError("target_group.health_check_interval must be 5-300 and health_check_timeout 2 up to "
                                "less than the interval (got %d and %d)" % (tg["health_check_interval"], tg["health_check_timeout"]))

    # --- reads ---------------------------------------------------------------------------------------------------

    def describe_target_group(self):
        try:
            found = self.elb.describe_target_groups(aws_retry=True, Names=[self.tg["name"]])["TargetGroups"]
        except is_boto3_error_code("TargetGroupNotFound"):
            return None
        return found[0] if found else None

    def describe_load_balancer(self):
        try:
            found = self.elb.describe_load_balancers(aws_retry=True, Names=[self.p["name"]])["LoadBalancers"]
        except is_boto3_error_code("LoadBalancerNotFound"):
            return None
        return found[0] if found else None

    # --- target group --------------------------------------------------------------------------------------------

    def health_check(self):
        tg = self.tg
        return {"HealthCheckProtocol": "HTTP", "HealthCheckPort": "traffic-port", "HealthCheckPath": tg["health_check_path"],
                "HealthCheckIntervalSeconds": tg["health_check_interval"], "HealthCheckTimeoutSeconds": tg["health_check_timeout"],
                "HealthyThresholdCount": tg["healthy_threshold"], "UnhealthyThresholdCount": tg["unhealthy_threshold"],
                "Matcher": {"HttpCode": str(tg["matcher"])}}

    def tg_attributes(self):
        tg = self.tg
        wanted = {"deregistration_delay.timeout_seconds": str(tg["deregistration_delay"]),
                  "stickiness.enabled": "true" if tg["stickiness"] else "false"}
        if tg["stickiness"]:
            wanted["stickiness.type"] = "lb_cookie"
            if tg["stickiness_duration"] is not None:
                wanted["stickiness.lb_cookie.duration_seconds"] = str(tg["stickiness_duration"])
        return wanted

    def ensure_target_group(self, current):
        tg = self.tg
        if current is None:
            params = dict(Name=tg["name"], Protocol="HTTP", Port=tg["port"], VpcId=tg["vpc_id"], TargetType=tg["target_type"],
                          **self.health_check())
            if self.p["tags"]:
                params["Tags"] = ansible_dict_to_boto3_tag_list(self.p["tags"])
            created = self.call("create target group %s (HTTP:%d, %s targets)" % (tg["name"], tg["port"], tg["target_type"]),
                                "create_target_group", **params)
            arn = created["TargetGroups"][0]["TargetGroupArn"] if created else ""
            self.ensure_attributes("target group", arn, {}, self.tg_attributes(), "modify_target_group_attributes",
                                   "TargetGroupArn")
            return arn
        fixed = [("protocol", current.get("Protocol"), "HTTP"), ("port", current.get("Port"), tg["port"]),
                 ("vpc_id", current.get("VpcId"), tg["vpc_id"]), ("target_type", current.get("TargetType"), tg["target_type"])]
        for option, have, want in fixed:
            if have != want:
                raise ALBInputError("target_group.%s is %s but target group %s has %s, which cannot change; delete the target "
                                    "group (or the stack's load balancer first) or keep %s" % (option, want, tg["name"], have, have))
        arn = current["TargetGroupArn"]
        wanted = self.health_check()
        differs = dict((k, v) for k, v in wanted.items() if current.get(k) != v)
        if differs:
            self.call("modify the health check of target group %s: %s" % (tg["name"], ", ".join(sorted(differs))),
                      "modify_target_group", TargetGroupArn=arn, **wanted)
        attrs = dict((a["Key"], a["Value"]) for a in self.elb.describe_target_group_attributes(
            aws_retry=True, TargetGroupArn=arn)["Attributes"])
        self.ensure_attributes("target group %s" % tg["name"], arn, attrs, self.tg_attributes(),
                               "modify_target_group_attributes", "TargetGroupArn")
        return arn

    def ensure_attributes(self, label, arn, current, wanted, method, key):
        differs = dict((k, v) for k, v in wanted.items() if current.get(k) != v)
        if differs and arn is not None:
            self.call("set %s on %s" % (", ".join("%s=%s" % kv for kv in sorted(differs.items())), label), method,
                      **{key: arn, "Attributes": [{"Key": k, "Value": v} for k, v in sorted(differs.items())]})

    # --- load balancer -------------------------------------------------------------------------------------------

    def lb_attributes(self):
        p = self.p
        wanted = {"deletion_protection.enabled": "true" if p["deletion_protection"] else "false",
                  "access_logs.s3.enabled": "true" if p["access_logs_bucket"] else "false"}
        if p["access_logs_bucket"]:
            wanted["access_logs.s3.bucket"] = p["access_logs_bucket"]
            wanted["access_logs.s3.prefix"] = p["access_logs_prefix"]
        if p["drop_invalid_header_fields"] is not None:
            wanted["routing.http.drop_invalid_header_fields.enabled"] = "true" if p["drop_invalid_header_fields"] else "false"
        return wanted

    def ensure_load_balancer(self, current):
        p = self.p
        if current is None:
            params = dict(Name=p["name"], Subnets=p["subnets"], SecurityGroups=p["security_groups"], Scheme=p["scheme"],
                          Type="application", IpAddressType="ipv4")
            if p["tags"]:
                params["Tags"] = ansible_dict_to_boto3_tag_list(p["tags"])
            created = self.call("create load balancer %s (%s)" % (p["name"], p["scheme"]), "create_load_balancer", **params)
            lb = created["LoadBalancers"][0] if created else None
            self.ensure_attributes("load balancer %s" % p["name"], lb["LoadBalancerArn"] if lb else "",
                                   {"deletion_protection.enabled": "false", "access_logs.s3.enabled": "false"},
                                   self.lb_attributes(), "modify_load_balancer_attributes", "LoadBalancerArn")
            return lb
        if current.get("Scheme") != p["scheme"]:
            raise ALBInputError("scheme is %s but load balancer %s is %s, which cannot change; delete it or keep %s"
                                % (p["scheme"], p["name"], current.get("Scheme"), current.get("Scheme")))
        arn = current["LoadBalancerArn"]
        have_subnets = sorted(z["SubnetId"] for z in current.get("AvailabilityZones", []))
        if have_subnets != sorted(set(p["subnets"])):
            self.call("set the subnets of load balancer %s" % p["name"], "set_subnets", LoadBalancerArn=arn, Subnets=p["subnets"])
        if sorted(current.get("SecurityGroups") or []) != sorted(set(p["security_groups"])):
            self.call("set the security groups of load balancer %s" % p["name"], "set_security_groups",
                      LoadBalancerArn=arn, SecurityGroups=p["security_groups"])
        # An attribute missing from the answer (moto omits access_logs.s3.enabled) has its AWS default.
        attrs = {"access_logs.s3.enabled": "false", "deletion_protection.enabled": "false"}
        attrs.update((a["Key"], a["Value"]) for a in self.elb.describe_load_balancer_attributes(
            aws_retry=True, LoadBalancerArn=arn)["Attributes"])
        self.ensure_attributes("load balancer %s" % p["name"], arn, attrs, self.lb_attributes(),
                               "modify_load_balancer_attributes", "LoadBalancerArn")
        return current

    def ensure_tags(self, arns):
        """One DescribeTags for the target group and the load balancer that existed before this run."""
        if not arns:
            return
        described = self.elb.describe_tags(aws_retry=True, ResourceArns=[arn for arn, dummy in arns])["TagDescriptions"]
        current = dict((d["ResourceArn"], boto3_tag_list_to_ansible_dict(d.get("Tags") or [])) for d in described)
        for arn, label in arns:
            have = current.get(arn, {})
            to_set, to_unset = compare_aws_tags(have, self.p["tags"])
            if to_set:
                self.call("tag %s: %s" % (label, ", ".join(sorted(to_set))), "add_tags", ResourceArns=[arn],
                          Tags=ansible_dict_to_boto3_tag_list(to_set))
            if to_unset:
                self.call("untag %s: %s" % (label, ", ".join(sorted(to_unset))), "remove_tags", ResourceArns=[arn], TagKeys=to_unset)

    # --- listeners -----------------------------------------------------------------------------------------------

    def ensure_listeners(self, lb_arn, tg_arn, existed):
        p = self.p
        wanted = {
            80: {"Protocol": "HTTP", "DefaultActions": [redirect_action()]},
            443: {"Protocol": "HTTPS", "SslPolicy": p["ssl_policy"], "Certificates": [{"CertificateArn": p["certificate_arn"]}],
                  "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn}]},
        }
        current = {}
        if existed:
            for listener in self.elb.get_paginator("describe_listeners").paginate(
                    LoadBalancerArn=lb_arn).build_full_result()["Listeners"]:
                current[listener["Port"]] = listener
        out = []
        for port in (80, 443):
            want = wanted[port]
            have = current.get(port)
            label = "%s:%d" % (want["Protocol"], port)
            if have is None:
                created = self.call("create listener %s" % label, "create_listener", LoadBalancerArn=lb_arn, Port=port, **want)
                arn = created["Listeners"][0]["ListenerArn"] if created else ""
            else:
                arn = have["ListenerArn"]
                differs = []
                if have.get("Protocol") != want["Protocol"]:
                    differs.append("protocol")
                if want.get("SslPolicy") and have.get("SslPolicy") != want["SslPolicy"]:
                    differs.append("TLS policy")
                if want.get("Certificates") and [c.get("CertificateArn") for c in have.get("Certificates") or []][:1] != \
                        [p["certificate_arn"]]:
                    differs.append("certificate")
                if [action_key(a) for a in have.get("DefaultActions") or []] != [action_key(a) for a in want["DefaultActions"]]:
                    differs.append("default action")
                if differs:
                    self.call("modify listener %s: %s" % (label, ", ".join(differs)), "modify_listener", ListenerArn=arn,
                              Port=port, **want)
            out.append({"port": port, "protocol": want["Protocol"], "listener_arn": arn})
        for port in sorted(set(current) - set(wanted)):
            self.call("delete listener %s:%d" % (current[port].get("Protocol"), port), "delete_listener",
                      ListenerArn=current[port]["ListenerArn"])
        return out

    def run(self):
        self.validate()
        tg_before = self.describe_target_group()
        lb_before = self.describe_load_balancer()
        tg_arn = self.ensure_target_group(tg_before)
        lb = self.ensure_load_balancer(lb_before)
        lb_arn = (lb or {}).get("LoadBalancerArn", "")
        existing = [(arn, label) for arn, label in (
            ((tg_before or {}).get("TargetGroupArn"), "target group %s" % self.tg["name"]),
            ((lb_before or {}).get("LoadBalancerArn"), "load balancer %s" % self.p["name"])) if arn]
        self.ensure_tags(existing)
        listeners = self.ensure_listeners(lb_arn, tg_arn, existed=lb_before is not None)
        return {"load_balancer_arn": lb_arn, "dns_name": (lb or {}).get("DNSName", ""),
                "canonical_hosted_zone_id": (lb or {}).get("CanonicalHostedZoneId", ""), "target_group_arn": tg_arn or "",
                "listeners": listeners}


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        scheme=dict(type="str", choices=["internet-facing", "internal"], default="internet-facing"),
        subnets=dict(type="list", elements="str", required=True),
        security_groups=dict(type="list", elements="str", required=True),
        deletion_protection=dict(type="bool", default=False),
        drop_invalid_header_fields=dict(type="bool"),
        access_logs_bucket=dict(type="str", default=""),
        access_logs_prefix=dict(type="str", default=""),
        certificate_arn=dict(type="str", required=True),
        ssl_policy=dict(type="str", default="ELBSecurityPolicy-TLS13-1-2-2021-06"),
        tags=dict(type="dict", default={}),
        target_group=dict(type="dict", required=True, options=dict(
            name=dict(type="str", required=True),
            vpc_id=dict(type="str", required=True),
            port=dict(type="int", required=True),
            target_type=dict(type="str", choices=["instance", "ip"], default="instance"),
            health_check_path=dict(type="str", default="/"),
            health_check_interval=dict(type="int", default=30),
            health_check_timeout=dict(type="int", default=5),
            healthy_threshold=dict(type="int", default=5),
            unhealthy_threshold=dict(type="int", default=2),
            matcher=dict(type="str", default="200"),
            deregistration_delay=dict(type="int", default=300),
            stickiness=dict(type="bool", default=False),
            stickiness_duration=dict(type="int"),
        )),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    manager = LoadBalancer(module)
    try:
        result = manager.run()
    except ALBInputError as e:
        module.fail_json(msg=str(e), changes=manager.changes)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="ELB call failed after: %s" % ("; ".join(manager.changes) or "nothing changed"))
    module.exit_json(changed=bool(manager.changes), changes=manager.changes,
                     diff={"before": "", "after": "".join(line + "\n" for line in manager.changes)}, **result)


if __name__ == "__main__":
    main()
