"""The runtime-spec's config.json: load with clear errors, and the `spec` command's example."""
from __future__ import annotations

import os

from hutch import fastjson

SPEC_VERSION = "1.0.2"


def parse_json(text: str):
    """json.loads through json's own C scanner (hutch.fastjson: the json package's decoder
    imports `re`, ~5 ms on every runtime call). Errors are ValueErrors."""
    return fastjson.loads(text)


def dump_json(value) -> str:
    """json.dumps(value) (its defaults, no NaN) through json's C encoder, for the same
    reason."""
    return fastjson.dumps(value, allow_nan=False)


class ConfigError(ValueError):
    """config.json is invalid; str() names the field."""


def load_config(bundle: str) -> dict:
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(f"JSON specification file {path} not found") from None
    except OSError as e:
        raise ConfigError(f"open {path}: {e.strerror.lower()}") from None
    try:
        config = parse_json(data.decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: invalid JSON: {e}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: config must be a JSON object")
    version = config.get("ociVersion")
    if not isinstance(version, str) or not version.startswith("1."):
        raise ConfigError(f"ociVersion: unsupported version {version!r} (need 1.x)")
    return config


def example_config(rootless: bool = False) -> dict:
    """What `runc spec` writes: a shell in ./rootfs with Docker-like defaults."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    config = {
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps,
                             "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "hutch",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount",
                                                 "cgroup")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }
    if rootless:
        linux = config["linux"]
        linux["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")]
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.getuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getgid(), "size": 1}]
        del linux["resources"]
        config["mounts"] = [m for m in config["mounts"] if m["type"] != "cgroup"]
        config["mounts"].append({"destination": "/sys", "type": "none", "source": "/sys",
                                 "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
        config["mounts"] = [m for m in config["mounts"] if m["type"] != "sysfs"]
    return config
