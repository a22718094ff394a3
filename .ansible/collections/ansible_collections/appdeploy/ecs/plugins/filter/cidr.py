# -*- coding: utf-8 -*-
# Copyright: appdeploy.ecs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IPv4 CIDR helpers for the vpc role.

ansible.utils' ipaddr filters need the netaddr library on the controller; these need only the standard
library's ipaddress module, so the vpc role can validate and split CIDRs before any AWS call without
an extra dependency.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible.errors import AnsibleFilterError


def _network(value, what="value"):
    try:
        return ipaddress.IPv4Network(str(value), strict=True)
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError("%s %r is not an IPv4 network in CIDR form (%s)" % (what, value, exc))


def cidr_problem(value, min_prefix=16, max_prefix=28):
    """Return '' when value is an IPv4 network with a prefix in [min_prefix, max_prefix], else why not."""
    try:
        net = ipaddress.IPv4Network(str(value), strict=True)
    except (ValueError, TypeError) as exc:
        return "%r is not an IPv4 network in CIDR form (%s)" % (value, exc)
    if "/" not in str(value):
        return "%r has no prefix length (write it as a.b.c.d/nn)" % (value,)
    if not int(min_prefix) <= net.prefixlen <= int(max_prefix):
        return "%r has prefix /%d; allowed: /%d to /%d" % (value, net.prefixlen, int(min_prefix), int(max_prefix))
    return ""


def cidr_subnets(network, newbits, count, offset=0):
    """Split network into 2**newbits equal subnets and return count of them, starting at index offset."""
    net = _network(network, "network")
    newbits, count, offset = int(newbits), int(count), int(offset)
    new_prefix = net.prefixlen + newbits
    if new_prefix > 28:
        raise AnsibleFilterError("cannot split %s by %d bits: subnets would be /%d, AWS allows /16 to /28" % (net, newbits, new_prefix))
    available = 2 ** newbits
    if offset < 0 or count < 0 or offset + count > available:
        raise AnsibleFilterError("%s split into /%d has %d subnets; asked for %d from index %d" % (net, new_prefix, available, count, offset))
    subnets = net.subnets(new_prefix=new_prefix)
    out = []
    for index, subnet in enumerate(subnets):
        if index >= offset + count:
            break
        if index >= offset:
            out.append(str(subnet))
    return out


def cidr_layout_problems(vpc_cidr, subnet_cidrs):
    """Return a list of sentences: subnets that are not valid, outside vpc_cidr, or overlapping each other."""
    problems = []
    outer_problem = cidr_problem(vpc_cidr)
    if outer_problem:
        return [outer_problem]
    outer = ipaddress.IPv4Network(str(vpc_cidr))
    nets = []
    for value in subnet_cidrs or []:
        problem = cidr_problem(value, 16, 28)
        if problem:
            problems.append(problem)
            continue
        net = ipaddress.IPv4Network(str(value))
        if not net.subnet_of(outer):
            problems.append("%s is not inside the VPC CIDR %s" % (net, outer))
        for other in nets:
            if net.overlaps(other):
                problems.append("%s overlaps %s" % (net, other))
        nets.append(net)
    return problems


class FilterModule(object):
    def filters(self):
        return {
            "cidr_problem": cidr_problem,
            "cidr_subnets": cidr_subnets,
            "cidr_layout_problems": cidr_layout_problems,
        }
