"""A client for the OCI distribution / Docker Registry v2 API, and pull/push on the store.

Auth: a 401 carries a `WWW-Authenticate` challenge; Bearer means fetching a token from the
realm (with the saved login as basic auth, if any) for the repository scope, Basic means
sending the saved login. http:// is used only for localhost / 127.0.0.0/8 / ::1 and hosts
given with --insecure-registry (or HUTCH_INSECURE_REGISTRIES=host:port,...); everything else
is https with verified certificates.

Pull streams each layer blob once: bytes go to a temp file (kept as the blob) and through
the decompressor into the layer unpacker at the same time; the blob digest and the diff id
are checked at the end and nothing is kept if either is wrong.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform as _platform
import re
import shutil
import ssl
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

from hutch import trace
from hutch.images import auth
from hutch.images import reference as refs
from hutch.images.compression import (CompressionError, ThreadedReader, decompressed,
                                      zstd_available)
from hutch.images.layer import LayerError
from hutch.images.store import (MEDIA_DOCKER_LAYER_GZIP, MEDIA_OCI_LAYER_GZIP, DigestMismatch,
                                ImageStore, StoreError)

MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_V1 = ("application/vnd.docker.distribution.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.v1+prettyjws")
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST_ACCEPT = ", ".join([MT_OCI_INDEX, MT_DOCKER_LIST, MT_OCI_MANIFEST, MT_DOCKER_MANIFEST])
HUB_API = "registry-1.docker.io"
PARALLEL_LAYERS = 3  # Docker's max-concurrent-downloads
_CHUNK = 1 << 20


class RegistryError(Exception):
    """One line for the user, Docker's wording where it has one."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # followed by hand, so credentials never go to a blob store's host


def _is_local(host: str) -> bool:
    """localhost or a loopback address (with or without a port): plain http is allowed."""
    import ipaddress
    h = host
    if h.startswith("["):
        h = h[1:h.index("]")] if "]" in h else h
    elif h.count(":") == 1:
        h = h.split(":", 1)[0]
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _parse_challenge(header: str) -> tuple[str, dict]:
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


def _net_reason(e: OSError, url: str) -> str:
    """Go's wording for the common network failures."""
    import socket
    reason = getattr(e, "reason", e)
    netloc = urllib.parse.urlsplit(url).netloc
    host = urllib.parse.urlsplit(url).hostname or netloc
    if isinstance(reason, socket.gaierror):
        return f"dial tcp: lookup {host}: no such host"
    if isinstance(reason, ConnectionRefusedError):
        return f"dial tcp {netloc}: connect: connection refused"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"dial tcp {netloc}: i/o timeout"
    return str(reason)


class Client:
    def __init__(self, paths, insecure=()):
        self.paths = paths
        # daemon.json's insecure-registries, for commands without the flag (run, create)
        env = os.environ.get("HUTCH_INSECURE_REGISTRIES", "")
        self.insecure = set(insecure) | {h.strip() for h in env.split(",") if h.strip()}
        self.tokens: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._openers: dict[bool, urllib.request.OpenerDirector] = {}

    def opener(self, verify: bool = True) -> urllib.request.OpenerDirector:
        # made on first use: loading the CA store costs ~25 ms, and localhost needs none
        with self._lock:
            if verify not in self._openers:
                ctx = ssl.create_default_context()
                if not verify:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                self._openers[verify] = urllib.request.build_opener(
                    _NoRedirect(), urllib.request.HTTPSHandler(context=ctx))
            return self._openers[verify]

    def base(self, domain: str) -> str:
        host = HUB_API if domain == refs.DEFAULT_DOMAIN else domain
        scheme = "http" if _is_local(domain) or domain in self.insecure else "https"
        return f"{scheme}://{host}"

    def _open(self, req, domain):
        if req.full_url.startswith("http://"):
            return self._plain().open(req, timeout=60)
        return self.opener(domain not in self.insecure).open(req, timeout=60)

    def _plain(self) -> urllib.request.OpenerDirector:
        with self._lock:
            if None not in self._openers:
                self._openers[None] = urllib.request.build_opener(_NoRedirect())
            return self._openers[None]

    def request(self, method: str, domain: str, path: str, *, scope: str, headers=None,
                data=None, ok=(200,)):
        """A request to the registry with auth handled; returns the open response."""
        url = path if path.startswith(("http://", "https://")) else self.base(domain) + path
        hdrs = dict(headers or {})
        for attempt in range(2):
            h = dict(hdrs)
            token = self.tokens.get((domain, scope))
            if token:
                h["Authorization"] = token
            body = data() if callable(data) else data
            req = urllib.request.Request(url, data=body, headers=h, method=method)
            trace.step("registry", f"{method} {url}")
            try:
                for _ in range(10):
                    try:
                        resp = self._open(req, domain)
                    except urllib.error.HTTPError as e:
                        if e.code in (301, 302, 303, 307, 308) and e.headers.get("Location"):
                            new = urllib.parse.urljoin(url, e.headers["Location"])
                            same = urllib.parse.urlsplit(new).netloc == \
                                urllib.parse.urlsplit(url).netloc
                            nh = dict(h) if same else {k: v for k, v in h.items()
                                                       if k != "Authorization"}
                            req = urllib.request.Request(new, headers=nh, method=method
                                                         if method in ("GET", "HEAD") else "GET")
                            url = new
                            continue
                        raise
                    break
                if resp.status not in ok:
                    raise RegistryError(f"unexpected status {resp.status} from {method} {url}")
                return resp
            except urllib.error.HTTPError as e:
                if e.code == 401 and attempt == 0 and self._authenticate(domain, scope, e):
                    continue
                raise RegistryError(self._error_text(e, method, url)) from None
            except (urllib.error.URLError, OSError) as e:
                raise RegistryError(f'Get "{self.base(domain)}/v2/": '
                                    f'{_net_reason(e, url)}') from None
            finally:
                if hasattr(body, "close"):
                    body.close()  # a file being uploaded: reopened by data() on a retry
        raise RegistryError(f"{method} {url}: unauthorized")

    @staticmethod
    def _error_text(e: urllib.error.HTTPError, method: str, url: str) -> str:
        try:
            body = json.loads(e.read() or b"{}")
            errs = body.get("errors") or []
        except (ValueError, OSError):
            errs = []
        if errs:
            first = errs[0]
            code = str(first.get("code", "")).lower().replace("_", " ")
            msg = first.get("message", "")
            return f"{code}: {msg}" if code and msg else (msg or code)
        if e.code == 401:
            return "unauthorized: authentication required"
        if e.code == 404:
            return "not found"
        return f"{method} {url}: {e.code} {e.reason}"

    def _authenticate(self, domain: str, scope: str, err) -> bool:
        header = err.headers.get("WWW-Authenticate", "")
        scheme, params = _parse_challenge(header)
        creds = auth.credentials(self.paths, domain)
        if scheme == "basic":
            if not creds:
                return False
            import base64
            self.tokens[(domain, scope)] = "Basic " + base64.b64encode(
                f"{creds[0]}:{creds[1]}".encode()).decode()
            return True
        if scheme != "bearer" or "realm" not in params:
            return False
        self.tokens[(domain, scope)] = "Bearer " + self._fetch_token(params, scope, creds)
        return True

    def _fetch_token(self, params: dict, scope: str, creds) -> str:
        q = {"service": params.get("service", "")}
        if scope:
            q["scope"] = scope
        url = params["realm"] + ("&" if "?" in params["realm"] else "?") + \
            urllib.parse.urlencode(q)
        h = {}
        if creds:
            import base64
            h["Authorization"] = "Basic " + base64.b64encode(
                f"{creds[0]}:{creds[1]}".encode()).decode()
        trace.step("registry", f"GET {url} (token)")
        try:
            with self._open(urllib.request.Request(url, headers=h), "") as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            if e.code == 401:
                raise RegistryError("unauthorized: incorrect username or password") from None
            raise RegistryError(f"failed to fetch an auth token from {params['realm']}: "
                                f"{e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            raise RegistryError(f'Get "{params["realm"]}": {_net_reason(e, url)}') from None
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError("the registry's token server returned no token")
        return token

    def login(self, domain: str, user: str, password: str) -> None:
        """Check credentials against the registry (GET /v2/ through its challenge)."""
        import base64
        url = self.base(domain) + "/v2/"
        try:
            with self._open(urllib.request.Request(url), domain):
                return  # no auth at all: Docker says Login Succeeded too
        except urllib.error.HTTPError as e:
            if e.code != 401:
                raise RegistryError(f'login attempt to {url} failed with status: '
                                    f'{e.code} {e.reason}') from None
            scheme, params = _parse_challenge(e.headers.get("WWW-Authenticate", ""))
        except (urllib.error.URLError, OSError) as e:
            raise RegistryError(f'Get "{url}": {_net_reason(e, url)}') from None
        basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if scheme == "bearer":
            self._fetch_token(params, "", (user, password))
            return
        try:
            with self._open(urllib.request.Request(url, headers={"Authorization": basic}),
                            domain):
                return
        except urllib.error.HTTPError as e:
            if e.code == 401:
                raise RegistryError(f'Get "{url}": unauthorized: authentication '
                                    "required") from None
            raise RegistryError(f"login attempt to {url} failed with status: {e.code} "
                                f"{e.reason}") from None


# --- progress --------------------------------------------------------------------------

class Progress:
    """Docker's per-layer status: plain `id: status` lines when stdout is not a terminal,
    a redrawn block of lines (one per layer, with a bar while downloading) when it is."""

    def __init__(self, out=None, quiet: bool = False):
        self.out = out or sys.stdout
        self.quiet = quiet
        self.tty = not quiet and self.out.isatty()
        self.rows: list[str] = []
        self.lock = threading.Lock()

    def line(self, text: str) -> None:
        if self.quiet:
            return
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()
            self.rows = []  # lines above are no longer redrawn

    def status(self, lid: str, text: str, *, transient: bool = False) -> None:
        """transient: progress updates only drawn on a terminal (Downloading, Extracting)."""
        if self.quiet or (transient and not self.tty):
            return
        with self.lock:
            if not self.tty:
                self.out.write(f"{lid}: {text}\n")
                self.out.flush()
                return
            if lid not in self.rows:
                self.rows.append(lid)
                self.out.write(f"{lid}: {text}\n")
            else:
                up = len(self.rows) - self.rows.index(lid)
                self.out.write(f"\x1b[{up}A\x1b[2K\r{lid}: {text}\x1b[{up}B\r")
            self.out.flush()


def _size(n: float) -> str:
    """go-units HumanSize, as Docker's progress bar shows bytes ("1.049MB")."""
    units = ["B", "kB", "MB", "GB", "TB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000
        i += 1
    return f"{n:.4g}{units[i]}"


def _bar(done: int, total: int) -> str:
    if total <= 0:
        return _size(done)
    width = 50
    n = min(width, int(width * done / total))
    arrow = "=" * max(0, n - 1) + (">" if n else "")
    return f"[{arrow.ljust(width)}]  {_size(done)}/{_size(total)}"


# --- pull ------------------------------------------------------------------------------

def host_platform() -> tuple[str, str, str]:
    m = _platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)
    variant = "v8" if arch == "arm64" else ("v7" if arch == "arm" else "")
    return "linux", arch, variant


def _want_platform(spec: str) -> tuple[str, str, str]:
    if not spec:
        return host_platform()
    parts = spec.lower().split("/")
    if len(parts) < 2:
        raise RegistryError(f'"{spec}": unknown operating system or architecture: '
                            "invalid argument")
    return parts[0], parts[1], parts[2] if len(parts) > 2 else ""


def _pick(index: dict, want: tuple[str, str, str], spec: str) -> dict:
    os_, arch, variant = want
    best = None
    for m in index.get("manifests", []):
        p = m.get("platform") or {}
        if p.get("os") != os_ or p.get("architecture") != arch:
            continue
        if variant and p.get("variant") and p.get("variant") != variant:
            continue
        if best is None or (variant and p.get("variant") == variant):
            best = m
    if best is None:
        shown = spec or f"{os_}/{arch}" + (f"/{variant}" if variant else "")
        raise RegistryError(f"no matching manifest for {shown} in the manifest list entries")
    return best


def _check_digests(digests) -> None:
    for d in digests:
        if not isinstance(d, str) or not refs.is_digest(d):
            raise RegistryError(f"invalid digest {d!r} in the image manifest or config")


def _read_verified(resp, digest: str | None, limit: int = 8 << 20) -> bytes:
    data = resp.read(limit + 1)
    if len(data) > limit:
        raise RegistryError("manifest too large")
    got = "sha256:" + hashlib.sha256(data).hexdigest()
    if digest and got != digest:
        raise RegistryError(f"digest mismatch: expected {digest}, got {got}")
    return data


def fetch_manifest(client: Client, ref: refs.Reference, spec: str = "") -> tuple[str, dict, bytes]:
    """(digest the user's reference resolves to, the image manifest, its bytes)."""
    scope = f"repository:{ref.path}:pull"
    target = ref.digest or ref.tag or "latest"
    try:
        resp = client.request("GET", ref.domain, f"/v2/{ref.path}/manifests/{target}",
                              scope=scope, headers={"Accept": MANIFEST_ACCEPT})
    except RegistryError as e:
        if str(e).startswith(("manifest unknown", "not found", "name unknown")):
            raise RegistryError(f"manifest for {ref.familiar()} not found: manifest unknown: "
                                "manifest unknown") from None
        if str(e).startswith(("unauthorized", "denied")):
            raise RegistryError(f"pull access denied for {ref.familiar_name}, repository does "
                                "not exist or may require 'hutch login': denied: requested "
                                "access to the resource is denied") from None
        raise
    with resp:
        data = _read_verified(resp, ref.digest)
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
    top_digest = "sha256:" + hashlib.sha256(data).hexdigest()
    manifest = json.loads(data)
    mt = manifest.get("mediaType") or ctype
    if mt in MT_DOCKER_V1 or manifest.get("schemaVersion") == 1:
        raise RegistryError(f"{ref.familiar()}: Docker image manifest schema 1 is not supported")
    if mt in (MT_DOCKER_LIST, MT_OCI_INDEX) or ("manifests" in manifest and
                                                 "layers" not in manifest):
        chosen = _pick(manifest, _want_platform(spec), spec)
        _check_digests([chosen.get("digest")])
        with client.request("GET", ref.domain, f"/v2/{ref.path}/manifests/{chosen['digest']}",
                            scope=scope, headers={"Accept": MANIFEST_ACCEPT}) as resp:
            data = _read_verified(resp, chosen["digest"])
        manifest = json.loads(data)
    return top_digest, manifest, data


def pull(store: ImageStore, client: Client, ref: refs.Reference, out: Progress, *,
         platform: str = "") -> str:
    """Pull ref (tag or digest) into the store; returns the image id."""
    store.sweep_tmp()
    digest, manifest, manifest_bytes = fetch_manifest(client, ref, platform)
    out.line(f"{ref.digest or ref.tag}: Pulling from {ref.path}")
    scope = f"repository:{ref.path}:pull"
    cfg_desc = manifest.get("config") or {}
    config_digest = cfg_desc.get("digest")
    if not config_digest:
        raise RegistryError("the image manifest has no config")
    _check_digests([config_digest] + [d.get("digest", "") for d in manifest.get("layers") or []])
    if store.has_blob(config_digest):
        config_bytes = store.read_blob(config_digest)
    else:
        with client.request("GET", ref.domain, f"/v2/{ref.path}/blobs/{config_digest}",
                            scope=scope) as resp:
            config_bytes = _read_verified(resp, config_digest, 64 << 20)
    config = json.loads(config_bytes)
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    _check_digests(diff_ids)
    layers = [d for d in manifest.get("layers") or []]
    if len(diff_ids) != len(layers):
        raise RegistryError("the image config and manifest disagree on the number of layers")
    # up to date: the name already points at this image (its id is the config digest)
    up_to_date = _existing_id(store, ref) == config_digest and \
        all(store.has_layer(d) for d in diff_ids)
    todo = []
    seen = set()
    for desc, diff_id in zip(layers, diff_ids):
        lid = desc["digest"].split(":", 1)[1][:12]
        if store.has_layer(diff_id) or diff_id in seen:
            if not up_to_date:
                out.status(lid, "Already exists")
            continue
        seen.add(diff_id)
        out.status(lid, "Pulling fs layer")
        todo.append((desc, diff_id, lid))
    for _, _, lid in todo[PARALLEL_LAYERS:]:
        out.status(lid, "Waiting")  # queued behind the concurrent downloads, as Docker says
    if len(todo) == 1:
        _pull_layer(store, client, ref, scope, *todo[0], out)
    elif todo:
        cancel = threading.Event()
        with ThreadPoolExecutor(max_workers=PARALLEL_LAYERS) as pool:
            futures = [pool.submit(_pull_layer, store, client, ref, scope, d, diff, lid, out,
                                   cancel) for d, diff, lid in todo]
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                if any(f.exception() for f in done):
                    cancel.set()  # one failed: the others stop instead of finishing
                errors = [f.exception() for f in futures]
            except BaseException:
                cancel.set()  # Ctrl-C: the other downloads stop and remove their work dirs
                raise
        for e in errors:
            if e is not None:
                if isinstance(e, (RegistryError, KeyboardInterrupt)):
                    raise e
                raise RegistryError(str(e)) from e
    store.put_blob(manifest_bytes)
    tags = [str(ref)] if ref.tag and not ref.digest else []  # name:tag@digest: the digest rules
    image = store.add_image(config_bytes, tags=tags, digest_refs=[f"{ref.name}@{digest}"])
    out.line(f"Digest: {digest}")
    shown = ref.familiar()
    if up_to_date:
        out.line(f"Status: Image is up to date for {shown}")
    else:
        out.line(f"Status: Downloaded newer image for {shown}")
    if not out.quiet:
        out.line(str(ref))
    return image.id


def _existing_id(store: ImageStore, ref: refs.Reference) -> str | None:
    db = store.read_db()
    key = f"{ref.name}@{ref.digest}" if ref.digest else str(ref)
    return db["digests" if ref.digest else "tags"].get(key)


class _Tee:
    """Reads from the HTTP response, writes every byte to the blob file and hashes it."""

    def __init__(self, resp, f, total, lid, out, cancel=None):
        self.resp, self.f, self.total, self.lid, self.out = resp, f, total, lid, out
        self.cancel = cancel
        self.sha = hashlib.sha256()
        self.done = 0
        self.next_report = 0

    def read(self, n=-1):
        if self.cancel is not None and self.cancel.is_set():
            raise RegistryError("pull cancelled")
        data = self.resp.read(n if n and n > 0 else _CHUNK)
        if data:
            self.f.write(data)
            self.sha.update(data)
            self.done += len(data)
            if self.done >= self.next_report:
                self.next_report = self.done + (512 << 10)
                self.out.status(self.lid, "Downloading  " + _bar(self.done, self.total),
                                transient=True)
        return data

    def drain(self):
        while self.read(_CHUNK):
            pass


def _pull_layer(store, client, ref, scope, desc, diff_id, lid, out, cancel=None) -> None:
    mt = desc.get("mediaType", "")
    if "zstd" in mt and not zstd_available():
        raise RegistryError(f"{lid}: zstd compressed layers are not supported: install the "
                            "zstd program or the zstandard module")
    if desc.get("urls") and "foreign" in mt:
        raise RegistryError(f"{lid}: foreign layers are not supported")
    work = store.new_tmp()
    blob_tmp = os.path.join(work, "blob")
    try:
        with client.request("GET", ref.domain, f"/v2/{ref.path}/blobs/{desc['digest']}",
                            scope=scope) as resp, open(blob_tmp, "wb") as f:
            tee = _Tee(resp, f, int(desc.get("size") or 0), lid, out, cancel)

            def produce(sink):
                with decompressed(tee) as tar:
                    while True:
                        chunk = tar.read(_CHUNK)
                        sink(chunk)
                        if not chunk:
                            break
                tee.drain()  # bytes after the compressed stream still count in the digest

            pipe = ThreadedReader(produce)

            def check():
                pipe.close()
                f.flush()
                got = "sha256:" + tee.sha.hexdigest()
                out.status(lid, "Verifying Checksum")
                if got != desc["digest"]:
                    raise DigestMismatch(f"filesystem layer verification failed for digest "
                                         f"{desc['digest']}")
                out.status(lid, "Download complete")

            blob = {"digest": desc["digest"], "mediaType": mt or MEDIA_DOCKER_LAYER_GZIP,
                    "size": int(desc.get("size") or 0)}
            try:
                store.unpack_layer(pipe, expected_diff_id=diff_id, blob=blob,
                                   blob_tmp=blob_tmp, blob_check=check)
            except DigestMismatch as e:
                raise RegistryError(str(e)) from None
            except (LayerError, StoreError, CompressionError, OSError, EOFError) as e:
                raise RegistryError(f"failed to register layer: {e}") from None
            finally:
                pipe.close()
        out.status(lid, "Pull complete")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def pull_all_tags(store, client, ref, out, *, platform: str = "") -> None:
    with client.request("GET", ref.domain, f"/v2/{ref.path}/tags/list",
                        scope=f"repository:{ref.path}:pull") as resp:
        tags = json.loads(resp.read()).get("tags") or []
    for t in sorted(tags):
        pull(store, client, ref.with_tag(t), out, platform=platform)


# --- push ------------------------------------------------------------------------------

def _gzip_layer(store: ImageStore, diff_id: str) -> dict:
    """An uncompressed (imported) layer blob gets a gzip twin for the registry, made once."""
    info = store.layer_info(diff_id)
    blob = info["blob"]
    if "gzip" in blob["mediaType"] or "zstd" in blob["mediaType"]:
        return blob
    work = store.new_tmp()
    try:
        tmp = os.path.join(work, "blob.gz")
        sha = hashlib.sha256()
        with open(store.blob_path(blob["digest"]), "rb") as src, open(tmp, "wb") as raw:
            class _Hashing:
                def write(self, b):
                    sha.update(b)
                    return raw.write(b)

                def flush(self):
                    raw.flush()
            with gzip.GzipFile(fileobj=_Hashing(), mode="wb", mtime=0, compresslevel=6) as g:
                shutil.copyfileobj(src, g, _CHUNK)
        digest = "sha256:" + sha.hexdigest()
        new = {"digest": digest, "mediaType": MEDIA_DOCKER_LAYER_GZIP,
               "size": os.path.getsize(tmp)}
        store.commit_blob_file(tmp, digest)
        store.set_layer_blob(diff_id, new)
        return new
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _upload(client: Client, ref, scope: str, digest: str, path_or_bytes, lid, out) -> bool:
    """Upload one blob unless the registry has it; True if it was uploaded."""
    try:
        client.request("HEAD", ref.domain, f"/v2/{ref.path}/blobs/{digest}", scope=scope).close()
        if lid:
            out.status(lid, "Layer already exists")
        return False
    except RegistryError:
        pass
    if lid:
        out.status(lid, "Pushing", transient=True)
    with client.request("POST", ref.domain, f"/v2/{ref.path}/blobs/uploads/", scope=scope,
                        data=b"", ok=(202,)) as resp:
        loc = resp.headers.get("Location")
    if not loc:
        raise RegistryError("the registry gave no upload location")
    loc = urllib.parse.urljoin(client.base(ref.domain) + "/", loc)
    loc += ("&" if "?" in loc else "?") + urllib.parse.urlencode({"digest": digest})
    if isinstance(path_or_bytes, bytes):
        data = lambda: path_or_bytes  # noqa: E731
        size = len(path_or_bytes)
    else:
        size = os.path.getsize(path_or_bytes)
        data = lambda: open(path_or_bytes, "rb")  # noqa: E731
    client.request("PUT", ref.domain, loc, scope=scope, data=data, ok=(201,),
                   headers={"Content-Type": "application/octet-stream",
                            "Content-Length": str(size)}).close()
    if lid:
        out.status(lid, "Pushed")
    return True


def push(store: ImageStore, client: Client, ref: refs.Reference, out: Progress) -> str:
    """Push a local tag; returns the manifest digest."""
    image = store.resolve(str(ref))
    scope = f"repository:{ref.path}:pull,push"
    blobs = []
    for diff_id in image.layers:
        out.status(diff_id.split(":", 1)[1][:12], "Preparing")
    for diff_id in image.layers:
        blob = _gzip_layer(store, diff_id)
        lid = diff_id.split(":", 1)[1][:12]
        _upload(client, ref, scope, blob["digest"], store.blob_path(blob["digest"]), lid, out)
        blobs.append(blob)
    config_bytes = store.read_blob(image.id)
    _upload(client, ref, scope, image.id, config_bytes, None, out)
    docker = all(b["mediaType"] == MEDIA_DOCKER_LAYER_GZIP for b in blobs)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_DOCKER_MANIFEST if docker else MT_OCI_MANIFEST,
        "config": {"mediaType": MT_DOCKER_CONFIG if docker else MT_OCI_CONFIG,
                   "size": len(config_bytes), "digest": image.id},
        "layers": [{"mediaType": b["mediaType"] if docker else
                    b["mediaType"].replace(MEDIA_DOCKER_LAYER_GZIP, MEDIA_OCI_LAYER_GZIP),
                    "size": b["size"], "digest": b["digest"]} for b in blobs],
    }
    body = json.dumps(manifest, indent=3).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    client.request("PUT", ref.domain, f"/v2/{ref.path}/manifests/{ref.tag}", scope=scope,
                   data=body, ok=(201,),
                   headers={"Content-Type": manifest["mediaType"]}).close()
    store.put_blob(body)
    with store.locked() as db:
        db["digests"][f"{ref.name}@{digest}"] = image.id
    out.line(f"{ref.tag}: digest: {digest} size: {len(body)}")
    return digest
