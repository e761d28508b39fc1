"""NetworkManager: networks, endpoints (veth + lease + rules + DNS entry) and their repair.

On-disk state, under paths.networks, all changed under one fcntl lock (`lock`):
  <network id>/network.json    Docker's network record (what `network inspect` shows,
                               without Containers)
  <network id>/endpoints.json  {container id: endpoint}; an endpoint is the address lease
                               plus what was built for it (veth name, port mappings), written
                               *before* the kernel objects exist, so that a crash leaves a
                               record that reconcile() can tear down, never an orphan
  ports.json                   host port allocations {"tcp/0.0.0.0/8080": container id}
The three predefined networks (bridge, host, none) are records made on first use; the
bridge device of a network is (re)made when missing (after a reboot, say).
"""
from __future__ import annotations

import ipaddress
import os

# CPython's own sha256 (built in), not hashlib's: hashlib loads OpenSSL's libcrypto, ~2 ms
# and ~3.7 MiB of pages in the monitor host, which preloads what a start runs
from _sha256 import sha256

from hutch import fastjson
from hutch import trace
from hutch.network import etcfiles, ipam, iptables
from hutch.network.errors import NetworkError, NetworkNotFound
from hutch.network.netlink import Netlink
from hutch.paths import DEFAULT_ROOT, FileLock

PREDEFINED = ("bridge", "host", "none")
DEFAULT_BRIDGE = "hutch0"
DEFAULT_BRIDGE_SUBNET = "172.17.0.0/16"
HOST_LOCK = "/run/lock/hutch-network.lock"


# Imports stay small here: this module is on the path of every container start.
def _hex(nbytes: int) -> str:
    return os.urandom(nbytes).hex()


def _sha256(text: str) -> str:
    return sha256(text.encode()).hexdigest()


def _rmtree(path: str) -> None:
    import shutil
    shutil.rmtree(path, ignore_errors=True)


def _now() -> str:
    """RFC 3339 with nanoseconds in UTC, as Go prints time.Time in JSON."""
    import datetime
    t = datetime.datetime.now(datetime.timezone.utc)
    frac = f"{t.microsecond * 1000:09d}".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def _write_json(path: str, data) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        # no indent: only then does dumps use the C encoder (an indent takes the Python one,
        # 3x slower: 1.2 ms a write of the default bridge's endpoints at 200 containers)
        f.write(fastjson.dumps(data))
    os.replace(tmp, path)


def _read_json(path: str, default):
    try:
        with open(path) as f:
            return fastjson.load(f)
    except (FileNotFoundError, NotADirectoryError):
        return default


def host_mtu() -> int:
    """The MTU of the interface holding the host's default route (1500 when there is none)."""
    try:
        with open("/proc/net/route") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == "00000000" and fields[7] == "00000000":
                    with open(f"/sys/class/net/{fields[0]}/mtu") as m:
                        return int(m.read())
    except (OSError, ValueError, IndexError):
        pass
    return 1500


def _sysctl(path: str, value: str) -> None:
    trace.step("sysctl", f"{path} = {value}")
    with open(path, "w") as f:
        f.write(value)


def _check_bridge_options(options: dict) -> None:
    """The bridge driver's -o options hutch understands; values checked as Docker does."""
    for key in ("com.docker.network.bridge.enable_icc", "com.docker.network.bridge.enable_ip_masquerade"):
        if key in options and options[key] not in ("true", "false"):
            raise NetworkError(f"failed to parse {key} value: {options[key]}")
    name = options.get("com.docker.network.bridge.name")
    if name is not None and not (0 < len(name) <= 15 and "/" not in name and " " not in name):
        raise NetworkError(f"invalid bridge name {name}")
    mtu = options.get("com.docker.network.driver.mtu")
    if mtu is not None and not (mtu.isdigit() and 68 <= int(mtu) <= 65535):
        raise NetworkError(f"invalid MTU number: {mtu}")


def _netns_alive(path: str | None) -> bool:
    return bool(path) and os.path.exists(path)


class NetworkManager:
    """See hutch.network's docstring for the contract."""

    def __init__(self, paths, *, bridge_name: str | None = None, bridge_subnet: str | None = None):
        self.paths = paths
        self.dir = paths.networks
        if bridge_name is None:
            # One default bridge per state root, so isolated roots (tests) never share leases.
            bridge_name = DEFAULT_BRIDGE if paths.root == DEFAULT_ROOT else \
                "hutch" + _sha256(paths.root)[:8]
        self.bridge_name = bridge_name
        self.bridge_subnet = bridge_subnet

    # ---------------------------------------------------------------- storage
    def lock(self) -> FileLock:
        os.makedirs(self.dir, exist_ok=True)
        return FileLock(os.path.join(self.dir, "lock"))

    @staticmethod
    def host_lock() -> FileLock:
        """Host-wide: choosing a subnet and creating its bridge is one step for every hutch
        root, so two roots never take the same free subnet."""
        os.makedirs(os.path.dirname(HOST_LOCK), exist_ok=True)
        return FileLock(HOST_LOCK)

    def _records(self) -> list[dict]:
        out = []
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return out
        for d in names:
            rec = _read_json(os.path.join(self.dir, d, "network.json"), None)
            if rec:
                out.append(rec)
        return out

    def _endpoints(self, net_id: str) -> dict:
        return _read_json(os.path.join(self.dir, net_id, "endpoints.json"), {})

    def _save_endpoints(self, net_id: str, eps: dict) -> None:
        _write_json(os.path.join(self.dir, net_id, "endpoints.json"), eps)

    def _save_record(self, rec: dict) -> None:
        os.makedirs(os.path.join(self.dir, rec["Id"]), exist_ok=True)
        _write_json(os.path.join(self.dir, rec["Id"], "network.json"), rec)

    def _ports(self) -> dict:
        return _read_json(os.path.join(self.dir, "ports.json"), {})

    def _save_ports(self, table: dict) -> None:
        _write_json(os.path.join(self.dir, "ports.json"), table)

    def _ensure_predefined(self) -> list[dict]:
        recs = self._records()
        have = {r["Name"] for r in recs}
        if all(n in have for n in PREDEFINED):
            return recs
        with self.lock(), self.host_lock():
            recs = self._records()
            have = {r["Name"] for r in recs}
            for name in PREDEFINED:
                if name not in have:
                    rec = self._predefined_record(name, recs)
                    self._save_record(rec)
                    recs.append(rec)
        return recs

    def _predefined_record(self, name: str, recs: list[dict]) -> dict:
        rec = self._base_record(name, {"bridge": "bridge", "host": "host", "none": "null"}[name])
        if name == "bridge":
            subnet = self.bridge_subnet or self._free_subnet(recs, prefer=self._preferred_subnet())
            net = ipaddress.ip_network(subnet)
            rec["IPAM"] = {"Driver": "default", "Options": None,
                           "Config": [{"Subnet": str(net), "Gateway": ipam.default_gateway(net)}]}
            rec["Options"] = {
                "com.docker.network.bridge.default_bridge": "true",
                "com.docker.network.bridge.enable_icc": "true",
                "com.docker.network.bridge.enable_ip_masquerade": "true",
                "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                "com.docker.network.bridge.name": self.bridge_name,
                "com.docker.network.driver.mtu": str(host_mtu()),
            }
        return rec

    @staticmethod
    def _base_record(name: str, driver: str) -> dict:
        return {"Name": name, "Id": _hex(32), "Created": _now(), "Scope": "local",
                "Driver": driver, "EnableIPv6": False,
                "IPAM": {"Driver": "default", "Options": None, "Config": []},
                "Internal": False, "Attachable": False, "Ingress": False,
                "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Options": {}, "Labels": {}}

    def _preferred_subnet(self) -> str | None:
        return DEFAULT_BRIDGE_SUBNET if self.bridge_name == DEFAULT_BRIDGE else None

    @property
    def _ephemeral_bridge(self) -> bool:
        """A non-default root's default bridge exists only while containers use it, so that
        the roots of tests leave no bridge behind; hutch0 stays, as docker0 does."""
        return self.bridge_name != DEFAULT_BRIDGE

    def _free_subnet(self, recs: list[dict], prefer: str | None = None) -> str:
        in_use = [c["Subnet"] for r in recs for c in r["IPAM"]["Config"] if c.get("Subnet")]
        with Netlink() as nl:
            in_use += [r for r, _ in nl.routes()] + [a for _, a in nl.addresses()]
        if prefer and not any(ipaddress.ip_network(prefer).overlaps(ipaddress.ip_network(u, strict=False))
                              for u in in_use if not u.endswith("/0")):
            return prefer
        return str(ipam.pick_subnet(in_use))

    # ---------------------------------------------------------------- lookup
    def find(self, ref: str) -> dict:
        """A network by full id, name, or unique id prefix (Docker's order)."""
        recs = self._ensure_predefined()
        for r in recs:
            if r["Id"] == ref:
                return r
        for r in recs:
            if r["Name"] == ref:
                return r
        hits = [r for r in recs if ref and r["Id"].startswith(ref)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise NetworkError(f"network {ref} is ambiguous ({len(hits)} matches found based on ID prefix)")
        raise NetworkNotFound(ref)

    @staticmethod
    def bridge_of(rec: dict) -> str:
        return rec["Options"].get("com.docker.network.bridge.name") or "br-" + rec["Id"][:12]

    @staticmethod
    def _is_user(rec: dict) -> bool:
        return rec["Name"] not in PREDEFINED

    def inspect(self, ref: str) -> dict:
        """Docker's `network inspect` JSON for one network."""
        rec = dict(self.find(ref))
        containers = {}
        for cid, ep in self._endpoints(rec["Id"]).items():
            containers[cid] = {"Name": ep["name"], "EndpointID": ep["EndpointID"],
                               "MacAddress": ep.get("mac", ""),
                               "IPv4Address": f"{ep['ip']}/{ep['prefix']}" if ep.get("ip") else "",
                               "IPv6Address": ""}
        out = {k: rec[k] for k in ("Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM",
                                   "Internal", "Attachable", "Ingress", "ConfigFrom", "ConfigOnly")}
        out["Containers"] = containers
        out["Options"] = rec["Options"]
        out["Labels"] = rec["Labels"]
        return out

    def list_networks(self) -> list[dict]:
        """Every network, in `docker network ls` order (natural: net2 before net10)."""
        import re

        def natural(rec):
            return [(0, int(p), "") if p.isdigit() else (1, 0, p)
                    for p in re.split(r"(\d+)", rec["Name"]) if p]
        return [self.inspect(r["Id"]) for r in sorted(self._ensure_predefined(), key=natural)]

    def containers_of(self, cid: str) -> list[str]:
        """Names of the networks a container is connected to."""
        return [r["Name"] for r in self._records() if cid in self._endpoints(r["Id"])]

    # ---------------------------------------------------------------- networks
    def create_network(self, name: str, *, driver: str = "bridge", subnet: str | None = None,
                       gateway: str | None = None, labels: dict | None = None,
                       options: dict | None = None, internal: bool = False,
                       attachable: bool = False, ip_range: str | None = None,
                       aux_addresses: dict | None = None) -> dict:
        if driver in ("host", "null"):
            raise NetworkError(f"only one instance of \"{driver}\" network is allowed")
        if driver != "bridge":
            raise NetworkError(f"plugin \"{driver}\" not found")
        if (gateway or ip_range or aux_addresses) and not subnet:
            raise NetworkError("every ip-range or gateway must have a corresponding subnet")
        options = dict(options or {})
        _check_bridge_options(options)
        self._ensure_predefined()
        with self.lock(), self.host_lock():
            recs = self._records()
            if any(r["Name"] == name for r in recs):
                raise NetworkError(f"network with name {name} already exists")
            rec = self._base_record(name, "bridge")
            if subnet:
                net = ipam.parse_subnet(subnet)
                for r in recs:
                    for c in r["IPAM"]["Config"]:
                        if c.get("Subnet") and net.overlaps(ipaddress.ip_network(c["Subnet"])):
                            raise NetworkError("Pool overlaps with other one on this address space")
                gw = ipam.check_gateway(net, gateway) if gateway else ipam.default_gateway(net)
                cfg = {"Subnet": str(net)}
                if ip_range:
                    cfg["IPRange"] = ipam.check_in_subnet(net, ip_range, "range")
                cfg["Gateway"] = gw
                if aux_addresses:
                    cfg["AuxiliaryAddresses"] = {
                        k: ipam.check_in_subnet(net, v, "aux-address") for k, v in aux_addresses.items()}
                rec["IPAM"] = {"Driver": "default", "Options": {}, "Config": [cfg]}
                rec["userSubnet"] = True   # hutch's own field: --ip is allowed (not shown by inspect)
            else:
                net = ipaddress.ip_network(self._free_subnet(recs))
                rec["IPAM"] = {"Driver": "default", "Options": {},
                               "Config": [{"Subnet": str(net), "Gateway": ipam.default_gateway(net)}]}
            rec["Attachable"] = attachable
            rec["Internal"] = internal
            rec["Options"] = options
            rec["Labels"] = dict(labels or {})
            self._save_record(rec)
            try:
                self._make_bridge(rec)
            except BaseException:
                self._remove_network_objects(rec)
                _rmtree(os.path.join(self.dir, rec["Id"]))
                raise
        return self.inspect(rec["Id"])

    def _ensure_bridge(self, rec: dict) -> None:
        """The bridge device with its gateway address, up, plus NAT/forward rules; idempotent.

        The default bridge's subnet is chosen again when its device is made (unless fixed by
        bridge_subnet): while it had no device another root or the host may have taken it.
        A marker holding the device's ifindex says the whole setup finished: a bridge left
        half-made by a crash (no rules yet) is completed, one from before a reboot remade."""
        bridge = self.bridge_of(rec)
        with Netlink() as nl:
            link = nl.link(bridge)
        if link is not None and _read_json(self._ready_marker(rec), None) == link["index"]:
            return
        with self.host_lock():
            if link is None and rec["Name"] == "bridge" and not self.bridge_subnet:
                others = [r for r in self._records() if r["Id"] != rec["Id"]]
                current = rec["IPAM"]["Config"][0]["Subnet"]
                net = ipaddress.ip_network(self._free_subnet(others, prefer=current))
                if str(net) != current:
                    rec["IPAM"]["Config"] = [{"Subnet": str(net), "Gateway": ipam.default_gateway(net)}]
                    self._save_record(rec)
            self._make_bridge(rec)

    def _ready_marker(self, rec: dict) -> str:
        return os.path.join(self.dir, rec["Id"], "bridge.ready")

    def _make_bridge(self, rec: dict) -> None:
        bridge = self.bridge_of(rec)
        cfg = rec["IPAM"]["Config"][0]
        gateway = f"{cfg['Gateway']}/{ipaddress.ip_network(cfg['Subnet']).prefixlen}"
        with Netlink() as nl:
            if nl.link(bridge) is None:
                nl.add_bridge(bridge)
            idx = nl.index(bridge)
            if (idx, gateway) not in nl.addresses():
                nl.add_address(idx, gateway, bridge)
            nl.set_link(idx, up=True, what=bridge)
        _sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "1")
        _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
        opts = rec["Options"]
        iptables.setup_network(bridge, cfg["Subnet"], "hutch-net:" + rec["Id"][:12],
                               internal=rec["Internal"],
                               icc=opts.get("com.docker.network.bridge.enable_icc") != "false",
                               masquerade=opts.get("com.docker.network.bridge.enable_ip_masquerade")
                               != "false")
        _write_json(self._ready_marker(rec), idx)

    def _remove_network_objects(self, rec: dict) -> None:
        try:
            os.unlink(self._ready_marker(rec))
        except FileNotFoundError:
            pass
        iptables.remove_tagged("hutch-net:" + rec["Id"][:12])
        with Netlink() as nl:
            nl.delete_link(self.bridge_of(rec))

    def remove_network(self, ref: str) -> str:
        rec = self.find(ref)
        if not self._is_user(rec):
            raise NetworkError(f"{rec['Name']} is a pre-defined network and cannot be removed")
        with self.lock():
            if self._endpoints(rec["Id"]):
                raise NetworkError(f"error while removing network: network {rec['Name']} id "
                                   f"{rec['Id']} has active endpoints")
            self._remove_network_objects(rec)
            _rmtree(os.path.join(self.dir, rec["Id"]))
        return rec["Name"]

    def prune(self) -> list[str]:
        """Remove every user network without endpoints; their names."""
        removed = []
        for rec in self._ensure_predefined():
            if self._is_user(rec) and not self._endpoints(rec["Id"]):
                try:
                    removed.append(self.remove_network(rec["Id"]))
                except NetworkError:
                    pass   # gained an endpoint meanwhile
        return sorted(removed)

    def destroy_all(self) -> None:
        """Tear down every endpoint and network of this state root, the default bridge too
        (tests and uninstall; Docker keeps docker0, hutch keeps hutch0 otherwise)."""
        for rec in self._records():
            for cid in list(self._endpoints(rec["Id"])):
                self.disconnect(cid, rec["Id"])
        from hutch.network import dns as dnsmod
        dnsmod.stop(self.paths)
        with self.lock():
            for rec in self._records():
                if rec["Driver"] == "bridge":
                    self._remove_network_objects(rec)
                _rmtree(os.path.join(self.dir, rec["Id"]))

    # ---------------------------------------------------------------- endpoints
    def connect(self, cid: str, netns_path: str | None, network: str = "bridge", *,
                ip: str | None = None, mac: str | None = None, aliases=(),
                publish=None, publish_all: bool = False, exposed=(),
                hostname: str | None = None, name: str | None = None, dns=()) -> dict:
        """Attach a container's netns to a network; returns its whole NetworkSettings.

        `hostname` is accepted for the engine's convenience; names on a network are the
        container's `name`, its `aliases` and its short id, as with Docker."""
        if network.startswith("container:"):
            return self.settings(cid, netns_path)
        rec = self.find(network)
        name = (name or cid[:12]).lstrip("/")
        if rec["Driver"] == "host":
            self._add_plain_endpoint(rec, cid, name, None)
            return self.settings(cid, None)
        if rec["Driver"] == "null":
            self._loopback_up(netns_path)
            self._add_plain_endpoint(rec, cid, name, netns_path)
            return self.settings(cid, netns_path)
        if rec["Driver"] != "bridge":
            raise NetworkError(f"network {rec['Name']} has an unsupported driver {rec['Driver']}")
        if aliases and not self._is_user(rec):
            raise NetworkError("network-scoped alias is supported only for containers in user "
                               "defined networks")
        if ip and not self._is_user(rec):
            raise NetworkError("user specified IP address is supported on user defined networks only")
        if ip and not rec.get("userSubnet"):
            raise NetworkError("user specified IP address is supported only when connecting to "
                               "networks with user configured subnets")
        mac = ipam.check_mac(mac) if mac else None
        if publish is not None and not isinstance(publish, dict):
            from hutch.network import ports as portspec
            more_exposed, publish = portspec.parse_publish(publish)
            exposed = list(exposed) + [p for p in more_exposed if p not in exposed]
        with self.lock():
            rec = self.find(rec["Id"])
            self._ensure_bridge(rec)
            eps = self._endpoints(rec["Id"])
            if cid in eps:
                raise NetworkError(f"endpoint with name {name} already exists in network {rec['Name']}")
            others = [r for r in self._records() if r["Id"] != rec["Id"] and cid in self._endpoints(r["Id"])]
            cfg = rec["IPAM"]["Config"][0]
            net = ipaddress.ip_network(cfg["Subnet"])
            reserved = list((cfg.get("AuxiliaryAddresses") or {}).values())
            addr = ipam.allocate(net, cfg["Gateway"], [e["ip"] for e in eps.values()] + reserved, ip,
                                 cfg.get("IPRange"))
            ep = {"name": name, "EndpointID": _hex(32), "ip": addr,
                  "prefix": net.prefixlen, "gateway": cfg["Gateway"], "mac": mac or ipam.mac_for(addr),
                  "veth": "veth" + _hex(4)[:7], "netns": netns_path,
                  "aliases": list(aliases), "ipam_ip": ip or None,
                  "exposed": sorted(set(exposed)), "ports": [], "dns": list(dns)}
            if (publish or publish_all) and not rec["Internal"]:   # no way in: Docker ignores them
                from hutch.network import ports as portspec
                table = self._ports()
                # Other roots' containers hold ports too: their DNAT rules say which.
                taken = dict(iptables.published(iptables.save()), **table)
                ep["ports"] = portspec.choose(publish or {}, exposed, publish_all, taken,
                                              endpoint=f"{name} ({ep['EndpointID']})")
                for m in ep["ports"]:
                    table[portspec.key(m["proto"], m["host_ip"], m["host_port"])] = cid
            eps[cid] = ep
            self._save_endpoints(rec["Id"], eps)   # the lease, before the kernel objects
            if ep["ports"]:
                self._save_ports(table)
            try:
                # The default route goes through the first network that leads out.
                self._plumb(rec, ep, default_route=not rec["Internal"] and
                            not any(not r["Internal"] for r in others))
                if ep["ports"]:
                    iptables.restore(iptables.port_rules(self.bridge_of(rec), addr, ep["ports"],
                                                         "hutch:" + cid))
                if self._is_user(rec) and not any(self._is_user(r) for r in others):
                    from hutch.network import dns as dnsmod   # one DNS socket per container
                    if dnsmod.register(self.paths, cid, netns_path, dnsmod.upstreams(dns)):
                        self._register_dns(skip=cid)
            except BaseException:
                self._teardown(rec, cid, ep)
                raise
        return self.settings(cid, netns_path)

    def _register_dns(self, skip: str | None = None) -> None:
        """Hand a (re)started DNS server the sockets of every container on a user network:
        a server that died (kill -9) took them with it."""
        from hutch.network import dns as dnsmod
        done = {skip}
        for rec in self._records():
            if not self._is_user(rec):
                continue
            for cid, ep in self._endpoints(rec["Id"]).items():
                if cid not in done and _netns_alive(ep.get("netns")):
                    done.add(cid)
                    try:
                        dnsmod.register(self.paths, cid, ep["netns"], dnsmod.upstreams(ep.get("dns", ())))
                    except OSError as e:
                        trace.step("dns", f"re-register {cid[:12]} failed: {e}")

    def _add_plain_endpoint(self, rec: dict, cid: str, name: str, netns_path: str | None) -> None:
        with self.lock():
            eps = self._endpoints(rec["Id"])
            if cid in eps:
                raise NetworkError(f"endpoint with name {name} already exists in network {rec['Name']}")
            eps[cid] = {"name": name, "EndpointID": _hex(32), "ip": "", "prefix": 0,
                        "gateway": "", "mac": "", "veth": None, "netns": netns_path, "aliases": [],
                        "ipam_ip": None, "exposed": [], "ports": []}
            self._save_endpoints(rec["Id"], eps)

    @staticmethod
    def _disable_ipv6(netns_path: str) -> None:
        """No IPv6 in the container, as Docker on networks without --ipv6 (lo keeps only
        127.0.0.1). /proc/sys/net shows the netns of the thread that opens it."""
        from hutch.network.netlink import in_netns
        with in_netns(netns_path, "to turn IPv6 off"):
            for which in ("default", "all"):
                _sysctl(f"/proc/sys/net/ipv6/conf/{which}/disable_ipv6", "1")

    def _loopback_up(self, netns_path: str | None) -> None:
        if not netns_path:
            return
        self._disable_ipv6(netns_path)
        with Netlink(netns_path) as inner:
            inner.set_link(inner.index("lo"), up=True, what="lo")

    def _plumb(self, rec: dict, ep: dict, default_route: bool) -> None:
        """veth pair: host end on the bridge, the other end as ethN in the container."""
        bridge = self.bridge_of(rec)
        mtu = int(rec["Options"].get("com.docker.network.driver.mtu") or host_mtu())
        self._disable_ipv6(ep["netns"])
        with Netlink(ep["netns"]) as inner:
            taken = {l["name"] for l in inner.links()}
            ifname = next(f"eth{i}" for i in range(len(taken) + 1) if f"eth{i}" not in taken)
            ep["ifname"] = ifname
            with Netlink() as nl:
                fd = os.open(ep["netns"], os.O_RDONLY | os.O_CLOEXEC)
                try:
                    nl.add_veth(ep["veth"], ifname, peer_netns_fd=fd, peer_mac=ep["mac"], mtu=mtu,
                                master=nl.index(bridge))
                finally:
                    os.close(fd)
            # Hairpin, as Docker without its userland proxy: a container reaching its own
            # published port through the host is DNATed back out of the port it came in by.
            _sysctl(f"/sys/class/net/{ep['veth']}/brport/hairpin_mode", "1")
            idx = inner.index(ifname)
            inner.add_address(idx, f"{ep['ip']}/{ep['prefix']}", ifname)
            inner.set_link(idx, up=True, what=ifname)
            inner.set_link(inner.index("lo"), up=True, what="lo")
            if default_route:
                inner.add_default_route(ep["gateway"], idx)
            inner.wait_oper_up(ifname)
        with Netlink() as nl:
            nl.wait_oper_up(ep["veth"])
            nl.wait_oper_up(bridge)

    def _teardown(self, rec: dict, cid: str, ep: dict, keep_links: list | None = None) -> None:
        """Undo one endpoint; every step tolerates what a crash may have left half-done.
        keep_links: a list that takes the veth instead of deleting it now (see disconnect)."""
        if ep.get("ports"):
            iptables.remove_tagged("hutch:" + cid)
            table = self._ports()
            for k in [k for k, v in table.items() if v == cid]:
                del table[k]
            self._save_ports(table)
        if ep.get("veth") and keep_links is not None:
            keep_links.append(ep["veth"])
        elif ep.get("veth"):
            with Netlink() as nl:
                nl.delete_link(ep["veth"])
        eps = self._endpoints(rec["Id"])
        eps.pop(cid, None)
        self._save_endpoints(rec["Id"], eps)
        if not eps and rec["Name"] == "bridge" and self._ephemeral_bridge:
            self._remove_network_objects(rec)
        if self._is_user(rec):
            from hutch.network import dns as dnsmod
            still_user = any(self._is_user(r) and cid in self._endpoints(r["Id"]) for r in self._records())
            if not still_user:
                dnsmod.unregister(self.paths, cid)

    def disconnect(self, cid: str, network: str | None = None, force: bool = False, *,
                   keep_links: list | None = None) -> None:
        """Detach from one network, or from all (network=None) when a container is removed.

        keep_links (all networks only): a list that receives the veth names instead of
        deleting them here. Deleting a veth takes the kernel ~17 ms (unregister_netdevice);
        an engine that is about to drop the netns lets the kernel delete the pairs with it,
        and calls delete_links() after it has answered its waiters. The leases and rules
        are gone at once either way."""
        if network is not None:
            rec = self.find(network)
            with self.lock():
                ep = self._endpoints(rec["Id"]).get(cid)
                if ep is None:
                    if force:
                        return
                    raise NetworkError(f"container {cid} is not connected to network {rec['Name']}")
                self._teardown(rec, cid, ep)
            return
        with self.lock():
            for rec in self._records():
                ep = self._endpoints(rec["Id"]).get(cid)
                if ep is not None:
                    self._teardown(rec, cid, ep, keep_links)

    @staticmethod
    def delete_links(names) -> None:
        """Delete host-side veths kept by disconnect(keep_links=...); gone ones are fine."""
        if not names:
            return
        with Netlink() as nl:
            for name in names:
                nl.delete_link(name)

    def reconcile(self, living_ids) -> list[str]:
        """After a crash: tear down every endpoint whose container is not living (and a test
        root's unused default bridge); the torn down container ids."""
        living = set(living_ids)
        dead = []
        with self.lock():
            for rec in self._records():
                for cid, ep in list(self._endpoints(rec["Id"]).items()):
                    if cid not in living:
                        self._teardown(rec, cid, ep)
                        dead.append(cid)
                if rec["Name"] == "bridge" and self._ephemeral_bridge and not self._endpoints(rec["Id"]):
                    with Netlink() as nl:
                        unused = nl.link(self.bridge_of(rec)) is not None
                    if unused:
                        self._remove_network_objects(rec)
            from hutch.network import dns as dnsmod
            on_user = any(self._is_user(r) and self._endpoints(r["Id"]) for r in self._records())
            if on_user and not dnsmod.alive(self.paths):
                self._register_dns()
        return sorted(set(dead))

    # ---------------------------------------------------------------- views
    def settings(self, cid: str, netns_path: str | None = None) -> dict:
        """Docker's NetworkSettings for a container, from its endpoints."""
        networks = {}
        top = {"IPAddress": "", "IPPrefixLen": 0, "Gateway": "", "MacAddress": "", "EndpointID": ""}
        exposed: list[str] = []
        mappings: list[dict] = []
        for rec in self._records():
            ep = self._endpoints(rec["Id"]).get(cid)
            if ep is None:
                continue
            netns_path = netns_path or ep.get("netns")
            aliases = ([cid[:12]] + ep["aliases"]) if self._is_user(rec) else None
            networks[rec["Name"]] = {
                "IPAMConfig": {"IPv4Address": ep["ipam_ip"]} if ep.get("ipam_ip") else None,
                "Links": None, "Aliases": aliases, "NetworkID": rec["Id"],
                "EndpointID": ep["EndpointID"], "Gateway": ep["gateway"], "IPAddress": ep["ip"],
                "IPPrefixLen": ep["prefix"], "IPv6Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0, "MacAddress": ep["mac"], "DriverOpts": None,
            }
            if rec["Name"] == "bridge":
                top = {"IPAddress": ep["ip"], "IPPrefixLen": ep["prefix"], "Gateway": ep["gateway"],
                       "MacAddress": ep["mac"], "EndpointID": ep["EndpointID"]}
            exposed += [p for p in ep.get("exposed", []) if p not in exposed]
            mappings += ep.get("ports", [])
        from hutch.network.ports import ports_field
        return {
            "Bridge": "", "SandboxID": _sha256(f"sandbox:{cid}"),
            "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports_field(exposed, mappings), "SandboxKey": netns_path or "",
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": top["EndpointID"], "Gateway": top["Gateway"], "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPAddress": top["IPAddress"], "IPPrefixLen": top["IPPrefixLen"],
            "IPv6Gateway": "", "MacAddress": top["MacAddress"], "Networks": networks,
        }

    def etc_files(self, cid: str, hostname: str, settings: dict | None = None, *, dns=(),
                  dns_search=(), dns_options=(), extra_hosts=(), network_mode: str = "bridge",
                  domainname: str = "", directory: str | None = None) -> dict[str, str]:
        """Write the container's hosts/hostname/resolv.conf; {"/etc/hosts": host path, ...}."""
        if network_mode.startswith("container:"):
            other = os.path.join(self.paths.containers, network_mode.split(":", 1)[1])
            return {t: os.path.join(other, os.path.basename(t))
                    for t in ("/etc/hosts", "/etc/resolv.conf", "/etc/hostname")}
        directory = directory or os.path.join(self.paths.containers, cid)
        settings = settings if settings is not None else self.settings(cid)
        host_text = etcfiles.read_host_resolv()
        if network_mode == "host":
            try:
                with open("/etc/hosts") as f:
                    hosts = f.read()
            except OSError:
                hosts = etcfiles.DEFAULT_HOSTS
            hosts += "".join(f"{ip}\t{n}\n" for n, ip in map(etcfiles.parse_extra_host, extra_hosts))
            resolv = etcfiles.resolv_conf(host_text, dns=dns, dns_search=dns_search,
                                          dns_options=dns_options, host_mode=True)
        else:
            nets = settings.get("Networks") or {}
            ip = next((n["IPAddress"] for n in nets.values() if n.get("IPAddress")), None)
            embedded = any(name not in PREDEFINED for name in nets)
            hosts = etcfiles.hosts(hostname, ip, extra_hosts, domainname)
            resolv = etcfiles.resolv_conf(host_text, dns=dns, dns_search=dns_search,
                                          dns_options=dns_options, embedded=embedded)
        return etcfiles.write_files(directory, {"/etc/hosts": hosts, "/etc/resolv.conf": resolv,
                                                "/etc/hostname": hostname + "\n"})
