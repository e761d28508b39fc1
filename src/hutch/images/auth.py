"""Registry credentials, kept as Docker keeps them: {"auths": {SERVER: {"auth": base64(user:pw)}}}
in <hutch root>/config.json (mode 0600), so each --root has its own logins."""
from __future__ import annotations

import base64
import json
import os

HUB_KEY = "https://index.docker.io/v1/"
_HUB_NAMES = ("", "docker.io", "index.docker.io", "registry-1.docker.io", HUB_KEY,
              "https://index.docker.io", "https://registry-1.docker.io")


def config_path(paths) -> str:
    return os.path.join(paths.root, "config.json")


def server_key(server: str) -> str:
    """Docker's key for a server: the Hub's legacy URL, else host[:port]."""
    s = server.strip()
    if s in _HUB_NAMES:
        return HUB_KEY
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    s = s.split("/", 1)[0]
    return HUB_KEY if s in _HUB_NAMES else s


def registry_host(key: str) -> str:
    """The reference domain for a server key (docker.io for the Hub)."""
    return "docker.io" if key == HUB_KEY else key


def _load(paths) -> dict:
    try:
        with open(config_path(paths)) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def _save(paths, cfg: dict) -> None:
    path = config_path(paths)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f, indent="\t")
        f.write("\n")
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


def store_credentials(paths, server: str, user: str, password: str) -> None:
    cfg = _load(paths)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    cfg.setdefault("auths", {})[server_key(server)] = {"auth": token}
    _save(paths, cfg)


def remove_credentials(paths, server: str) -> bool:
    cfg = _load(paths)
    if server_key(server) not in cfg.get("auths", {}):
        return False
    del cfg["auths"][server_key(server)]
    _save(paths, cfg)
    return True


def credentials(paths, domain: str) -> tuple[str, str] | None:
    """(user, password) saved for a reference's domain, if any."""
    entry = _load(paths).get("auths", {}).get(server_key(domain))
    if not entry or not entry.get("auth"):
        return None
    user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
    return user, pw
