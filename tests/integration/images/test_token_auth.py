"""The Docker Hub flow without the Hub: a bearer-token front for the test registry.

401 + `WWW-Authenticate: Bearer realm=...,service=...,scope=...` -> GET the realm (with the
login as basic auth) -> retry with the token; blob GETs are redirected to another host name
that, like a blob store, refuses requests that still carry Authorization."""
import base64
import http.server
import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

from imgtest_helpers import hutch

pytestmark = pytest.mark.root

USER, PASSWORD = "hubuser", "hubpass"


class TokenFront:
    def __init__(self, registry_host: str):
        self.registry = registry_host
        self.scopes: list[str] = []
        self.redirected = 0
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, code, body=b"", headers=()):
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else None

            def _handle(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/token":
                    q = urllib.parse.parse_qs(url.query)
                    want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                    if self.headers.get("Authorization") not in (None, want):
                        return self._send(401, b'{"details":"incorrect username or password"}')
                    scope = q.get("scope", [""])[0]
                    front.scopes.append(f"{q.get('service', [''])[0]} {scope}")
                    return self._send(200, json.dumps({"token": "tok " + scope}).encode())
                if url.path.startswith("/direct/"):
                    if "Authorization" in self.headers:
                        return self._send(400, b"blob store: credentials not accepted")
                    return self._proxy(url.path[len("/direct"):], url.query)
                if not url.path.startswith("/v2/"):
                    return self._send(404)
                repo = url.path[len("/v2/"):]
                for marker in ("/blobs/", "/manifests/", "/tags/"):
                    repo = repo.split(marker, 1)[0]
                need = f"repository:{repo}:pull" + (
                    ",push" if self.command in ("POST", "PUT", "PATCH") else "")
                token = self.headers.get("Authorization", "")
                if not token.startswith("Bearer tok ") or not token[len("Bearer tok "):] \
                        .startswith(need.rsplit(":", 1)[0]) or \
                        (self.command in ("POST", "PUT") and "push" not in token):
                    realm = f"http://{front.host}/token"
                    return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":'
                                           b'"authentication required"}]}',
                                      [("WWW-Authenticate", f'Bearer realm="{realm}",'
                                        f'service="test-registry",scope="{need}"')])
                if self.command == "GET" and "/blobs/sha256:" in url.path:
                    front.redirected += 1
                    other = f"localhost:{front.port}"
                    return self._send(307, headers=[("Location",
                                                     f"http://{other}/direct{url.path}")])
                return self._proxy(url.path, url.query)

            def _proxy(self, path, query):
                target = f"http://{front.registry}{path}" + (f"?{query}" if query else "")
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("accept", "content-type", "content-length")}
                req = urllib.request.Request(target, data=self._body(), headers=headers,
                                             method=self.command)
                try:
                    with urllib.request.urlopen(req) as r:
                        code, body, hdrs = r.status, r.read(), r.headers
                except urllib.error.HTTPError as e:
                    code, body, hdrs = e.code, e.read(), e.headers
                out = []
                for k in ("Content-Type", "Docker-Content-Digest", "Location"):
                    if hdrs.get(k):
                        out.append((k, hdrs[k].replace(front.registry, front.host)))
                self._send(code, body, out)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def token_front(registry):
    front = TokenFront(registry.host)
    yield front
    front.stop()
    assert not front.thread.is_alive()


def test_bearer_token_flow_push_pull_and_login(image_root, other_root, token_front):
    name = f"{token_front.host}/library/bb:1"
    hutch(image_root, "tag", "busybox", name)
    hutch(image_root, "push", name)
    assert "test-registry repository:library/bb:pull,push" in token_front.scopes
    out = hutch(other_root, "pull", name).stdout.decode()
    assert out.splitlines()[0] == "1: Pulling from library/bb"
    assert "test-registry repository:library/bb:pull" in token_front.scopes
    assert token_front.redirected >= 1  # the blob came from the other host, without creds
    a = json.loads(hutch(image_root, "image", "inspect", name).stdout)[0]["Id"]
    b = json.loads(hutch(other_root, "image", "inspect", name).stdout)[0]["Id"]
    assert a == b
    bad = hutch(other_root, "login", "-u", USER, "--password-stdin", token_front.host,
                input=b"nope", check=False)
    assert bad.returncode == 1 and bad.stderr.decode() == (
        "Error response from daemon: unauthorized: incorrect username or password\n")
    ok = hutch(other_root, "login", "-u", USER, "--password-stdin", token_front.host,
               input=PASSWORD.encode())
    assert ok.stdout == b"Login Succeeded\n"
    hutch(other_root, "rmi", name)
    hutch(other_root, "pull", name)  # the token request now carries the saved login
    assert os.path.exists(os.path.join(other_root, "config.json"))
