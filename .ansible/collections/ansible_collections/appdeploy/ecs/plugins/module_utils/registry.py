# -*- coding: utf-8 -*-
# Copyright: appdeploy.ecs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Minimal Docker Registry HTTP API v2 client (manifest HEAD/GET/PUT), used when a registry address is given.

The registry is the authority for image digests in that mode: the digest pinned in task definitions is the
registry's Docker-Content-Digest, never something computed locally.
"""

from __future__ import annotations

import base64

from ansible.module_utils.urls import open_url
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])

LOOPBACK = ("127.", "localhost", "[::1]")


class RegistryError(Exception):
    pass


def split_registry(registry):
    """'http://127.0.0.1:15001' or '127.0.0.1:15001' -> (base URL, host[:port] as used in image references)."""
    if "://" in registry:
        scheme, host = registry.split("://", 1)
    else:
        host = registry
        scheme = "http" if host.startswith(LOOPBACK) else "https"
    host = host.rstrip("/")
    return "%s://%s" % (scheme, host), host


class Registry:
    def __init__(self, registry, username=None, password=None, timeout=30):
        self.base_url, self.host = split_registry(registry)
        self.timeout = timeout
        self.headers = {}
        if username is not None:
            token = base64.b64encode(("%s:%s" % (username, password or "")).encode()).decode()
            self.headers["Authorization"] = "Basic " + token

    def _request(self, method, name, ref, data=None, headers=None):
        url = "%s/v2/%s/manifests/%s" % (self.base_url, name, ref)
        hdrs = dict(self.headers)
        hdrs.update(headers or {})
        try:
            return open_url(url, method=method, data=data, headers=hdrs, timeout=self.timeout,
                            follow_redirects="safe", validate_certs=True)
        except HTTPError as e:
            if e.code == 404:
                return None
            if e.code in (401, 403):
                raise RegistryError("registry %s refused %s %s (HTTP %d): credentials missing or wrong"
                                    % (self.host, method, url, e.code))
            raise RegistryError("registry %s answered HTTP %d to %s %s" % (self.host, e.code, method, url))
        except (URLError, OSError) as e:
            raise RegistryError("registry %s unreachable (%s %s: %s); check the registry option"
                                % (self.host, method, url, getattr(e, "reason", e)))

    def manifest_digest(self, name, ref):
        """Digest of the manifest stored under ref (tag or digest), or None when the registry has none."""
        resp = self._request("HEAD", name, ref, headers={"Accept": MANIFEST_TYPES})
        if resp is None:
            return None
        digest = resp.headers.get("Docker-Content-Digest")
        if not digest:
            raise RegistryError("registry %s sent no Docker-Content-Digest for %s:%s" % (self.host, name, ref))
        return digest

    def get_manifest(self, name, ref):
        resp = self._request("GET", name, ref, headers={"Accept": MANIFEST_TYPES})
        if resp is None:
            raise RegistryError("registry %s has no manifest %s:%s" % (self.host, name, ref))
        return resp.read(), resp.headers.get("Content-Type")

    def put_tag(self, name, digest, tag):
        """Point tag at an existing manifest (no Docker engine needed); returns the digest the registry reports."""
        body, ctype = self.get_manifest(name, digest)
        resp = self._request("PUT", name, tag, data=body, headers={"Content-Type": ctype})
        if resp is None:
            raise RegistryError("registry %s refused to tag %s as %s:%s" % (self.host, digest, name, tag))
        return resp.headers.get("Docker-Content-Digest") or digest
