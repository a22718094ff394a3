"""Read (or seed) an ECR repository straight through boto3, for the molecule checks of the ecr role.

There is no ECR *_info module in amazon.aws / community.aws, and reading through ecs_ecr itself would test the
module with itself. Region, endpoint and credentials come from the environment (molecule.yml provisioner env).
Usage: ecr_api.py describe NAME  |  ecr_api.py put-image NAME TAG
"""

import json
import sys

import boto3


def describe(ecr, name):
    try:
        repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    except ecr.exceptions.RepositoryNotFoundException:
        return {"exists": False}
    try:
        lifecycle = json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])
    except ecr.exceptions.LifecyclePolicyNotFoundException:
        lifecycle = None
    try:
        policy = json.loads(ecr.get_repository_policy(repositoryName=name)["policyText"])
    except ecr.exceptions.RepositoryPolicyNotFoundException:
        policy = None
    images = ecr.describe_images(repositoryName=name).get("imageDetails", [])
    repo.pop("createdAt", None)
    return {"exists": True, "repository": repo, "lifecycle_policy": lifecycle, "policy": policy, "image_count": len(images)}


def put_image(ecr, name, tag):
    # A minimal schema-2 manifest: moto's ECR stores the manifest without layers, which is all the checks need.
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2, "digest": "sha256:" + "4" * 64},
        "layers": [],
    }
    try:
        ecr.put_image(repositoryName=name, imageManifest=json.dumps(manifest), imageTag=tag)
    except ecr.exceptions.ImageAlreadyExistsException:
        return {"put": None}
    return {"put": tag}


def main():
    ecr = boto3.client("ecr")
    if sys.argv[1] == "describe":
        result = describe(ecr, sys.argv[2])
    else:
        result = put_image(ecr, sys.argv[2], sys.argv[3])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
