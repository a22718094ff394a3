# -*- coding: utf-8 -*-
# Copyright: appdeploy.ecs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker engine plumbing for appdeploy.ecs.deploy, on the public Docker SDK for Python (classic builder).

The build context sent to the engine is built here from the same file list the fingerprint hashed
(fingerprint.context_entries), so what is fingerprinted is exactly what is built.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import time
import uuid

# The Docker SDK is imported only when the engine is needed (a build): a no-op run, the common case, does not pay
# for the import (~50 ms, about 3% of a no-op deploy). HAS_DOCKER is known without importing it.
import importlib.util

from ansible.module_utils.urls import open_url

HAS_DOCKER = importlib.util.find_spec("docker") is not None
docker = None


class _Unavailable(Exception):
    """Stands in for the SDK's exception classes until (and unless) the SDK is imported."""


# rebound to docker.errors.* by _import_docker(); APIError and NotFound subclass DockerException there
DockerException = APIError = ImageNotFound = NotFound = _Unavailable


def _import_docker():
    global docker, DockerException, APIError, ImageNotFound, NotFound  # pylint: disable=global-statement
    if docker is None:
        import docker as sdk
        from docker.errors import DockerException, APIError, ImageNotFound, NotFound  # noqa: F811
        docker = sdk
    return docker


# Name the Dockerfile gets inside the context tar when it lives outside the build context.
EXTERNAL_DOCKERFILE = ".appdeploy-ecs.Dockerfile"


class DockerError(Exception):
    pass


def connect(docker_host=None, timeout=60):
    """Return a docker.APIClient that answered a ping, or raise DockerError with a message saying what to do."""
    if not HAS_DOCKER:
        raise DockerError("the Docker SDK for Python (docker>=7.1.0) is required on the controller: pip install docker")
    _import_docker()
    host = docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        if docker_host:
            client = docker.APIClient(base_url=docker_host, version="auto", timeout=timeout)
        else:
            client = docker.from_env(timeout=timeout).api
        client.ping()
        return client
    except (DockerException, OSError) as e:
        raise DockerError(
            "Docker engine unreachable at %s (%s); start the engine or point docker_host / DOCKER_HOST at it" % (host, e)
        )


def context_tar(root, entries, dockerfile):
    """Gzipped tar of the given context entries; returns (fileobj, dockerfile path inside the tar)."""
    buf = io.BytesIO()
    root = os.path.abspath(root)
    df_abs = dockerfile if os.path.isabs(dockerfile) else os.path.join(root, dockerfile)
    df_rel = os.path.relpath(os.path.abspath(df_abs), root).replace(os.sep, "/")
    outside = df_rel == ".." or df_rel.startswith("../")
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for rel, abspath, st in entries:
            info = tar.gettarinfo(abspath, arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if stat.S_ISREG(st.st_mode):
                with open(abspath, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
        if outside:
            df_rel = EXTERNAL_DOCKERFILE
            info = tar.gettarinfo(df_abs, arcname=df_rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(df_abs, "rb") as f:
                tar.addfile(info, f)
    buf.seek(0)
    return buf, df_rel


def build(client, fileobj, dockerfile, tag, build_args=None, target=None, platform=None, network_mode=None,
          log_tail=25):
    """Build with the classic builder from a gzipped context tar; return the image ID."""
    log = []
    image_id = None
    kwargs = dict(fileobj=fileobj, custom_context=True, encoding="gzip", dockerfile=dockerfile, tag=tag,
                  rm=True, forcerm=True, decode=True, buildargs={str(k): str(v) for k, v in (build_args or {}).items()})
    if target:
        kwargs["target"] = target
    if platform:
        kwargs["platform"] = platform
    if network_mode:
        kwargs["network_mode"] = network_mode
    try:
        for chunk in client.build(**kwargs):
            if "stream" in chunk:
                log.extend(line for line in chunk["stream"].splitlines() if line.strip())
            if "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
                image_id = chunk["aux"]["ID"]
            if "error" in chunk or "errorDetail" in chunk:
                err = chunk.get("error") or chunk["errorDetail"].get("message")
                log.append(err)
                raise DockerError("docker build failed: %s; last build output: %s" % (err, " | ".join(log[-log_tail:])))
    except DockerException as e:
        raise DockerError("docker build failed: %s; last build output: %s" % (e, " | ".join(log[-log_tail:])))
    if not image_id:
        try:
            image_id = client.inspect_image(tag)["Id"]
        except DockerException as e:
            raise DockerError("docker build produced no image (%s); last build output: %s" % (e, " | ".join(log[-log_tail:])))
    return image_id


def tag_image(client, image_id, repository, tag):
    try:
        client.tag(image_id, repository, tag=tag, force=True)
    except DockerException as e:
        raise DockerError("docker tag %s %s:%s failed: %s" % (image_id, repository, tag, e))


def push(client, repository, tag, auth_config=None):
    """Push repository:tag; return (digest the engine reported, number of layers actually uploaded)."""
    digest = None
    uploaded = 0
    kwargs = dict(tag=tag, stream=True, decode=True)
    if auth_config:
        kwargs["auth_config"] = auth_config
    try:
        for chunk in client.push(repository, **kwargs):
            if "error" in chunk or "errorDetail" in chunk:
                err = chunk.get("error") or chunk["errorDetail"].get("message")
                raise DockerError("docker push %s:%s failed: %s; check the registry address and credentials" % (repository, tag, err))
            if chunk.get("status") == "Pushed":
                uploaded += 1
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = aux["Digest"]
    except DockerException as e:
        raise DockerError("docker push %s:%s failed: %s; check the registry address and credentials" % (repository, tag, e))
    return digest, uploaded


def repo_digests(client, image_id):
    try:
        return client.inspect_image(image_id).get("RepoDigests") or []
    except DockerException as e:
        if isinstance(e, NotFound) or getattr(e, "status_code", None) == 404:
            return []
        raise DockerError("docker inspect %s failed: %s" % (image_id, e))


def smoke_test(client, image_id, port, path="/", env=None, timeout=30, delay=0.5):
    """Run the image with host networking, probe http://127.0.0.1:port/path until 2xx; always remove the container.

    Returns a sentence describing the success; raises DockerError (with the container's last log lines) on failure.
    """
    if not path.startswith("/"):
        path = "/" + path
    url = "http://127.0.0.1:%d%s" % (port, path)
    name = "appdeploy-smoke-%s" % uuid.uuid4().hex[:12]
    container = None
    last = "no answer"
    try:
        container = client.create_container(
            image_id, name=name, environment={str(k): str(v) for k, v in (env or {}).items()},
            host_config=client.create_host_config(network_mode="host"),
        )
        client.start(container["Id"])
        deadline = time.monotonic() + timeout
        while True:
            state = client.inspect_container(container["Id"])["State"]
            if not state.get("Running"):
                logs = client.logs(container["Id"], tail=20).decode("utf-8", "replace").strip()
                raise DockerError("smoke test failed: the container exited with code %s before %s answered; "
                                  "last log lines: %s" % (state.get("ExitCode"), url, logs or "(none)"))
            try:
                resp = open_url(url, method="GET", timeout=min(5, timeout), follow_redirects="none")
                code = resp.getcode()
                if 200 <= code < 300:
                    return "Smoke test passed: GET %s answered %d." % (url, code)
                last = "HTTP %d" % code
            except Exception as e:  # connection refused, HTTP errors, timeouts: keep probing until the deadline
                code = getattr(e, "code", None)
                last = ("HTTP %s" % code) if code else str(e)
            if time.monotonic() >= deadline:
                logs = client.logs(container["Id"], tail=20).decode("utf-8", "replace").strip()
                raise DockerError("smoke test failed: GET %s gave no 2xx within %ss (last: %s); last log lines: %s"
                                  % (url, timeout, last, logs or "(none)"))
            time.sleep(delay)
    except DockerException as e:
        raise DockerError("smoke test failed: could not run image %s: %s" % (image_id, e))
    finally:
        if container is not None:
            try:
                client.remove_container(container["Id"], force=True, v=True)
            except DockerException:
                pass
