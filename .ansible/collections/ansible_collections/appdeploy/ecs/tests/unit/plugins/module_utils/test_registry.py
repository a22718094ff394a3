"""Registry HTTP API v2 client against a small in-process HTTP server."""
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ansible_collections.appdeploy.ecs.plugins.module_utils.registry import Registry, RegistryError, split_registry

DIGEST = "sha256:" + "a" * 64
MANIFEST = b'{"schemaVersion": 2}'


class Handler(BaseHTTPRequestHandler):
    store = {}
    seen = []

    def log_message(self, *a):
        pass

    def _answer(self, body):
        name_ref = self.path[len("/v2/"):]
        name, _sep, ref = name_ref.partition("/manifests/")
        Handler.seen.append((self.command, name, ref, self.headers.get("Authorization"), self.headers.get("Accept")))
        if name == "locked/app":
            self.send_response(401)
            self.end_headers()
            return
        if name == "broken/app":
            self.send_response(500)
            self.end_headers()
            return
        if self.command == "PUT":
            length = int(self.headers["Content-Length"])
            Handler.store[(name, ref)] = self.rfile.read(length)
            self.send_response(201)
            self.send_header("Docker-Content-Digest", DIGEST)
            self.end_headers()
            return
        if (name, ref) not in Handler.store:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Docker-Content-Digest", DIGEST)
        self.send_header("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
        self.send_header("Content-Length", str(len(Handler.store[(name, ref)])))
        self.end_headers()
        if body:
            self.wfile.write(Handler.store[(name, ref)])

    def do_HEAD(self):
        self._answer(False)

    def do_GET(self):
        self._answer(True)

    def do_PUT(self):
        self._answer(False)


@pytest.fixture
def registry():
    Handler.store = {("app", "fp-1"): MANIFEST, ("app", DIGEST): MANIFEST}
    Handler.seen = []
    server = HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield "127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


def test_split_registry():
    assert split_registry("127.0.0.1:5000") == ("http://127.0.0.1:5000", "127.0.0.1:5000")
    assert split_registry("localhost:5000/") == ("http://localhost:5000", "localhost:5000")
    assert split_registry("registry.example.com") == ("https://registry.example.com", "registry.example.com")
    assert split_registry("http://reg.lan:5000") == ("http://reg.lan:5000", "reg.lan:5000")


def test_head_present_and_absent(registry):
    r = Registry(registry)
    assert r.manifest_digest("app", "fp-1") == DIGEST
    assert r.manifest_digest("app", "fp-2") is None
    assert Handler.seen[0][0] == "HEAD" and "manifest.v2+json" in Handler.seen[0][4]


def test_put_tag_copies_the_manifest(registry):
    r = Registry(registry, username="u", password="p")
    assert r.put_tag("app", DIGEST, "v1") == DIGEST
    assert Handler.store[("app", "v1")] == MANIFEST
    assert [s[0] for s in Handler.seen] == ["GET", "PUT"] and Handler.seen[1][3] == "Basic dTpw"


def test_auth_refused_and_server_error(registry):
    with pytest.raises(RegistryError, match="refused HEAD .*HTTP 401.*credentials"):
        Registry(registry).manifest_digest("locked/app", "x")
    with pytest.raises(RegistryError, match="answered HTTP 500"):
        Registry(registry).manifest_digest("broken/app", "x")


def test_unreachable():
    with pytest.raises(RegistryError, match="registry 127.0.0.1:1 unreachable.*check the registry option"):
        Registry("127.0.0.1:1", timeout=2).manifest_digest("app", "x")
