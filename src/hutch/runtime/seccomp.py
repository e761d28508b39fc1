"""linux.seccomp → a classic-BPF program (compiled by libseccomp), loaded last before execve.

Compiling Docker's profile costs libseccomp tens of milliseconds, so the program is cached
under the runtime's state root, keyed by the profile, the kernel and libseccomp.
"""
from __future__ import annotations

import os

from hutch import fastjson, trace


def _action(seccomp, name: str, errno_ret: int | None, default_errno: int):
    if name == "SCMP_ACT_ALLOW":
        return seccomp.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return seccomp.ERRNO(default_errno if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_TRACE":
        return seccomp.TRACE(default_errno if errno_ret is None else errno_ret)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return seccomp.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return seccomp.KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return seccomp.TRAP
    if name == "SCMP_ACT_LOG":
        return seccomp.LOG
    raise ValueError(f"linux.seccomp: action {name} is not supported")


def build_filter(spec: dict):
    """A libseccomp SyscallFilter for the spec (no_new_privs is set by the runtime itself)."""
    import seccomp
    errno_default = spec.get("defaultErrnoRet") or 1  # EPERM, as runc
    default = _action(seccomp, spec["defaultAction"], spec.get("defaultErrnoRet"),
                      errno_default)
    f = seccomp.SyscallFilter(default)
    f.set_attr(seccomp.Attr.CTL_NNP, 0)
    for arch in spec.get("architectures") or ():
        value = getattr(seccomp.Arch, arch.removeprefix("SCMP_ARCH_"), None)
        if value is None:
            raise ValueError(f"linux.seccomp.architectures: unknown architecture {arch!r}")
        try:
            f.add_arch(value)
        except RuntimeError:
            pass  # already present (the native one)
    ops = {"SCMP_CMP_NE": seccomp.NE, "SCMP_CMP_LT": seccomp.LT, "SCMP_CMP_LE": seccomp.LE,
           "SCMP_CMP_EQ": seccomp.EQ, "SCMP_CMP_GE": seccomp.GE, "SCMP_CMP_GT": seccomp.GT,
           "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ}
    for rule in spec.get("syscalls") or ():
        action = _action(seccomp, rule["action"], rule.get("errnoRet"), errno_default)
        if rule["action"] == spec["defaultAction"] and rule.get("errnoRet") == spec.get(
                "defaultErrnoRet"):
            continue  # libseccomp refuses a rule equal to the default
        args = [seccomp.Arg(a["index"], ops[a["op"]], a.get("value", 0), a.get("valueTwo", 0))
                for a in rule.get("args") or ()]
        for name in rule.get("names") or ():
            try:
                f.add_rule(action, name, *args)
            except (ValueError, RuntimeError, OSError):
                # A syscall this kernel/libseccomp does not know is skipped, as runc does.
                trace.step("seccomp", f"skipped rule for {name}")
    return f


def compile_program(spec: dict) -> bytes:
    f = build_filter(spec)
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    with os.fdopen(fd, "w+b") as out:
        f.export_bpf(out)
        out.seek(0)
        return out.read()


def _cache_key(spec: dict) -> str:
    import seccomp
    # _sha256 directly: hashlib loads OpenSSL (~2 ms) on every exec.
    from _sha256 import sha256
    h = sha256(fastjson.dumps(spec, sort_keys=True).encode())
    h.update(os.uname().release.encode())
    h.update(str(os.stat(seccomp.__file__).st_mtime_ns).encode())
    return h.hexdigest()


def program_for(spec: dict, cache_dir: str | None) -> bytes:
    """The compiled program, from the cache when this exact profile was compiled before."""
    path = os.path.join(cache_dir, _cache_key(spec) + ".bpf") if cache_dir else None
    if path:
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            pass
    program = compile_program(spec)
    if path:
        try:
            os.makedirs(cache_dir, mode=0o700, exist_ok=True)
            tmp = f"{path}.{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(program)
            os.rename(tmp, path)
        except OSError:
            pass  # only a cache
    return program
