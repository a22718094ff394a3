# -*- coding: utf-8 -*-
# Copyright: appdeploy.ecs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ECR plumbing for appdeploy.ecs.deploy. Functions take a client made by AnsibleAWSModule.client with
AWSRetry.jittered_backoff() as retry decorator, and call it with aws_retry=True."""

from __future__ import annotations

import base64

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code


def describe_repository(client, name):
    """The repository dict, or None when it does not exist."""
    try:
        resp = client.describe_repositories(repositoryNames=[name], aws_retry=True)
    except is_boto3_error_code("RepositoryNotFoundException"):
        return None
    repos = resp.get("repositories") or []
    return repos[0] if repos else None


def find_image_digest(client, repository, tag, registry_id=None):
    """Digest of the image tagged ``tag`` (or with digest ``tag`` when it starts with sha256:) in ECR, or None."""
    image_id = {"imageDigest": tag} if tag.startswith("sha256:") else {"imageTag": tag}
    kwargs = dict(repositoryName=repository, imageIds=[image_id])
    if registry_id:
        kwargs["registryId"] = registry_id
    try:
        resp = client.describe_images(aws_retry=True, **kwargs)
    except is_boto3_error_code("ImageNotFoundException"):
        return None
    details = resp.get("imageDetails") or []
    return details[0].get("imageDigest") if details else None


def tags_of_digest(client, repository, digest, registry_id=None):
    kwargs = dict(repositoryName=repository, imageIds=[{"imageDigest": digest}])
    if registry_id:
        kwargs["registryId"] = registry_id
    try:
        resp = client.describe_images(aws_retry=True, **kwargs)
    except is_boto3_error_code("ImageNotFoundException"):
        return []
    details = resp.get("imageDetails") or []
    return list(details[0].get("imageTags") or []) if details else []


def add_tag(client, repository, digest, tag, registry_id=None):
    """Tag an existing image (put_image with its own manifest), the documented ECR way to retag without pulling."""
    kwargs = dict(repositoryName=repository, imageIds=[{"imageDigest": digest}],
                  acceptedMediaTypes=["application/vnd.docker.distribution.manifest.v2+json",
                                      "application/vnd.docker.distribution.manifest.list.v2+json",
                                      "application/vnd.oci.image.manifest.v1+json",
                                      "application/vnd.oci.image.index.v1+json"])
    if registry_id:
        kwargs["registryId"] = registry_id
    images = client.batch_get_image(aws_retry=True, **kwargs).get("images") or []
    if not images:
        raise LookupError("image %s not found in ECR repository %s" % (digest, repository))
    put = dict(repositoryName=repository, imageManifest=images[0]["imageManifest"], imageTag=tag)
    if images[0].get("imageManifestMediaType"):
        put["imageManifestMediaType"] = images[0]["imageManifestMediaType"]
    if registry_id:
        put["registryId"] = registry_id
    client.put_image(aws_retry=True, **put)


def docker_auth(client, registry_id=None):
    """auth_config for the Docker SDK from get_authorization_token: {username, password, serveraddress}."""
    kwargs = {}
    if registry_id:
        kwargs["registryIds"] = [registry_id]
    data = client.get_authorization_token(aws_retry=True, **kwargs)["authorizationData"][0]
    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    return {"username": user, "password": password, "serveraddress": data["proxyEndpoint"]}
