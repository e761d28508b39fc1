"""Container networking: bridges, veth pairs, IPAM, NAT, published ports, embedded DNS.

Modules: netlink (a small rtnetlink client on the stdlib socket; pyroute2's import alone
costs ~140-190 ms here), ipam, ports (-p syntax, host port choice), iptables (HUTCH chains,
tagged rules), etcfiles (hosts/resolv.conf/hostname), dns (embedded DNS server), manager.

The engine's interface (all on `NetworkManager(paths)`; errors are NetworkError /
NetworkNotFound / PortAllocated from hutch.network.errors, str() = Docker's one line):

  net = NetworkManager(paths, *, bridge_name=None, bridge_subnet=None)
      Default bridge device: "hutch0" (172.17.0.0/16 when free, else the next free pool)
      for the default state root; "hutch<8 hex of root>" for any other root, so isolated
      roots never share leases. A non-default root's bridge exists only while containers
      use it (no bridge left behind by tests); hutch0 stays, as docker0 does.
  net.connect(cid, netns_path, network="bridge", *, ip=None, mac=None, aliases=(),
              publish=None, publish_all=False, exposed=(), hostname=None, name=None,
              dns=()) -> dict
      network: "bridge" | "host" (netns_path None) | "none" (lo up only) |
      "container:<id>" (nothing to do; returns empty settings) | a user network name/id.
      publish: Docker's HostConfig.PortBindings dict, or a list of -p strings.
      exposed: ["80/tcp", ...] (EXPOSE + --expose; -P publishes them all).
      name/aliases: what the embedded DNS answers on user networks (plus the short id).
      dns: the container's --dns: where the embedded DNS forwards other names.
      Returns the container's whole NetworkSettings (every network), Docker's shape;
      top-level IPAddress/Gateway/MacAddress are the default bridge's, as Docker's.
      Call once per network; the first gets the default route (and the ports).
  net.disconnect(cid, network=None, force=False, *, keep_links=None)
      None: every network (container removal). keep_links: a list that receives the
      host-side veth names instead of deleting them (~17 ms each in the kernel): a caller
      that drops the netns right after lets them die with it and calls
      NetworkManager.delete_links(names) once its waiters are answered.
  net.settings(cid) -> dict                        NetworkSettings again, from disk
  net.etc_files(cid, hostname, settings=None, *, dns=(), dns_search=(), dns_options=(),
                extra_hosts=(), network_mode="bridge", domainname="", directory=None)
      -> {"/etc/hosts": path, "/etc/resolv.conf": path, "/etc/hostname": path}
      Written to directory (default paths.containers/<cid>/) for the engine to bind-mount.
      network_mode "container:<full id>" returns that container's files.
  net.reconcile(living_ids) -> [cid]   after a crash: tear down endpoints of containers not
      living, restart a killed embedded DNS server; cheap, meant for every engine command
  net.create_network(name, driver=, subnet=, gateway=, labels=, options=) -> inspect dict
  net.remove_network(ref) -> name; net.prune() -> [names]; net.inspect(ref) -> dict
  net.list_networks() -> [dict]; net.find(ref) -> record; net.containers_of(cid) -> [names]
  net.destroy_all()   every endpoint, network, bridge, rule and the DNS server of this root

Published ports need no userland proxy: DNAT in nat PREROUTING and OUTPUT, route_localnet=1
on the bridge (127.0.0.1 works), masquerade of DNATed traffic coming back into its bridge
and hairpin mode on the bridge ports (a container reaching its own published port).

Helpers for flag parsing: hutch.network.ports.parse_publish(specs) -> (ExposedPorts,
PortBindings); hutch.network.etcfiles.parse_extra_host("name:ip").
"""
from __future__ import annotations


def __getattr__(name):
    if name == "NetworkManager":
        from hutch.network.manager import NetworkManager
        return NetworkManager
    raise AttributeError(name)


__all__ = ["NetworkManager"]
