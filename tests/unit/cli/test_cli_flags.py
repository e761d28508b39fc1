"""hutch.cli.flags: pflag's parsing rules and Docker's error texts (exit 125 / 1)."""
import pytest

from hutch.cli.flags import (Command, CommandLineError, Flag, HelpRequested, parse_bool,
                             parse_duration, parse_int)

RUN = Command(
    "run", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Run a command in a new container",
    [Flag("detach", "d", help="Run container in background and print container ID"),
     Flag("interactive", "i", help="Keep STDIN open even if not attached"),
     Flag("tty", "t", help="Allocate a pseudo-TTY"),
     Flag("env", "e", "list", help="Set environment variables"),
     Flag("name", type="string", help="Assign a name to the container"),
     Flag("rm", help="Automatically remove the container when it exits"),
     Flag("hostname", "h", "string", help="Container host name"),
     Flag("pids-limit", type="int64", help="Tune container pids limit (set -1 for unlimited)"),
     Flag("blkio-weight", type="uint16", help="Block IO weight"),
     Flag("stop-timeout", type="int", help="Timeout (in seconds) to stop a container"),
     Flag("cap-add", type="strings", help="Add Linux capabilities")],
    interspersed=False, min_args=1)

STOP = Command(
    "stop", "[OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers",
    [Flag("time", "t", "int", default=10, help="Seconds to wait for stop before killing it")],
    min_args=1)

LOGS = Command("logs", "[OPTIONS] CONTAINER", "Fetch the logs of a container",
               [Flag("follow", "f"), Flag("since", type="string"),
                Flag("wait", type="duration", default=2.0)], min_args=1, max_args=1)


def err(spec, argv):
    with pytest.raises(CommandLineError) as e:
        spec.parse(argv)
    return e.value


def test_combined_short_bools_and_values():
    opts, args = RUN.parse(["-dit", "-eA=1", "-e=B", "-e", "C", "--env=D", "--env", "E",
                            "--name", "web", "busybox", "sh"])
    assert opts["detach"] and opts["interactive"] and opts["tty"]
    assert opts["env"] == ["A=1", "B", "C", "D", "E"]
    assert opts["name"] == "web" and args == ["busybox", "sh"]
    assert opts.changed == {"detach", "interactive", "tty", "env", "name"}


def test_defaults_present_and_lists_fresh():
    opts, _ = RUN.parse(["busybox"])
    assert opts["rm"] is False and opts["name"] is None and opts["env"] == []
    opts["env"].append("x")
    assert RUN.parse(["busybox"])[0]["env"] == []
    assert STOP.parse(["c"])[0]["time"] == 10


def test_bool_value_only_after_equals():
    opts, args = RUN.parse(["--rm=false", "busybox"])
    assert opts["rm"] is False and "rm" in opts.changed
    opts, args = RUN.parse(["--rm", "busybox"])
    assert opts["rm"] is True and args == ["busybox"]


def test_run_stops_at_image_so_command_flags_pass_through():
    opts, args = RUN.parse(["--rm", "busybox", "ls", "-la", "--rm", "--", "-e"])
    assert args == ["busybox", "ls", "-la", "--rm", "--", "-e"]
    assert opts["env"] == []


def test_interspersed_flags_after_positionals():
    opts, args = STOP.parse(["a", "-t", "3", "b", "--time=4"])
    assert args == ["a", "b"] and opts["time"] == 4


def test_double_dash_ends_flags():
    opts, args = STOP.parse(["--", "-t", "x"])
    assert args == ["-t", "x"] and opts["time"] == 10


def test_value_flag_takes_next_arg_even_if_dashed():
    opts, _ = RUN.parse(["--name", "-x", "busybox"])
    assert opts["name"] == "-x"
    opts, _ = RUN.parse(["--pids-limit", "-1", "busybox"])
    assert opts["pids-limit"] == -1


def test_strings_flag_splits_commas():
    opts, _ = RUN.parse(["--cap-add", "NET_ADMIN,SYS_TIME", "--cap-add=CHOWN", "busybox"])
    assert opts["cap-add"] == ["NET_ADMIN", "SYS_TIME", "CHOWN"]


@pytest.mark.parametrize("argv, message", [
    (["--foo", "busybox"], "unknown flag: --foo"),
    (["-z", "busybox"], "unknown shorthand flag: 'z' in -z"),
    (["-itz", "busybox"], "unknown shorthand flag: 'z' in -itz"),
    (["--name"], "flag needs an argument: --name"),
    (["-e"], "flag needs an argument: 'e' in -e"),
    (["--pids-limit", "abc", "busybox"],
     'invalid argument "abc" for "--pids-limit" flag: strconv.ParseInt: parsing "abc": invalid syntax'),
    (["--rm=yes", "busybox"],
     'invalid argument "yes" for "--rm" flag: strconv.ParseBool: parsing "yes": invalid syntax'),
    (["--blkio-weight", "70000", "busybox"],
     'invalid argument "70000" for "--blkio-weight" flag: strconv.ParseUint: parsing "70000": value out of range'),
    (["---x"], "bad flag syntax: ---x"),
])
def test_flag_errors_are_dockers(argv, message):
    """Docker CLI 28's form (the reference transcript's `docker run -m 10XB`)."""
    e = err(RUN, argv)
    assert e.message == (f"{message}\n\nUsage:  hutch run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
                         "Run 'hutch run --help' for more information")
    assert e.code == 125


def test_int_error_names_short_and_long():
    e = err(STOP, ["-t", "x", "c"])
    assert e.message.startswith('invalid argument "x" for "-t, --time" flag: strconv.ParseInt: '
                                'parsing "x": invalid syntax\n\n')


def test_duration_flag():
    assert LOGS.parse(["--wait", "1m30s", "c"])[0]["wait"] == 90.0
    e = err(LOGS, ["--wait", "10", "c"])
    assert 'time: missing unit in duration "10"' in e.message


def test_requires_at_least_one_argument(capsys):
    rm = Command("rm", "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
                 [Flag("force", "f")], min_args=1)
    e = err(rm, [])
    assert e.message == ('"hutch rm" requires at least 1 argument.\nSee \'hutch rm --help\'.\n\n'
                         "Usage:  hutch rm [OPTIONS] CONTAINER [CONTAINER...]\n\n"
                         "Remove one or more containers")
    assert e.code == 1
    assert e.report() == 1
    assert capsys.readouterr().err.startswith('"hutch rm" requires at least 1 argument.')


def test_exactly_and_no_arguments():
    assert 'requires exactly 1 argument.' in err(LOGS, ["a", "b"]).message
    ps = Command("ps", "[OPTIONS]", "List containers", [], max_args=0)
    assert err(ps, ["x"]).message.startswith('"hutch ps" accepts no arguments.')


def test_prog_names_the_invoked_path():
    e = err(STOP, ["--nope"])
    assert "Run 'hutch stop --help' for more information" in e.message
    with pytest.raises(CommandLineError) as e2:
        STOP.parse(["--nope"], prog="hutch container stop")
    assert e2.value.message.endswith("Usage:  hutch container stop [OPTIONS] CONTAINER [CONTAINER...]\n\n"
                                     "Run 'hutch container stop --help' for more information")


def test_help_text(capsys):
    with pytest.raises(HelpRequested) as e:
        STOP.parse(["--help"])
    assert e.value.code == 0
    assert e.value.message == (
        "\nUsage:  hutch stop [OPTIONS] CONTAINER [CONTAINER...]\n\n"
        "Stop one or more running containers\n\nOptions:\n"
        "  -t, --time int   Seconds to wait for stop before killing it (default 10)\n")
    assert e.value.report() == 0 and "Usage:" in capsys.readouterr().out
    # -h is hostname for run, help elsewhere
    assert RUN.parse(["-h", "box", "busybox"])[0]["hostname"] == "box"
    with pytest.raises(HelpRequested):
        STOP.parse(["-h"])


def test_help_lists_types():
    text = RUN.help_text()
    assert "  -e, --env list " in text and "      --name string " in text
    assert "  -d, --detach " in text


@pytest.mark.parametrize("text, value", [("10", 10), ("-5", -5), ("0x10", 16), ("010", 8),
                                         ("0b11", 3), ("1_000", 1000), ("+7", 7)])
def test_parse_int_like_go(text, value):
    assert parse_int(text) == value


@pytest.mark.parametrize("text", ["", "x", "1.5", "08", "1__0", "_1", "0x"])
def test_parse_int_rejects(text):
    with pytest.raises(ValueError, match="invalid syntax"):
        parse_int(text)


def test_parse_bool_and_duration():
    assert parse_bool("T") is True and parse_bool("0") is False
    assert parse_duration("1h2m3s") == 3723.0
    assert parse_duration("300ms") == pytest.approx(0.3)
    assert parse_duration("-1.5h") == -5400.0
    assert parse_duration("0") == 0.0
    with pytest.raises(ValueError, match='time: unknown unit "d" in duration "1d"'):
        parse_duration("1d")
    with pytest.raises(ValueError, match='time: invalid duration "x"'):
        parse_duration("x")


def test_help_sorts_flags_like_pflag():
    cmd = Command("rm", "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
                  [Flag("volumes", "v", help="Remove anonymous volumes associated with the container"),
                   Flag("force", "f", help="Force the removal of a running container (uses SIGKILL)"),
                   Flag("link", "l", help="Remove the specified link")], min_args=1)
    assert cmd.help_text().endswith(
        "Options:\n"
        "  -f, --force     Force the removal of a running container (uses SIGKILL)\n"
        "  -l, --link      Remove the specified link\n"
        "  -v, --volumes   Remove anonymous volumes associated with the container\n")
