# -*- coding: utf-8 -*-
# Copyright: appdeploy.ecs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The retry decorator every module of this collection gives its boto3 clients.

amazon.aws's AWSRetry retries "Throttling" but not "ThrottlingException", the code ECS, ECR and Application Auto
Scaling answer with when they rate-limit; without it only botocore's own few retries stand between a busy account
and a failed deploy.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

THROTTLING_CODES = ("ThrottlingException",)


def retry_decorator(*extra_codes):
    """AWSRetry.jittered_backoff that also retries the throttling codes above, and any extra_codes."""
    return AWSRetry.jittered_backoff(catch_extra_error_codes=list(THROTTLING_CODES) + list(extra_codes))
