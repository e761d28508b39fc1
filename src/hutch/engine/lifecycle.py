"""What happens to a container's kernel objects at each start and exit.

Shared by the monitor (which starts and cleans up its container) and by the commands that
repair a container whose monitor died. Each step calls the module that owns it: images
(rootfs), network (netns, /etc files), runtime (init, cgroup), cgroups (OOM count).
"""
from __future__ import annotations

import os

from hutch import fastjson, trace
from hutch.engine.store import Store, atomic_write, read_json


def cgroups_path(cid: str) -> str:
    return f"/hutch/{cid}"


def network_mode(record: dict) -> str:
    mode = record["HostConfig"].get("NetworkMode") or "default"
    return "bridge" if mode == "default" else mode


def prepare_bundle(paths, cid: str, record: dict) -> str:
    """Mount the rootfs, make and connect the network namespace, write the bundle's
    config.json for this start; returns the bundle dir.

    The netns is made here, before the runtime's create (as Docker's sandbox is), so the
    network's address is known when /etc/hosts is written and bind-mounted.
    """
    from hutch.engine import spec as specmod
    from hutch.images.store import ImageStore
    store = Store(paths)
    run_dir = store.run_dir(cid)
    os.makedirs(run_dir, exist_ok=True)
    images = ImageStore(paths.images, paths.containers)
    rootfs = images.mount_rootfs(cid)
    spec = read_json(os.path.join(store.dir(cid), "oci.json"))
    config = record["Config"]
    hc = record["HostConfig"]
    hostname = config.get("Hostname") or cid[:12]
    mode = network_mode(record)
    netns = None
    from hutch.network import NetworkManager
    net = NetworkManager(paths)
    if mode == "host":
        spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                       if n["type"] != "network"]
        settings = net.connect(cid, None, "host")
    elif mode.startswith("container:"):
        other = store.load(store.resolve(mode.split(":", 1)[1]))
        netns = f"/proc/{other.state['Pid']}/ns/net"
        settings = net.connect(cid, netns, f"container:{other.id}")
        mode = f"container:{other.id}"
    else:
        from hutch.engine import networking
        netns = make_netns(os.path.join(run_dir, "netns"))
        settings = networking.connect_all(net, cid, netns, record, hostname)
    atomic_write(os.path.join(store.dir(cid), "network.json"), settings, durable=False)
    etc = net.etc_files(cid, hostname, settings, dns=hc.get("Dns") or (),
                        dns_search=hc.get("DnsSearch") or (),
                        dns_options=hc.get("DnsOptions") or (),
                        extra_hosts=hc.get("ExtraHosts") or (), network_mode=mode,
                        domainname=config.get("Domainname", ""))
    spec = specmod.finalize(spec, rootfs, etc_files=etc, netns_path=netns)
    _apply_user(spec, rootfs, record)
    if record.get("HutchMounts"):
        from hutch.engine import volumes
        spec["mounts"].extend(volumes.prepare_start(paths, record["HutchMounts"], rootfs))
        prop = volumes.MountPlan.from_record(record["HutchMounts"]).rootfs_propagation()
        if prop:
            spec["linux"]["rootfsPropagation"] = prop
    if spec["linux"].get("uidMappings"):
        from hutch.engine import security
        open_to_remapped_root(paths, spec, rootfs)
        security.prepare_userns_rootfs(spec, rootfs)
        if netns:
            _sysfs_as_bind(spec)
    bundle = os.path.join(run_dir, "bundle")
    os.makedirs(bundle, exist_ok=True)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        f.write(fastjson.dumps(spec))
    return bundle


def open_to_remapped_root(paths, spec: dict, rootfs: str) -> None:
    """--userns-remap: the remapped root mounts the rootfs and the bind sources from inside
    its user namespace, so it must traverse hutch's directories down to them. As Docker
    does, those directories get the remap group with traverse-only rights (0710): other
    users still see nothing."""
    from hutch.engine import security
    gid = security.host_id(spec["linux"].get("gidMappings") or [], 0)
    if gid is None:
        return
    tops = [os.path.abspath(paths.root), os.path.abspath(paths.run)]
    targets = [rootfs] + [m["source"] for m in spec.get("mounts", [])
                          if m.get("type") == "bind" and m.get("source", "").startswith("/")]
    done = set()
    for target in targets:
        path = os.path.dirname(os.path.abspath(target))
        while path not in done and any(path == t or path.startswith(t + "/") for t in tops):
            done.add(path)
            st = os.stat(path)
            if not st.st_mode & 0o001 and not (st.st_gid == gid and st.st_mode & 0o010):
                trace.step("chown", f"{path}: group {gid}, mode 0710 (remapped root traverses)")
                os.chown(path, -1, gid)
                os.chmod(path, (st.st_mode & 0o700) | 0o010)
            path = os.path.dirname(path)


def _sysfs_as_bind(spec: dict) -> None:
    """A user namespace cannot mount sysfs for a network namespace it does not own (ours is
    made by the engine, outside it): bind the host's /sys read-only instead, as runc falls
    back to on EPERM."""
    for m in spec["mounts"]:
        if m.get("type") == "sysfs":
            m.update(type="bind", source="/sys",
                     options=["rbind", "nosuid", "noexec", "nodev", "ro"])


def make_netns(path: str) -> str:
    """A new network namespace kept alive by a bind mount on `path` (ip netns add)."""
    from hutch import _sys
    if os.path.ismount(path):
        return path
    open(path, "w").close()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            _sys.unshare(_sys.CLONE_NEWNET)
            _sys.mount("/proc/self/ns/net", path, None, _sys.MS_BIND)
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f"cannot create a network namespace at {path}")
    trace.step("netns", f"new network namespace bound at {path}")
    return path


def remove_netns(path: str) -> None:
    from hutch import _sys
    if os.path.ismount(path):
        trace.step("umount", path)
        _sys.umount2(path, _sys.MNT_DETACH)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _apply_user(spec: dict, rootfs: str, record: dict) -> None:
    from hutch.engine import security
    hc = record["HostConfig"]
    user = security.resolve_user(rootfs, record["Config"].get("User") or None,
                                 hc.get("GroupAdd") or ())
    user.additional_gids = with_primary_gid(user.gid, user.additional_gids)
    security.set_user(spec, user)


def with_primary_gid(gid: int, additional) -> list[int]:
    """Docker's daemon (getUser) lists the primary gid first among the supplementary
    groups: `id` shows groups=1000(labuser) for a user in no group of /etc/group."""
    out = [gid]
    for g in additional or ():
        if g not in out:
            out.append(g)
    return out


def oom_killed(cid: str) -> bool:
    try:
        from hutch import cgroups
        return cgroups.manager(cgroups_path(cid)).oom_kill_count() > 0
    except Exception:  # noqa: BLE001 - no cgroup (never started): no OOM
        return False


def cleanup_after_exit(paths, cid: str, record: dict, later: list | None = None) -> None:
    """Runtime state and cgroup, network, rootfs mount: each step tolerates being done.

    later: a list that takes the slow steps the container's waiters need not wait for (the
    veth deletions: the netns is dropped here, and the kernel deletes its pairs with it
    anyway); the caller runs finish_later(later) after answering them."""
    from hutch.runtime import container as rt
    from hutch.runtime.errors import ContainerNotFound, RuntimeFailure
    try:
        rt.delete(paths.runtime_state, cid, force=True)
    except ContainerNotFound:
        pass
    except RuntimeFailure as e:
        trace.step("cleanup", f"runtime delete {cid[:12]}: {e}")
    _destroy_cgroup(cid)
    try:
        from hutch.network import NetworkManager
        NetworkManager(paths).disconnect(cid, keep_links=later)
    except Exception as e:  # noqa: BLE001 - cleanup goes on
        trace.step("cleanup", f"network disconnect {cid[:12]}: {e}")
    try:
        remove_netns(os.path.join(Store(paths).run_dir(cid), "netns"))
    except OSError as e:
        trace.step("cleanup", f"netns {cid[:12]}: {e}")
    from hutch.images.store import ImageStore
    try:
        ImageStore(paths.images, paths.containers).unmount_rootfs(cid)
    except OSError as e:
        trace.step("cleanup", f"unmount rootfs {cid[:12]}: {e}")
    if record.get("HutchMounts"):
        from hutch.engine import volumes
        try:
            volumes.after_exit(paths, cid, record["HutchMounts"])
        except Exception as e:  # noqa: BLE001 - cleanup goes on
            trace.step("cleanup", f"volumes {cid[:12]}: {e}")


def finish_later(later: list) -> None:
    """The clean-up steps cleanup_after_exit(later=...) left (veths to delete)."""
    if not later:
        return
    try:
        from hutch.network.manager import NetworkManager
        NetworkManager.delete_links(later)
    except OSError as e:
        trace.step("cleanup", f"veth delete: {e}")
    later.clear()


def _destroy_cgroup(cid: str) -> None:
    """The runtime removes the cgroup on delete; after a crash it may be left: remove it."""
    try:
        from hutch import cgroups
        m = cgroups.manager(cgroups_path(cid))
        if m.exists():
            m.destroy()
    except Exception as e:  # noqa: BLE001
        trace.step("cleanup", f"cgroup {cid[:12]}: {e}")


def remove_files(paths, c, volumes: bool = False) -> None:
    """Everything a removed container leaves: snapshot, run dir, record, name, volumes."""
    from hutch.images.store import ImageStore
    from hutch.paths import remove_tree
    try:
        ImageStore(paths.images, paths.containers).remove_snapshot(c.id)
    except FileNotFoundError:
        pass
    release_volumes(paths, c, remove_anonymous=volumes or c.record["HostConfig"].get("AutoRemove"))
    remove_tree(Store(paths).run_dir(c.id), ignore_errors=True)
    c.store.remove(c)


def release_volumes(paths, c, remove_anonymous: bool) -> None:
    """Drop this container's references to named volumes; remove its anonymous ones (-v)."""
    if not c.record.get("HutchMounts"):
        return
    from hutch.engine import volumes
    for line in volumes.release_container(paths, c.id, c.record["HutchMounts"],
                                          remove_anonymous=bool(remove_anonymous)):
        trace.step("volumes", line)
