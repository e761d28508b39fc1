"""linux.seccomp → a libseccomp filter (python3-seccomp), loaded last before execve."""
from __future__ import annotations

from hutch import trace


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


def build_filter(spec: dict, no_new_privileges: bool):
    import seccomp
    errno_default = spec.get("defaultErrnoRet") or 1  # EPERM, as runc
    default = _action(seccomp, spec["defaultAction"], spec.get("defaultErrnoRet"),
                      errno_default)
    f = seccomp.SyscallFilter(default)
    # libseccomp sets no_new_privs on load by default; only the config decides that.
    f.set_attr(seccomp.Attr.CTL_NNP, 1 if no_new_privileges else 0)
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


def load(spec: dict, no_new_privileges: bool) -> None:
    f = build_filter(spec, no_new_privileges)
    trace.step("seccomp", "load filter", default=spec["defaultAction"],
               rules=len(spec.get("syscalls") or ()))
    f.load()
