"""Which networks a container is on, and `network connect` / `disconnect` (Docker's rules).

A container record keeps its networks in "HutchNetworks": an ordered list of
{"Name": network name, "IPAddress": --ip or "", "Aliases": [...]}, filled at create from
--network (bridge or a user network) and changed by connect/disconnect. Every start connects
each of them, in order: the first gets the default route and the published ports. Records
from before this field fall back to NetworkMode.

Lock order: the container's lock, then (inside NetworkManager) the networks lock.
"""
from __future__ import annotations

import os

from hutch.engine import errors, states

HOST_ERROR = "container cannot be disconnected from host network or connected to host network"
NONE_ERROR = ("container cannot be connected to multiple networks with one of the networks "
              "in private (none) mode")
SHARED_ERROR = ("container sharing network namespace with another container or host cannot "
                "be connected to any other network")


def mode_of(record: dict) -> str:
    mode = record["HostConfig"].get("NetworkMode") or "default"
    return "bridge" if mode == "default" else mode


def initial_networks(mode: str, ip: str | None, aliases) -> list[dict]:
    """The networks of a new container on `mode` (none, host and container: have none)."""
    mode = "bridge" if mode == "default" else mode
    if mode in ("host", "none") or mode.startswith("container:"):
        return []
    return [{"Name": mode, "IPAddress": ip or "", "Aliases": list(aliases or [])}]


def attached_networks(record: dict) -> list[dict]:
    nets = record.get("HutchNetworks")
    if nets is not None:
        return nets
    extra = record.get("HutchNetwork") or {}
    return initial_networks(mode_of(record), extra.get("ip"), extra.get("aliases"))


def connect_all(net, cid: str, netns: str, record: dict, hostname: str) -> dict:
    """Connect a starting container's netns to each of its networks; its NetworkSettings.
    A container with no network left (all disconnected) gets lo only, as Docker's."""
    config, hc = record["Config"], record["HostConfig"]
    mac = (record.get("HutchNetwork") or {}).get("mac")
    nets = attached_networks(record)
    if not nets:
        return net.connect(cid, netns, "none")
    settings = None
    for i, n in enumerate(nets):
        first = i == 0
        settings = net.connect(
            cid, netns, n["Name"], ip=n.get("IPAddress") or None, aliases=n.get("Aliases") or (),
            mac=mac if first else None,
            publish=(hc.get("PortBindings") or {}) if first else None,
            publish_all=bool(hc.get("PublishAllPorts")) and first,
            exposed=sorted(config.get("ExposedPorts") or {}) if first else (),
            hostname=hostname, name=record["Name"].lstrip("/"), dns=hc.get("Dns") or ())
    return settings


def _check_mode(record: dict, network_rec: dict) -> None:
    mode = mode_of(record)
    if mode == "host" or network_rec["Driver"] == "host":
        raise errors.Forbidden(HOST_ERROR)
    if mode.startswith("container:"):
        raise errors.Forbidden(SHARED_ERROR)
    if mode == "none" or network_rec["Driver"] == "null":
        raise errors.Forbidden(NONE_ERROR)


def connect(engine, ref: str, network: str, aliases=(), ip: str | None = None) -> None:
    """`network connect`: now (running, paused) and at every later start."""
    from hutch.network import NetworkManager
    from hutch.network.errors import NetworkError
    net = NetworkManager(engine.paths)
    with engine.store.locked(ref) as c:
        rec = net.find(network)
        _check_mode(c.record, rec)
        nets = list(attached_networks(c.record))
        if any(_same(net, n["Name"], rec) for n in nets):
            raise errors.Forbidden(f"endpoint with name {c.name} already exists in network "
                                   f"{rec['Name']}")
        entry = {"Name": rec["Name"], "IPAddress": ip or "", "Aliases": list(aliases or [])}
        if c.status in (states.RUNNING, states.PAUSED):
            netns = os.path.join(engine.store.run_dir(c.id), "netns")
            hc = c.record["HostConfig"]
            try:
                settings = net.connect(c.id, netns, rec["Id"], ip=ip or None,
                                       aliases=aliases or (), name=c.name,
                                       hostname=c.record["Config"].get("Hostname"),
                                       dns=hc.get("Dns") or ())
            except NetworkError as e:
                raise errors.InvalidParameter(str(e)) from None
            from hutch.engine.store import atomic_write
            atomic_write(c.path("network.json"), settings)
        elif rec["Driver"] == "bridge" and (ip or aliases):
            _validate_static(net, rec, ip, aliases)
        c.record["HutchNetworks"] = nets + [entry]
        c.save_record()


def disconnect(engine, ref: str, network: str, force: bool = False) -> None:
    """`network disconnect`: now (running, paused) and for every later start."""
    from hutch.network import NetworkManager
    from hutch.network.errors import NetworkError
    net = NetworkManager(engine.paths)
    with engine.store.locked(ref) as c:
        try:
            rec = net.find(network)
        except NetworkError:
            if not force:
                raise
            rec = None
        if rec is not None and (rec["Driver"] == "host" or mode_of(c.record) == "host"):
            raise errors.Forbidden(HOST_ERROR)
        nets = list(attached_networks(c.record))
        keep = [n for n in nets if not (rec is not None and _same(net, n["Name"], rec))
                and not (rec is None and n["Name"] == network)]
        if len(keep) == len(nets) and not force:
            raise errors.Forbidden(f"container {c.id} is not connected to network "
                                   f"{rec['Name'] if rec else network}")
        if rec is not None and c.status in (states.RUNNING, states.PAUSED):
            net.disconnect(c.id, rec["Id"], force=True)
            from hutch.engine.store import atomic_write
            atomic_write(c.path("network.json"), net.settings(c.id))
        c.record["HutchNetworks"] = keep
        c.save_record()


def _same(net, name: str, rec: dict) -> bool:
    try:
        return net.find(name)["Id"] == rec["Id"]
    except Exception:  # noqa: BLE001 - a network removed since: not this one
        return False


def _validate_static(net, rec: dict, ip, aliases) -> None:
    """What connect would refuse at start, refused now (Docker checks a stopped container
    against the network at connect time too)."""
    from hutch.network.manager import NetworkManager
    if not NetworkManager._is_user(rec):
        if aliases:
            raise errors.InvalidParameter("network-scoped alias is supported only for "
                                          "containers in user defined networks")
        raise errors.InvalidParameter("user specified IP address is supported on user "
                                      "defined networks only")
    if ip and not rec.get("userSubnet"):
        raise errors.InvalidParameter("user specified IP address is supported only when "
                                      "connecting to networks with user configured subnets")


def reconcile(engine) -> None:
    """Tear down network endpoints of containers that no longer exist (a crashed rm);
    cheap enough for every repair. Containers on disk keep theirs: a start may be under way."""
    from hutch.network import NetworkManager
    try:
        NetworkManager(engine.paths).reconcile(engine.store.ids())
    except Exception as e:  # noqa: BLE001 - repair goes on without it
        from hutch import trace
        trace.step("reconcile", f"network: {e}")
