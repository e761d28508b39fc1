"""The container operations, as Docker's daemon performs them, without a daemon.

Every operation: take the container's lock → refresh (monitor's exit record, dead
monitor) → check the transition in the state table → act → save atomically.
"""
from __future__ import annotations

import os
import time
from _signal import SIGKILL, SIGRTMAX, SIGRTMIN  # not signal: its enums, ~0.5 ms of ps, exec

from hutch import fastjson, trace
from hutch.engine import errors, lifecycle, states
from hutch.engine.records import Record
from hutch.engine.store import Container, Store, atomic_write, new_state, now_iso


def parse_signal(value: str) -> int:
    """kill -s: a name (KILL, SIGKILL, kill) or a number; Docker's error otherwise."""
    import _signal   # not signal: its enums (with enum's import) cost ~1.5 ms of each kill
    v = str(value).strip()
    if v.isdigit():
        n = int(v)
        if 0 < n <= 64:
            return n
        raise errors.InvalidParameter(f"Invalid signal: {value}")
    name = v.upper()
    name = name[3:] if name.startswith("SIG") else name
    # the kernel's names (and aliases: IOT, POLL, CLD), RTMIN and RTMAX, as signal.Signals
    names = {k[3:]: v for k, v in vars(_signal).items()
             if k.startswith("SIG") and "_" not in k and isinstance(v, int)}
    if name in names:
        return names[name]
    if name.startswith("RTMIN") or name.startswith("RTMAX"):
        base = SIGRTMIN if name.startswith("RTMIN") else SIGRTMAX
        off = name[5:]
        try:
            n = base + int(off) if off else base
        except ValueError:
            n = 0
        if SIGRTMIN <= n <= SIGRTMAX:
            return int(n)
    raise errors.InvalidParameter(f"Invalid signal: {value}")


class CreateOptions(Record):
    """Docker's create options, already parsed from flags (typed, in between layers)."""
    image: str
    cmd: list[str] = []
    entrypoint: list[str] | None = None        # None: the image's; [] reset
    name: str | None = None
    hostname: str = ""
    domainname: str = ""
    env: list[str] = []
    workdir: str = ""
    user: str = ""
    labels: dict = {}
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    attach: list[str] = []     # "stdin", "stdout", "stderr"
    init: bool = False
    stop_signal: str | None = None
    stop_timeout: int | None = None
    restart: tuple[str, int] = ("no", 0)
    auto_remove: bool = False
    cidfile: str = ""
    log_opts: dict = {}
    log_driver: str = "json-file"
    network: str = "default"
    runtime: str = "runc"
    flags: dict = {}   # every parsed flag by long name (for modules)
    changed: set = set()   # the flags the user gave
    resources: object = None     # hutch.engine.resources.Resources, parsed by the CLI
    oom_score_adj: int = 0


class Engine:
    def __init__(self, paths):
        self.paths = paths
        self.store = Store(paths)
        self.last_exit_code = None   # what the last wait for an exit learnt

    # --- create ------------------------------------------------------------------------
    def create(self, opts: CreateOptions) -> tuple[Container, list[str]]:
        """Create a container (record, name, snapshot); (container, warnings). All or nothing."""
        from hutch.engine import spec as specmod
        from hutch.images.store import ImageNotFound, ImageStore
        images = ImageStore(self.paths.images, self.paths.containers)
        try:
            image = images.resolve(opts.image)
        except ImageNotFound as e:
            raise errors.NotFound(str(e)) from None
        img_cfg = image.config.get("config") or {}
        if opts.runtime not in ("runc", "hutch", ""):
            raise errors.InvalidParameter(f"Unknown runtime specified {opts.runtime}")
        full = specmod.command_line(img_cfg, opts.entrypoint, opts.cmd)
        if not full:
            raise errors.InvalidParameter("No command specified")
        init_path = None
        if opts.init:
            init_path = specmod.find_init()
            if init_path is None:
                raise errors.InvalidParameter(
                    "--init: no init binary (docker-init, tini or catatonit) found on this "
                    "host's PATH")
        cid = os.urandom(32).hex()
        self.store.begin(cid)
        try:
            name = (self.store.reserve_name(opts.name, cid) if opts.name
                    else self.store.random_name(cid))
        except BaseException:
            self.store.abort(cid)
            raise
        created = False
        try:
            record, spec, warnings = self._build(cid, name, opts, image, img_cfg, full, init_path)
            c = self.store.create(cid, record, dict(new_state(), Name=name))
            created = True
            atomic_write(c.path("oci.json"), spec)
            images.create_snapshot(cid, image.id)
            trace.step("create", f"container {cid} ({name})", image=image.id)
            return c, warnings
        except BaseException:
            self._undo_create(cid, name, created, images)
            raise

    def _undo_create(self, cid, name, created, images) -> None:
        self.store.abort(cid)
        try:
            images.remove_snapshot(cid)
        except Exception:  # noqa: BLE001 - the original error is what the user sees
            pass
        if created:
            try:
                c = self.store.load(cid)
                lifecycle.release_volumes(self.paths, c, remove_anonymous=True)
                self.store.remove(c)
            except errors.NotFound:
                pass
        self.store.release_name(name, cid)

    def _build(self, cid, name, opts: CreateOptions, image, img_cfg, full, init_path):
        """The container's record (Docker's Config/HostConfig) and its OCI spec."""
        from hutch.engine import networking, spec as specmod
        warnings: list[str] = []
        env = specmod.merge_env(img_cfg.get("Env") or [], opts.env)
        labels = dict(img_cfg.get("Labels") or {})
        labels.update(opts.labels)
        hostname, domainname = opts.hostname, opts.domainname
        attach = set(opts.attach)
        f = opts.flags
        if not hostname and (opts.network == "host" or f.get("uts") == "host"):
            # Docker: a container on the host's network is named as the host (in its own
            # UTS namespace, so `hostname x` inside changes nothing outside)
            import socket as socketmod
            hostname = socketmod.gethostname()
        config = {
            "Hostname": hostname or cid[:12], "Domainname": domainname,
            "User": opts.user or img_cfg.get("User", ""),
            "AttachStdin": "stdin" in attach, "AttachStdout": "stdout" in attach,
            "AttachStderr": "stderr" in attach,
            "Tty": opts.tty, "OpenStdin": opts.open_stdin, "StdinOnce": opts.stdin_once,
            "Env": env, "Cmd": (list(opts.cmd) if (opts.cmd or opts.entrypoint is not None)
                                else img_cfg.get("Cmd")) or None,
            "Image": opts.image, "Volumes": img_cfg.get("Volumes"),
            "WorkingDir": opts.workdir or img_cfg.get("WorkingDir", ""),
            "Entrypoint": (opts.entrypoint if opts.entrypoint is not None
                           else img_cfg.get("Entrypoint")) or None,
            "OnBuild": None, "Labels": labels,
        }
        if opts.stop_signal or img_cfg.get("StopSignal"):
            config["StopSignal"] = opts.stop_signal or img_cfg.get("StopSignal")
        if opts.stop_timeout is not None:
            config["StopTimeout"] = opts.stop_timeout
        if img_cfg.get("ExposedPorts"):
            config["ExposedPorts"] = img_cfg["ExposedPorts"]
        if config["WorkingDir"] and not config["WorkingDir"].startswith("/"):
            raise errors.InvalidParameter(
                f"the working directory '{config['WorkingDir']}' is invalid, it needs to be an absolute path")
        policy_name, policy_max = opts.restart
        log_config = {"Type": opts.log_driver, "Config": dict(opts.log_opts)}
        host_config = default_host_config()
        host_config.update({
            "ContainerIDFile": opts.cidfile, "LogConfig": log_config,
            "NetworkMode": opts.network,
            "RestartPolicy": {"Name": policy_name, "MaximumRetryCount": policy_max},
            "AutoRemove": opts.auto_remove, "Runtime": "runc",
        })
        if opts.init:
            host_config["Init"] = True
        host_config.update({
            "PortBindings": f.get("_bindings") or {}, "PublishAllPorts": bool(f.get("publish-all")),
            "Dns": list(f.get("dns") or []), "DnsOptions": list(f.get("dns-option") or []),
            "DnsSearch": list(f.get("dns-search") or []),
            "ExtraHosts": list(f.get("add-host") or []) or None,
        })
        if f.get("_exposed"):
            config["ExposedPorts"] = dict(config.get("ExposedPorts") or {}, **f["_exposed"])
        if opts.network not in ("default", "bridge", "host", "none") and \
                not opts.network.startswith("container:"):
            from hutch.network import NetworkManager
            try:
                NetworkManager(self.paths).find(opts.network)
            except Exception as e:  # noqa: BLE001 - Docker's "network x not found"
                raise errors.NotFound(str(e)) from None
        record = {
            "Id": cid, "Created": now_iso(), "CreatedNs": time.time_ns(),
            "Path": full[0], "Args": full[1:], "Image": image.id, "Name": "/" + name,
            "Driver": "overlay2", "Platform": "linux", "MountLabel": "", "ProcessLabel": "",
            "AppArmorProfile": "", "Config": config, "HostConfig": host_config,
            "HutchInit": init_path,
            "HutchNetwork": {k: v for k, v in (("ip", f.get("ip")), ("mac", f.get("mac-address")),
                                               ("aliases", list(f.get("network-alias") or [])))
                             if v},
            "HutchNetworks": networking.initial_networks(
                opts.network, f.get("ip"), f.get("network-alias")),
        }
        cdir = self.store.dir(cid)
        record.update({
            "ResolvConfPath": os.path.join(cdir, "resolv.conf"),
            "HostnamePath": os.path.join(cdir, "hostname"),
            "HostsPath": os.path.join(cdir, "hosts"),
            "LogPath": os.path.join(cdir, f"{cid}-json.log"),
        })
        spec = self._base_spec(cid, opts, record, warnings)
        spec = specmod.build(cid, record, base=spec, cgroups_path=lifecycle.cgroups_path(cid))
        return record, spec, warnings

    def _base_spec(self, cid, opts: CreateOptions, record: dict, warnings: list[str]) -> dict:
        """Docker's defaults + security flags + resources + mounts from their modules."""
        from hutch import cgroups
        from hutch.engine import security
        from hutch.oci.defaults import default_spec
        f = opts.flags
        hc = record["HostConfig"]
        unified = cgroups.detect_mode() == "unified"
        spec = default_spec(terminal=opts.tty, cgroup_ns=unified)
        hc["CgroupnsMode"] = "private" if unified else "host"
        _host_namespaces(spec, hc, pid=f.get("pid") == "host", ipc=f.get("ipc") == "host",
                         uts=f.get("uts") == "host")
        sysctls = {}
        for item in f.get("sysctl") or []:
            k, v = security.validate_sysctl(item)
            sysctls[k] = v
        # --user and --group-add are resolved at each start, in the image's own files;
        # here the flags are validated against an empty root (made as tempfile.mkdtemp
        # does: tempfile, with shutil, random and weakref, is ~2.5 ms of each create)
        empty = os.path.join(os.environ.get("TMPDIR") or "/tmp",
                             f"hutch-create-{os.urandom(6).hex()}")
        os.mkdir(empty, 0o700)
        try:
            warnings += security.apply_security(
                spec, privileged=bool(f.get("privileged")), cap_add=f.get("cap-add") or (),
                cap_drop=f.get("cap-drop") or (), security_opt=f.get("security-opt") or (),
                read_only=bool(f.get("read-only")), devices=f.get("device") or (),
                sysctls=sysctls, rootfs=empty, userns=f.get("userns") or None)
        finally:
            os.rmdir(empty)   # (apply_security only reads it, or chowns it for --userns)
        spec["process"].pop("user", None)
        spec["process"]["env"] = [e for e in spec["process"]["env"] if not e.startswith("HOME=")]
        hc.update({
            "Privileged": bool(f.get("privileged")), "CapAdd": f.get("cap-add") or None,
            "CapDrop": f.get("cap-drop") or None, "SecurityOpt": f.get("security-opt") or None,
            "ReadonlyRootfs": bool(f.get("read-only")), "GroupAdd": f.get("group-add") or None,
            "Sysctls": sysctls or None, "UsernsMode": f.get("userns") or "",
            "Devices": [_device_dict(d) for d in f.get("device") or []],
            "MaskedPaths": spec["linux"].get("maskedPaths") or None,
            "ReadonlyPaths": spec["linux"].get("readonlyPaths") or None,
        })
        self._apply_resources(spec, opts, hc, warnings)
        self._apply_mounts(cid, spec, opts, record)
        return spec

    def _apply_resources(self, spec, opts: CreateOptions, hc: dict, warnings: list[str]) -> None:
        res = opts.resources
        if res is None:
            from hutch.engine.resources import parse_resources
            res = parse_resources({})
        linux = spec["linux"]
        resources = dict(res.linux_resources or {})
        devices = linux.get("resources", {}).get("devices")
        if devices is not None:
            resources["devices"] = devices + list(resources.get("devices") or [])
        linux["resources"] = resources
        if res.rlimits:
            spec["process"]["rlimits"] = _merge_rlimits(spec["process"].get("rlimits") or [],
                                                        res.rlimits)
        if res.shm_size:
            for m in spec["mounts"]:
                if m["destination"] == "/dev/shm":
                    m["options"] = [o for o in m["options"] if not o.startswith("size=")] + \
                        [f"size={res.shm_size}"]
        hc.update(res.host_config or {})
        if opts.oom_score_adj:
            if not -1000 <= opts.oom_score_adj <= 1000:
                raise errors.InvalidParameter(
                    f"Invalid value {opts.oom_score_adj}, range for oom score adj is [-1000, 1000]")
            spec["process"]["oomScoreAdj"] = opts.oom_score_adj
            hc["OomScoreAdj"] = opts.oom_score_adj
        warnings += list(res.warnings or [])

    def _apply_mounts(self, cid, spec, opts: CreateOptions, record: dict) -> None:
        f = opts.flags
        if not any(f.get(k) for k in ("volume", "mount", "tmpfs", "volumes-from")) and \
                not record["Config"].get("Volumes"):
            return
        from hutch.engine import volumes

        def lookup(ref):
            c = self.store.load(self.store.resolve(ref))
            return c.id, c.record

        try:
            plan = volumes.plan_mounts(
                self.paths, cid, volumes=f.get("volume") or (), mounts=f.get("mount") or (),
                tmpfs=f.get("tmpfs") or (), volumes_from=f.get("volumes-from") or (),
                lookup=lookup, image_volumes=record["Config"].get("Volumes") or (),
                volume_driver=f.get("volume-driver") or "")
        except ValueError as e:
            raise errors.InvalidParameter(str(e)) from None
        record["HutchMounts"] = plan.record
        # Docker's CLI: `-v /path` (no source) is an anonymous volume in Config.Volumes,
        # anything with a colon a bind in HostConfig.Binds
        anonymous = [v for v in f.get("volume") or [] if ":" not in v]
        if anonymous:
            record["Config"]["Volumes"] = dict(record["Config"].get("Volumes") or {},
                                               **{v: {} for v in anonymous})
        record["HostConfig"]["Binds"] = [v for v in f.get("volume") or [] if ":" in v] or None
        if f.get("mount"):
            record["HostConfig"]["Mounts"] = volumes.host_config_mounts(f["mount"])
        record["HostConfig"]["VolumesFrom"] = f.get("volumes-from") or None
        if f.get("tmpfs"):
            record["HostConfig"]["Tmpfs"] = dict(plan.tmpfs)

    # --- start -------------------------------------------------------------------------
    def start(self, ref: str, *, attach_sock=None,
              attach_opts: dict | None = None, console_size=None) -> Container:
        """Start (created/exited) → running; a no-op if running. Raises on failure."""
        from hutch.engine import monitor
        with self.store.locked(ref) as c:
            if states.check("start", c.status, cid=c.id, ref=ref, name=c.name) == "noop":
                return c
            self._reap_leftovers(c)
            st = c.state
            gen = st["Generation"] + 1
            report = monitor.spawn(self.paths, c.id, gen, attach_sock=attach_sock,
                                   attach_opts=attach_opts, console_size=console_size)
            st["Generation"] = gen
            if "Error" in report:
                st.update(Error=report["Error"], ExitCode=report["ExitCode"])
                c.save()
                raise errors.ExecFailed(report["Error"], report["ExitCode"])
            st.update(Status=states.RUNNING, Running=True, Paused=False, Restarting=False,
                      OOMKilled=False, Dead=False, Pid=report["Pid"], PidStart=report["PidStart"],
                      ExitCode=0, Error="", StartedAt=report["StartedAt"],
                      MonitorPid=report["MonitorPid"], MonitorStart=report["MonitorStart"],
                      ManuallyStopped=False, HasBeenStarted=True, Backoff=0.0)
            c.save(durable=False)
            return c

    def _reap_leftovers(self, c: Container) -> None:
        """Before a start: if a previous monitor died mid-way, clean what it left."""
        if c.state.pop("Cleanup", False):
            lifecycle.cleanup_after_exit(self.paths, c.id, c.record)
            c.save()
            from hutch.engine import networking
            networking.reconcile(self)

    # --- stop / kill -------------------------------------------------------------------
    # Lock order: never wait for an exit while holding the container's lock. Signals are
    # sent under it; the wait (monitor socket, pidfd) runs without it, so the monitor can
    # take it to record the exit and other commands on the container are not held up; the
    # lock is taken again to settle, checking the start generation is still the same.
    def stop(self, ref: str, timeout: float | None = None, sig: int | None = None) -> Container:
        """The stop signal (--stop-signal, or sig), then SIGKILL after the timeout."""
        with self.store.locked(ref) as c:
            if states.check("stop", c.status, cid=c.id, ref=ref, name=c.name) == "noop":
                return c
            c.state["ManuallyStopped"] = True
            if c.status == states.RESTARTING:
                c.state.update(Status=states.EXITED, Running=False, Restarting=False)
                c.save()
                self._wake_monitor(c)
                return c
            c.save()
            if sig is None:
                sig = parse_signal(c.record["Config"].get("StopSignal") or "TERM")
            if timeout is None:
                timeout = c.record["Config"].get("StopTimeout")
            if timeout is None:
                timeout = 10
            self._signal(c, sig)
        if not self._wait_exit(c, None if timeout < 0 else timeout):
            try:
                with self.store.locked(c.id) as now:
                    if self._same_start(c, now):
                        self._signal(now, SIGKILL)
            except errors.NotFound:   # removed meanwhile
                pass
            self._wait_exit(c, None)
        return self._settle_unlocked(c, killed_by=sig)

    def kill(self, ref: str, sig: int = SIGKILL) -> Container:
        with self.store.locked(ref) as c:
            states.check("kill", c.status, cid=c.id, ref=ref, name=c.name)
            # Docker's killWithSignal: the stop signal (any signal when none is set) or
            # KILL marks the container stopped by hand and thaws a paused one
            stop_sig = c.record["Config"].get("StopSignal")
            stopping = sig == SIGKILL or not stop_sig or parse_signal(stop_sig) == sig
            if stopping:
                c.state["ManuallyStopped"] = True
                c.save()
            self._signal(c, sig, thaw=stopping)
        if sig == SIGKILL:
            self._wait_exit(c, None)
            return self._settle_unlocked(c, killed_by=sig)
        return c

    @staticmethod
    def _same_start(c: Container, now: Container) -> bool:
        """Whether `now`, the container locked again, is still in the start we signalled
        (not exited and started anew by someone else)."""
        return now.state["Generation"] == c.state["Generation"] and \
            now.status in (states.RUNNING, states.PAUSED)

    def _settle_unlocked(self, c: Container, killed_by: int) -> Container:
        try:
            with self.store.locked(c.id) as now:
                if now.state["Generation"] == c.state["Generation"]:
                    self._settle(now, killed_by=killed_by)
                return now
        except errors.NotFound:   # --rm: the monitor removed it after the exit
            return c

    def _signal(self, c: Container, sig: int, thaw: bool = True) -> None:
        """Deliver sig to the init; a frozen container is thawed so it can act on it."""
        from hutch.runtime import container as rt
        from hutch.runtime.errors import RuntimeFailure
        trace.step("kill", f"container {c.id[:12]}", signal=sig)
        try:
            rt.kill(self.paths.runtime_state, c.id, sig)
        except RuntimeFailure:
            # runtime state lost (a dead monitor cleaned up half-way): signal the pid itself
            from hutch.engine.store import alive
            if alive(c.state["Pid"], c.state["PidStart"]):
                os.kill(c.state["Pid"], sig)
        if thaw and c.status == states.PAUSED:
            try:
                rt.resume(self.paths.runtime_state, c.id)
            except RuntimeFailure:
                pass
            c.state.update(Status=states.RUNNING, Paused=False)
            c.save()

    def _wait_exit(self, c: Container, timeout: float | None) -> bool:
        """Block until the init has exited (and the monitor recorded it); False on timeout.

        The monitor answers a "wait" with an exit frame as soon as it has written the exit
        record, before it takes the container's lock (see the lock order in store), so
        this blocks on the socket alone, with no polling.
        """
        from hutch.engine.monitor import FRAME_EXIT, connect
        deadline = None if timeout is None else time.monotonic() + timeout
        if c.monitor_alive():
            try:
                s = connect(self.store.run_dir(c.id))
            except OSError:
                s = None
            if s is not None:
                try:
                    s.sendall(fastjson.dumps({"op": "wait", "until": "exited"}).encode() + b"\n")
                    while True:
                        left = None if deadline is None else deadline - time.monotonic()
                        if left is not None and left <= 0:
                            return self._exit_recorded(c)
                        s.settimeout(left)
                        try:
                            hdr = s.recv(8)
                        except TimeoutError:
                            return self._exit_recorded(c)
                        except OSError:
                            hdr = b""
                        if hdr and hdr[0] == FRAME_EXIT:
                            try:
                                s.settimeout(1.0)
                                n = int.from_bytes(hdr[4:8], "big")
                                self.last_exit_code = fastjson.loads(s.recv(n))["ExitCode"]
                            except (OSError, ValueError, KeyError):
                                pass
                            return True
                        if not hdr:
                            break    # the monitor went away: fall through to the pid
                finally:
                    s.close()
        # no monitor: wait on the init's pidfd (it is not our child)
        from hutch.engine.store import alive
        pid, start = c.state["Pid"], c.state["PidStart"]
        if not alive(pid, start):
            return True
        import select
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return True
        try:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            r, _, _ = select.select([fd], [], [], left)
            return bool(r)
        finally:
            os.close(fd)

    def _wake_monitor(self, c: Container) -> None:
        """A monitor in its restart back-off re-reads the state now (and finishes)."""
        from hutch.engine.monitor import connect
        try:
            s = connect(self.store.run_dir(c.id))
        except OSError:
            return
        try:
            s.sendall(b'{"op": "wake"}\n')
        except OSError:
            pass
        finally:
            s.close()

    def _exit_recorded(self, c: Container) -> bool:
        from hutch.engine.store import read_json
        ex = read_json(c.path("exit.json"))
        if ex and ex.get("Generation") == c.state["Generation"]:
            self.last_exit_code = ex["ExitCode"]
            return True
        return False

    def _settle(self, c: Container, killed_by: int) -> None:
        """After the init is gone: fold in the exit record, or repair if there is none."""
        c.refresh()
        if c.status in (states.RUNNING, states.PAUSED) or c.state.get("Cleanup"):
            # the monitor is dead and left no record: clean up and record what we know
            lifecycle.cleanup_after_exit(self.paths, c.id, c.record)
            from hutch.engine import networking
            networking.reconcile(self)
            from hutch.engine.store import apply_exit
            apply_exit(c.state, {"ExitCode": 128 + killed_by, "FinishedAt": now_iso(),
                                 "Error": ""})
            c.state.update(MonitorPid=0, Cleanup=False)
        c.save()

    # --- pause ----------------------------------------------------------------------------
    def pause(self, ref: str) -> Container:
        from hutch.runtime import container as rt
        with self.store.locked(ref) as c:
            states.check("pause", c.status, cid=c.id, ref=ref, name=c.name)
            rt.pause(self.paths.runtime_state, c.id)
            c.state.update(Status=states.PAUSED, Paused=True)
            c.save()
            return c

    def unpause(self, ref: str) -> Container:
        from hutch.runtime import container as rt
        with self.store.locked(ref) as c:
            states.check("unpause", c.status, cid=c.id, ref=ref, name=c.name)
            rt.resume(self.paths.runtime_state, c.id)
            c.state.update(Status=states.RUNNING, Paused=False)
            c.save()
            return c

    def restart(self, ref: str, timeout: float | None = None) -> Container:
        c = self.store.get(ref)
        states.check("restart", c.status, cid=c.id, ref=ref, name=c.name)
        self.stop(c.id, timeout)
        return self.start(c.id)

    # --- rm -------------------------------------------------------------------------------
    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        killed = None
        if force:
            # kill under the lock, wait for the exit without it (see stop)
            with self.store.locked(ref) as c:
                if c.status in (states.RUNNING, states.PAUSED):
                    c.state["ManuallyStopped"] = True
                    c.save()
                    self._signal(c, SIGKILL)
                    killed = c
            if killed is not None:
                self._wait_exit(killed, None)
                ref = killed.id
        try:
            monitor = self._remove_locked(ref, force, volumes, killed)
        except errors.NotFound:
            if killed is not None:
                return      # --rm: its monitor removed it after the kill
            raise
        if monitor:
            # it is waiting for the lock we just released, to find the container gone
            _wait_process_gone(*monitor, timeout=5.0)

    def _remove_locked(self, ref: str, force: bool, volumes: bool, killed) -> tuple | None:
        """The removal proper, under the lock; the monitor to wait for, if one lives."""
        with self.store.locked(ref) as c:
            if killed is not None and c.state["Generation"] == killed.state["Generation"]:
                self._settle(c, killed_by=SIGKILL)
            if force and c.status in (states.RUNNING, states.PAUSED):
                # started again between the kill and now (rare): kill it under the lock
                c.state["ManuallyStopped"] = True
                c.save()
                self._signal(c, SIGKILL)
                self._wait_exit(c, 10.0)
                self._settle(c, killed_by=SIGKILL)
            elif force and c.status == states.RESTARTING:
                c.state.update(Status=states.EXITED, Running=False, Restarting=False,
                               ManuallyStopped=True)
                self._wake_monitor(c)
            monitor = (c.state["MonitorPid"], c.state["MonitorStart"]) if c.monitor_alive() else None
            states.check("rm", c.status, cid=c.id, ref=ref, name=c.name)
            c.state.update(Status=states.REMOVING)
            c.save()
            if c.state.get("HasBeenStarted"):
                lifecycle.cleanup_after_exit(self.paths, c.id, c.record)
            lifecycle.remove_files(self.paths, c, volumes=volumes)
            trace.step("rm", f"container {c.id}")
        return monitor

    # --- wait / rename / update -----------------------------------------------------------
    def wait(self, ref: str) -> int:
        """Block until the container is not running; its exit code (Docker's not-running)."""
        c = self.store.get(ref)
        while c.status in (states.RUNNING, states.PAUSED, states.RESTARTING):
            self.last_exit_code = None
            if c.status == states.RESTARTING or not self._wait_exit(c, None):
                time.sleep(0.05)   # restarting: the next start is pending in the monitor
            try:
                c = self.store.get(c.id)
            except errors.NotFound:   # removed on exit (--rm): the code the monitor told us
                return self.last_exit_code if self.last_exit_code is not None else 0
        return c.state["ExitCode"]

    def rename(self, ref: str, new: str) -> None:
        with self.store.locked(ref) as c:
            if not new:
                raise errors.InvalidParameter("Neither old nor new names may be empty")
            if new.lstrip("/") == c.name:
                raise errors.Conflict(
                    f"Renaming a container with the same name as its current name")
            old = c.name
            name = self.store.reserve_name(new, c.id)
            c.state["Name"] = name
            c.save()
            self.store.release_name(old, c.id)

    def update(self, ref: str, flags: dict, restart: tuple[str, int] | None = None
               ) -> tuple[Container, list[str]]:
        """`update`: resource flags (as given) on top of the current HostConfig, applied
        live to a running container, kept for its next starts; a new restart policy."""
        from hutch.engine.resources import update_resources
        from hutch.engine.store import read_json
        from hutch.runtime import container as rt
        with self.store.locked(ref) as c:
            hc = c.record["HostConfig"]
            try:
                res = update_resources(flags, hc, cid=c.id) if flags else None
            except ValueError as e:
                raise errors.InvalidParameter(str(e)) from None
            if restart is not None:
                if restart[0] != "no" and hc.get("AutoRemove"):
                    raise errors.InvalidParameter(
                        "Restart policy cannot be updated because AutoRemove is enabled for "
                        "the container")
                hc["RestartPolicy"] = {"Name": restart[0], "MaximumRetryCount": restart[1]}
            if res is not None:
                hc.update({k: v for k, v in (res.host_config or {}).items() if k in hc})
                spec = read_json(c.path("oci.json"))
                devices = spec["linux"].get("resources", {}).get("devices")
                spec["linux"]["resources"] = dict(res.linux_resources or {})
                if devices is not None:
                    spec["linux"]["resources"]["devices"] = devices
                atomic_write(c.path("oci.json"), spec)
                if c.status in (states.RUNNING, states.PAUSED):
                    rt.update(self.paths.runtime_state, c.id, res.linux_resources or {})
            c.save_record()
            return c, list(res.warnings or []) if res is not None else []

    # --- networks -------------------------------------------------------------------------
    def network_connect(self, ref: str, network: str, aliases=(), ip: str | None = None) -> None:
        from hutch.engine import networking
        networking.connect(self, ref, network, aliases=aliases, ip=ip)

    def network_disconnect(self, ref: str, network: str, force: bool = False) -> None:
        from hutch.engine import networking
        networking.disconnect(self, ref, network, force=force)

    # --- exec -----------------------------------------------------------------------------
    def check_exec(self, ref: str) -> Container:
        c = self.store.get(ref)
        states.check("exec", c.status, cid=c.id, ref=ref, name=c.name)
        return c

    def exec_spec(self, c: Container, args: list[str], *, tty=False, user="", workdir="",
                  env=(), privileged=False) -> dict:
        """The OCI process for `exec`, from the container's own spec (caps, env, cwd)."""
        from hutch.engine.store import read_json
        bundle = os.path.join(self.store.run_dir(c.id), "bundle", "config.json")
        spec = read_json(bundle) or read_json(c.path("oci.json"))
        proc = dict(spec["process"])
        proc["args"] = list(args)
        proc["terminal"] = tty
        if workdir:
            proc["cwd"] = workdir
        from hutch.engine import spec as specmod
        env_list = [e for e in proc["env"] if not (e.startswith("TERM=") and not tty)]
        if tty and not any(e.startswith("TERM=") for e in env_list):
            env_list.append("TERM=xterm")
        proc["env"] = specmod.merge_env(env_list, specmod.resolve_env_args(list(env)))
        if user:
            from hutch.engine import security
            from hutch.images.store import ImageStore
            rootfs = ImageStore(self.paths.images, self.paths.containers).rootfs_path(c.id)
            u = security.resolve_user(rootfs, user)
            proc["user"] = {"uid": u.uid, "gid": u.gid,
                            "additionalGids": lifecycle.with_primary_gid(u.gid, u.additional_gids)}
        if privileged:
            from hutch.oci import defaults
            caps = defaults.host_bounding_caps()
            proc["capabilities"] = {k: list(caps) for k in
                                    ("bounding", "effective", "permitted")} | \
                {"inheritable": [], "ambient": []}
        return proc

    # --- inspection helpers ---------------------------------------------------------------
    def list(self) -> list[Container]:
        return self.store.list()

    def get(self, ref: str) -> Container:
        return self.store.get(ref)

    def prune(self, keep=lambda c: False) -> list[str]:
        removed = []
        for c in self.store.list():
            if c.status in (states.CREATED, states.EXITED, states.DEAD) and not keep(c):
                try:
                    self.remove(c.id)
                    removed.append(c.id)
                except errors.EngineError:
                    continue
        from hutch.engine import networking
        networking.reconcile(self)
        return removed


def _wait_process_gone(pid: int, start, timeout: float) -> None:
    import select
    from hutch.engine.store import alive
    if not alive(pid, start):
        return
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def default_host_config() -> dict:
    """HostConfig as Docker 20.10 fills it for a plain `docker run` (inspect's layout)."""
    return {
        "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": "default", "PortBindings": {},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
        "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None,
        "CgroupnsMode": "host", "Dns": [], "DnsOptions": [], "DnsSearch": [],
        "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None,
        "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False,
        "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "",
        "ShmSize": 67108864, "Runtime": "runc", "ConsoleSize": [0, 0], "Isolation": "",
        "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0,
        "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
        "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
        "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "KernelMemory": 0,
        "KernelMemoryTCP": 0, "MemoryReservation": 0, "MemorySwap": 0,
        "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None, "Ulimits": None,
        "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "MaskedPaths": None, "ReadonlyPaths": None,
    }


def _host_namespaces(spec: dict, hc: dict, *, pid: bool, ipc: bool, uts: bool) -> None:
    """--pid=host, --ipc=host, --uts=host: the container stays in the host's namespace
    (before the security flags, which refuse some of them with --userns-remap)."""
    drop = {kind for kind, on in (("pid", pid), ("ipc", ipc), ("uts", uts)) if on}
    if not drop:
        return
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                   if n["type"] not in drop]
    if ipc:   # the host's IPC namespace and its /dev/shm, as Docker
        for m in spec["mounts"]:
            if m["destination"] == "/dev/shm":
                m.update(type="bind", source="/dev/shm", options=["rbind", "rprivate"])
    hc.update(PidMode="host" if pid else "", UTSMode="host" if uts else "")
    if ipc:
        hc["IpcMode"] = "host"


def _merge_rlimits(base: list[dict], extra: list[dict]) -> list[dict]:
    out = {r["type"]: r for r in base}
    for r in extra:
        out[r["type"]] = r
    return list(out.values())


def _device_dict(value: str) -> dict:
    parts = value.split(":")
    host = parts[0]
    cont = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
    perms = parts[-1] if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
    return {"PathOnHost": host, "PathInContainer": cont, "CgroupPermissions": perms}
