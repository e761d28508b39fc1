"""`hutch network create|ls|inspect|rm|prune|connect|disconnect`, as Docker prints them.

Thin: parse flags, call hutch.network's NetworkManager (connect/disconnect go through the
engine, which owns the container and its netns), print Docker's output. Errors exit 1, as
Docker's CLI does when the daemon refuses.
"""
from __future__ import annotations

import json
import re
import sys

from hutch.cli import common
from hutch.cli.common import (command, confirm, daemon_err, err, key_values, print_rows,
                              template_error)
from hutch.cli.flags import Command, CommandLineError, Flag


def _manager(ctx):
    from hutch.network.manager import NetworkManager
    return NetworkManager(ctx.paths)


# --- create ----------------------------------------------------------------------------

CREATE = Command("network create", "[OPTIONS] NETWORK", "Create a network", [
    Flag("attachable", None, "bool", False, "Enable manual container attachment"),
    Flag("aux-address", None, "list", [], "Auxiliary IPv4 or IPv6 addresses used by Network driver"),
    Flag("config-from", None, "string", "", "The network from which to copy the configuration"),
    Flag("config-only", None, "bool", False, "Create a configuration only network"),
    Flag("driver", "d", "string", "bridge", "Driver to manage the Network"),
    Flag("gateway", None, "strings", [], "IPv4 or IPv6 Gateway for the master subnet"),
    Flag("ingress", None, "bool", False, "Create swarm routing-mesh network"),
    Flag("internal", None, "bool", False, "Restrict external access to the network"),
    Flag("ip-range", None, "strings", [], "Allocate container ip from a sub-range"),
    Flag("ipam-driver", None, "string", "default", "IP Address Management Driver"),
    Flag("ipam-opt", None, "list", [], "Set IPAM driver specific options"),
    Flag("ipv6", None, "bool", False, "Enable IPv6 networking"),
    Flag("label", None, "list", [], "Set metadata on a network"),
    Flag("opt", "o", "list", [], "Set driver specific options"),
    Flag("scope", None, "string", "", "Control the network's scope"),
    Flag("subnet", None, "strings", [], "Subnet in CIDR format that represents a network segment"),
], min_args=1, max_args=1)

_REFUSED = {"config-from": "--config-from", "config-only": "--config-only", "ingress": "--ingress",
            "ipam-opt": "--ipam-opt", "ipv6": "--ipv6"}


@command
def cmd_network_create(ctx, argv) -> int:
    opts, args = CREATE.parse(argv)
    for flag, text in _REFUSED.items():
        if flag in opts.changed:
            return err(f"hutch: {text} is not supported by hutch networks")
    if opts["ipam-driver"] not in ("default", ""):
        return daemon_err(f"plugin \"{opts['ipam-driver']}\" not found")
    if opts["scope"] not in ("", "local"):
        return daemon_err(f"hutch supports only local scope networks, not \"{opts['scope']}\"")
    if len(opts["subnet"]) > 1 or len(opts["gateway"]) > 1 or len(opts["ip-range"]) > 1:
        return err("hutch: one --subnet, --gateway and --ip-range per network are supported")
    if (opts["gateway"] or opts["ip-range"] or opts["aux-address"]) and not opts["subnet"]:
        return err("every ip-range or gateway must have a corresponding subnet")
    from hutch.network.errors import NetworkError
    try:
        info = _manager(ctx).create_network(
            args[0], driver=opts["driver"], subnet=(opts["subnet"] or [None])[0],
            gateway=(opts["gateway"] or [None])[0], labels=key_values(opts["label"]),
            options=key_values(opts["opt"]), attachable=opts["attachable"],
            internal=opts["internal"], ip_range=(opts["ip-range"] or [None])[0],
            aux_addresses=key_values(opts["aux-address"]))
    except NetworkError as e:
        return daemon_err(str(e))
    print(info["Id"])
    return 0


# --- ls --------------------------------------------------------------------------------

LS = Command("network ls", "[OPTIONS]", "List networks", [
    Flag("filter", "f", "list", [], "Provide filter values (e.g. 'driver=bridge')"),
    Flag("format", None, "string", "", "Pretty-print networks using a Go template"),
    Flag("no-trunc", None, "bool", False, "Do not truncate the output"),
    Flag("quiet", "q", "bool", False, "Only display network IDs"),
], max_args=0, aliases=["list"])

LS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
LS_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
              "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}
FILTERS = ("driver", "id", "label", "name", "scope", "type", "dangling")


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """Raises CommandLineError (no `=`), KeyError (a filter networks do not have)."""
    out = common.parse_filters(items)
    for k in out:
        if k not in FILTERS:
            raise KeyError(k)
    return out


def matches(net: dict, filters: dict[str, list[str]]) -> bool:
    """Docker's network filters: name/id are regular expressions, the rest exact."""
    from hutch.network.manager import PREDEFINED
    for key, values in filters.items():
        if key == "name" and not any(re.search(v, net["Name"]) for v in values):
            return False
        if key == "id" and not any(re.search(v, net["Id"]) for v in values):
            return False
        if key == "driver" and net["Driver"] not in values:
            return False
        if key == "scope" and net["Scope"] not in values:
            return False
        if key == "label":
            labels = net.get("Labels") or {}
            if not all((v.split("=", 1)[0] in labels and ("=" not in v or
                        labels[v.split("=", 1)[0]] == v.split("=", 1)[1])) for v in values):
                return False
        builtin = net["Name"] in PREDEFINED
        if key == "type":
            for v in values:
                if v not in ("custom", "builtin"):
                    raise ValueError(f"invalid filter: 'type'='{v}'")
            if ("builtin" if builtin else "custom") not in values:
                return False
        if key == "dangling":
            want = values[-1].lower() in ("true", "1")
            if want != (not builtin and not net["Containers"]):
                return False
    return True


def _created_at(created: str) -> str:
    """Go's time.String() of the network's UTC creation time ("2006-01-02 15:04:05.999 +0000 UTC")."""
    return created.replace("T", " ").rstrip("Z") + " +0000 UTC"


@command
def cmd_network_ls(ctx, argv) -> int:
    opts, _ = LS.parse(argv)
    try:
        filters = parse_filters(opts["filter"])
        nets = [n for n in _manager(ctx).list_networks() if matches(n, filters)]
    except KeyError as e:
        return daemon_err(f"Invalid filter '{e.args[0]}'")
    except (CommandLineError, ValueError) as e:
        return daemon_err(str(e))
    trunc = (lambda s: s) if opts["no-trunc"] else (lambda s: s[:12])
    if opts["quiet"]:
        sys.stdout.write("".join(trunc(n["Id"]) + "\n" for n in nets))
        return 0
    # Keys in Go's sorted order: `{{json .}}` prints them as Docker does.
    rows = [{"CreatedAt": _created_at(n["Created"]), "Driver": n["Driver"], "ID": trunc(n["Id"]),
             "IPv6": str(n["EnableIPv6"]).lower(), "Internal": str(n["Internal"]).lower(),
             "Labels": ",".join(f"{k}={v}" for k, v in (n["Labels"] or {}).items()),
             "Name": n["Name"], "Scope": n["Scope"]} for n in nets]
    return print_rows(opts["format"] or LS_TABLE, rows, LS_HEADERS, LS_TABLE[6:])


# --- inspect ---------------------------------------------------------------------------

INSPECT = Command("network inspect", "[OPTIONS] NETWORK [NETWORK...]",
                  "Display detailed information on one or more networks", [
                      Flag("format", "f", "string", "", "Format the output using the given Go template"),
                      Flag("verbose", "v", "bool", False, "Verbose output for diagnostics"),
                  ], min_args=1)


@command
def cmd_network_inspect(ctx, argv) -> int:
    opts, args = INSPECT.parse(argv)
    from hutch.network.errors import NetworkError, NetworkNotFound
    nm = _manager(ctx)
    found, status = [], 0
    for ref in args:
        try:
            found.append(nm.inspect(ref))
        except NetworkNotFound:
            status = err(f"Error: No such network: {ref}")
        except NetworkError as e:
            status = daemon_err(str(e))
    if opts["format"]:
        from hutch.cli.gotemplate import TemplateError, render
        try:
            sys.stdout.write("".join(render(opts["format"], n) + "\n" for n in found))
        except TemplateError as e:
            return template_error(e)
    else:
        sys.stdout.write(json.dumps(found, indent=4) + "\n")
    return status


# --- rm, prune -------------------------------------------------------------------------

RM = Command("network rm", "NETWORK [NETWORK...]", "Remove one or more networks", [],
             min_args=1, aliases=["remove"])


@command
def cmd_network_rm(ctx, argv) -> int:
    _, args = RM.parse(argv)
    from hutch.network.errors import NetworkError, NetworkNotFound
    nm = _manager(ctx)
    status = 0
    for ref in args:
        try:
            nm.remove_network(ref)
            print(ref)
        except NetworkNotFound:
            status = err(f"Error: No such network: {ref}")
        except NetworkError as e:
            status = daemon_err(str(e))
    return status


PRUNE = Command("network prune", "[OPTIONS]", "Remove all unused networks", [
    Flag("filter", None, "list", [], "Provide filter values (e.g. 'until=<timestamp>')"),
    Flag("force", "f", "bool", False, "Do not prompt for confirmation"),
], max_args=0)


@command
def cmd_network_prune(ctx, argv) -> int:
    opts, _ = PRUNE.parse(argv)
    if opts["filter"]:
        return err("hutch: network prune --filter is not supported")
    if not opts["force"]:
        if not confirm("WARNING! This will remove all custom networks not used by at least "
                       "one container."):
            return 0
    removed = _manager(ctx).prune()
    if removed:
        sys.stdout.write("Deleted Networks:\n" + "".join(n + "\n" for n in removed))
    return 0


# --- connect, disconnect (through the engine) ------------------------------------------

CONNECT = Command("network connect", "[OPTIONS] NETWORK CONTAINER", "Connect a container to a network", [
    Flag("alias", None, "strings", [], "Add network-scoped alias for the container"),
    Flag("driver-opt", None, "strings", [], "driver options for the network"),
    Flag("ip", None, "string", "", "IPv4 address (e.g., 172.30.100.104)"),
    Flag("ip6", None, "string", "", "IPv6 address (e.g., 2001:db8::33)"),
    Flag("link", None, "list", [], "Add link to another container"),
    Flag("link-local-ip", None, "strings", [], "Add a link-local address for the container"),
], min_args=2, max_args=2)

DISCONNECT = Command("network disconnect", "[OPTIONS] NETWORK CONTAINER",
                     "Disconnect a container from a network", [
                         Flag("force", "f", "bool", False, "Force the container to disconnect from a network"),
                     ], min_args=2, max_args=2)


def _engine_call(ctx, method: str, *args, **kw) -> int:
    """The engine owns the container (its netns, its record); it calls NetworkManager."""
    from hutch.engine import errors as engine_errors
    from hutch.engine.containers import Engine
    from hutch.network.errors import NetworkError
    engine = Engine(ctx.paths)
    fn = getattr(engine, method, None)
    if fn is None:
        return err(f"hutch: network {method.split('_')[-1]} needs Engine.{method} (not available yet)")
    try:
        fn(*args, **kw)
    except (NetworkError, engine_errors.EngineError) as e:
        return daemon_err(str(e))
    return 0


@command
def cmd_network_connect(ctx, argv) -> int:
    opts, args = CONNECT.parse(argv)
    for flag in ("ip6", "link-local-ip", "driver-opt", "link"):
        if flag in opts.changed:
            return err(f"hutch: --{flag} is not supported by hutch networks")
    return _engine_call(ctx, "network_connect", args[1], args[0], aliases=opts["alias"],
                        ip=opts["ip"] or None)


@command
def cmd_network_disconnect(ctx, argv) -> int:
    opts, args = DISCONNECT.parse(argv)
    return _engine_call(ctx, "network_disconnect", args[1], args[0], force=opts["force"])
