"""What `inspect` and `ps` show of a container, in Docker's layout (data, not text)."""
from __future__ import annotations

import os

from hutch.engine import states
from hutch.engine.store import Container, read_json

STATE_KEYS = ("Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid",
              "ExitCode", "Error", "StartedAt", "FinishedAt")


def docker_state(c: Container) -> dict:
    st = {k: c.state[k] for k in STATE_KEYS}
    if st["Status"] == states.RESTARTING:
        st["Running"] = True
        st["Restarting"] = True
    return st


def network_settings(c: Container) -> dict:
    saved = read_json(c.path("network.json"))
    running = c.status in (states.RUNNING, states.PAUSED, states.RESTARTING)
    if saved and running:
        return saved
    empty = {
        "Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": "",
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "",
        "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "",
        "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "", "Networks": {},
    }
    # not running: the networks its next start connects (network connect/disconnect
    # change them), without addresses
    from hutch.engine import networking
    names = [n["Name"] for n in networking.attached_networks(c.record)]
    mode = networking.mode_of(c.record)
    if not names and mode in ("none", "host"):
        names = [mode]
    known = (saved or {}).get("Networks") or {}
    nets = {}
    for entry in networking.attached_networks(c.record) or [{"Name": n} for n in names]:
        name = entry["Name"]
        base = known.get(name) or {}
        nets[name] = {   # Docker's key order
            "IPAMConfig": base.get("IPAMConfig") or (
                {"IPv4Address": entry["IPAddress"]} if entry.get("IPAddress") else None),
            "Links": None, "Aliases": base.get("Aliases") or entry.get("Aliases") or None,
            "NetworkID": base.get("NetworkID", ""), "EndpointID": "", "Gateway": "",
            "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}
    empty["Networks"] = nets
    return empty


def mounts(c: Container) -> list[dict]:
    if not c.record.get("HutchMounts"):
        return []
    from hutch.engine import volumes
    return volumes.MountPlan.from_record(c.record["HutchMounts"]).docker_mounts()


def graph_driver(paths, c: Container) -> dict:
    snap = os.path.join(paths.images, "snapshots", c.id)
    info = read_json(os.path.join(snap, "snapshot.json")) or {}
    lower = ":".join(os.path.join(paths.images, "layers", layer.split(":")[-1], "diff")
                     for layer in reversed(info.get("layers") or []))
    return {"Data": {"LowerDir": lower, "MergedDir": os.path.join(snap, "merged"),
                     "UpperDir": os.path.join(snap, "upper"), "WorkDir": os.path.join(snap, "work")},
            "Name": "overlay2"}


def inspect(paths, c: Container, size: bool = False) -> dict:
    r = c.record
    out = {
        "Id": c.id, "Created": r["Created"], "Path": r["Path"], "Args": r["Args"],
        "State": docker_state(c), "Image": r["Image"],
        "ResolvConfPath": r["ResolvConfPath"], "HostnamePath": r["HostnamePath"],
        "HostsPath": r["HostsPath"], "LogPath": r["LogPath"], "Name": "/" + c.name,
        "RestartCount": c.state["RestartCount"], "Driver": "overlay2", "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "ExecIDs": None, "HostConfig": r["HostConfig"],
        "GraphDriver": graph_driver(paths, c), "Mounts": mounts(c),
        "Config": r["Config"], "NetworkSettings": network_settings(c),
    }
    if size:
        rw, root = sizes(paths, c)
        out["SizeRw"] = rw
        out["SizeRootFs"] = root
    return out


def sizes(paths, c: Container) -> tuple[int, int]:
    """(SizeRw: the container's upper dir, SizeRootFs: upper + image layers)."""
    snap = os.path.join(paths.images, "snapshots", c.id)
    rw = _du(os.path.join(snap, "upper"))
    info = read_json(os.path.join(snap, "snapshot.json")) or {}
    image = sum(_du(os.path.join(paths.images, "layers", layer.split(":")[-1], "diff"))
                for layer in info.get("layers") or [])
    return rw, rw + image


def _du(path: str) -> int:
    total = 0
    seen = set()
    for root, dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total
