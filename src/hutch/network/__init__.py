"""Container networking: bridges, veth pairs, IPAM, NAT, published ports, embedded DNS.

The engine's interface (all on `NetworkManager(paths)`; errors are NetworkError /
NetworkNotFound / PortAllocated from hutch.network.errors, str() = Docker's one line):

  net = NetworkManager(paths, *, bridge_name=None, bridge_subnet=None)
      Default bridge device: "hutch0" (172.17.0.0/16 when free) for the default state root,
      "hutch<8 hex of root>" for any other root, so isolated roots never share leases.
  net.connect(cid, netns_path, network="bridge", *, ip=None, mac=None, aliases=(),
              publish=None, publish_all=False, exposed=(), hostname=None, name=None,
              dns=()) -> dict
      network: "bridge" | "host" | "none" | "container:<id>" | a user network (name/id).
      publish: Docker's HostConfig.PortBindings dict, or a list of -p strings.
      exposed: ["80/tcp", ...] (the image's EXPOSE + --expose; -P publishes them all).
      dns: the container's --dns (what the embedded DNS forwards to on user networks).
      Returns the container's whole NetworkSettings (all its networks), Docker's shape.
      Call once per network; only the first call adds the default route.
  net.disconnect(cid, network=None, force=False)   None: every network (container removal)
  net.settings(cid) -> dict                        NetworkSettings again, from disk
  net.etc_files(cid, hostname, settings=None, *, dns=(), dns_search=(), dns_options=(),
                extra_hosts=(), network_mode="bridge", domainname="", directory=None)
      -> {"/etc/hosts": path, "/etc/resolv.conf": path, "/etc/hostname": path}
      Written to directory (default paths.containers/<cid>/) for the engine to bind-mount.
      network_mode "container:<full id>" returns that container's files.
  net.reconcile(living_ids) -> [cid]   tear down endpoints of containers not living
  net.create_network(name, driver=, subnet=, gateway=, labels=, options=) -> inspect dict
  net.remove_network(ref) -> name; net.prune() -> [names]; net.inspect(ref) -> dict
  net.list_networks() -> [dict]; net.find(ref) -> record; net.containers_of(cid) -> [names]
  net.destroy_all()   every endpoint, network, bridge and rule of this root (tests)

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
