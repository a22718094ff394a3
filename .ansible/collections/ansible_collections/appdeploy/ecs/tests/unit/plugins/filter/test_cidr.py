# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.appdeploy.ecs.plugins.filter.cidr import (
    FilterModule,
    cidr_layout_problems,
    cidr_problem,
    cidr_subnets,
)


@pytest.mark.parametrize("value", ["10.0.0.0/16", "172.31.0.0/20", "192.168.1.0/28"])
def test_valid_vpc_cidrs_have_no_problem(value):
    assert cidr_problem(value) == ""


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("10.0.0.0", "no prefix length"),
        ("10.0.0.1/16", "not an IPv4 network"),  # host bits set
        ("10.0.0.0/8", "allowed: /16 to /28"),
        ("10.0.0.0/29", "allowed: /16 to /28"),
        ("not-a-cidr", "not an IPv4 network"),
        ("300.0.0.0/16", "not an IPv4 network"),
        ("", "not an IPv4 network"),
        (None, "not an IPv4 network"),
    ],
)
def test_invalid_cidrs_are_explained(value, fragment):
    assert fragment in cidr_problem(value)


def test_prefix_bounds_are_parameters():
    assert cidr_problem("0.0.0.0/0", 0, 32) == ""
    assert cidr_problem("203.0.113.7/32", 0, 32) == ""


def test_subnets_split_in_order_with_offset():
    assert cidr_subnets("10.0.0.0/16", 4, 2) == ["10.0.0.0/20", "10.0.16.0/20"]
    assert cidr_subnets("10.0.0.0/16", 4, 2, 8) == ["10.0.128.0/20", "10.0.144.0/20"]
    assert cidr_subnets("10.0.0.0/16", "8", "3", "1") == ["10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"]


def test_subnets_refuse_impossible_splits():
    with pytest.raises(AnsibleFilterError, match="/29"):
        cidr_subnets("10.0.0.0/24", 5, 2)
    with pytest.raises(AnsibleFilterError, match="has 4 subnets"):
        cidr_subnets("10.0.0.0/16", 2, 3, 2)
    with pytest.raises(AnsibleFilterError, match="not an IPv4 network"):
        cidr_subnets("10.0.0.0/33", 2, 1)


def test_layout_problems_find_outside_and_overlapping_subnets():
    assert cidr_layout_problems("10.0.0.0/16", ["10.0.0.0/20", "10.0.16.0/20"]) == []
    problems = cidr_layout_problems("10.0.0.0/16", ["10.0.0.0/20", "10.0.8.0/24", "10.1.0.0/24", "bad"])
    assert any("10.0.8.0/24 overlaps 10.0.0.0/20" in p for p in problems)
    assert any("10.1.0.0/24 is not inside the VPC CIDR 10.0.0.0/16" in p for p in problems)
    assert any("'bad'" in p for p in problems)
    assert cidr_layout_problems("10.0.0.0/8", ["10.0.0.0/20"]) == ["'10.0.0.0/8' has prefix /8; allowed: /16 to /28"]


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"cidr_problem", "cidr_subnets", "cidr_layout_problems"}
