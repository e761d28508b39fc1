"""The run/create flag table as the container commands declare it — no root."""
from hutch.cli.containers import CREATE_FLAGS, RUN_CMD
from hutch.engine import resources


def test_every_bool_resource_flag_is_declared_bool():
    declared = {f.long: f for f in CREATE_FLAGS}
    bools = [name for name, _s, shown, *_ in resources.FLAGS if shown == "bool"]
    assert bools, "resources.FLAGS has bool flags (oom-kill-disable)"
    for name in bools:
        assert declared[name].type == "bool", name


def test_oom_kill_disable_does_not_take_the_image_as_its_value():
    opts, args = RUN_CMD.parse(["--oom-kill-disable", "busybox", "true"])
    assert opts["oom-kill-disable"] is True
    assert args == ["busybox", "true"]
    opts, args = RUN_CMD.parse(["--oom-kill-disable=false", "busybox"])
    assert opts["oom-kill-disable"] is False and args == ["busybox"]
