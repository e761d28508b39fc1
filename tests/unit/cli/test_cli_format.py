"""hutch.cli.format against the lines real Docker printed (shared/reference transcript)."""
import pytest

from hutch.cli import format as f

NOW = 1_800_000_000.0
HEADER = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]


def iso(seconds_before_now):
    return f.rfc3339nano(NOW - seconds_before_now)


@pytest.mark.parametrize("seconds, text", [
    (0.4, "Less than a second"), (1, "1 second"), (3, "3 seconds"), (59.9, "59 seconds"),
    (60, "About a minute"), (119, "About a minute"), (120, "2 minutes"), (3599, "59 minutes"),
    (3600, "About an hour"), (5399, "About an hour"), (5400, "2 hours"), (47 * 3600, "47 hours"),
    (48 * 3600, "2 days"), (13 * 86400, "13 days"), (14 * 86400, "2 weeks"),
    (59 * 86400, "8 weeks"), (60 * 86400, "2 months"), (729 * 86400, "24 months"),
    (730 * 86400, "2 years"),
])
def test_human_duration(seconds, text):
    assert f.human_duration(seconds) == text


def test_status_strings():
    running = {"Running": True, "StartedAt": iso(3), "FinishedAt": f.ZERO_TIME}
    assert f.status_string(running, NOW) == "Up 3 seconds"
    assert f.status_string(dict(running, StartedAt=iso(0.2)), NOW) == "Up Less than a second"
    assert f.status_string(dict(running, StartedAt=iso(130), Paused=True), NOW) == "Up 2 minutes (Paused)"
    restarting = {"Running": True, "Restarting": True, "ExitCode": 1, "StartedAt": iso(5),
                  "FinishedAt": iso(2)}
    assert f.status_string(restarting, NOW) == "Restarting (1) 2 seconds ago"
    exited = {"Running": False, "ExitCode": 137, "StartedAt": iso(20), "FinishedAt": iso(5)}
    assert f.status_string(exited, NOW) == "Exited (137) 5 seconds ago"
    assert f.status_string(dict(exited, FinishedAt=iso(0.5), ExitCode=1), NOW) == \
        "Exited (1) Less than a second ago"
    created = {"Running": False, "StartedAt": f.ZERO_TIME, "FinishedAt": f.ZERO_TIME}
    assert f.status_string(created, NOW) == "Created"
    assert f.status_string(dict(exited, Dead=True), NOW) == "Dead"
    assert f.status_string(dict(exited, Status="removing"), NOW) == "Removal In Progress"
    assert f.ago(NOW - 61, NOW) == "About a minute ago"


def test_timestamps():
    assert f.rfc3339nano(1_795_829_094_810_781_949) == "2026-11-28T01:24:54.810781949Z"
    assert f.rfc3339nano(1_795_829_094_810_000_000) == "2026-11-28T01:24:54.81Z"
    assert f.rfc3339nano(1_795_829_094_000_000_000) == "2026-11-28T01:24:54Z"
    assert f.rfc3339nano(None) == f.rfc3339nano(0) == "0001-01-01T00:00:00Z"
    assert f.to_unix("2026-11-28T01:24:54.5Z") == 1_795_829_094.5
    assert f.to_unix("2026-11-28T02:24:54+01:00") == 1_795_829_094.0
    assert f.is_zero_time("0001-01-01T00:00:00Z")
    assert f.created_at_string(1_795_829_094.7) == "2026-11-28 01:24:54 +0000 UTC"


def test_sizes_as_docker_stats_and_images():
    assert f.bytes_size(87_460_003) == "83.41MiB"
    assert f.bytes_size(200 * 1024 * 1024) == "200MiB"
    assert f.bytes_size(656 * 1024) == "656KiB"
    assert f.bytes_size(25_275_000_000) == "23.54GiB"
    assert f.human_size(736, 3) == "736B" and f.human_size(0, 3) == "0B"
    assert f.human_size(1_240_000, 3) == "1.24MB"
    assert f.human_size(83_410_000) == "83.41MB"
    assert f.percent(51.3849) == "51.38%"


def test_command_cell():
    assert f.ps_command(f.command_string("sh", ["-c", "while true; do sleep 0.2; done"])) == \
        '"sh -c \'while true; …"'
    assert f.ps_command(f.command_string("/usr/bin/stress", ["--verbose", "--cpu", "2"])) == \
        '"/usr/bin/stress --v…"'
    assert f.ps_command(f.command_string("sh", ["-c", "exit 42"])) == '"sh -c \'exit 42\'"'
    assert f.ps_command("sleep 1000") == '"sleep 1000"'
    assert f.ps_command(f.command_string("sh", ["-c", "sleep 2; exit 3"]), trunc=False) == \
        '"sh -c \'sleep 2; exit 3\'"'
    assert f.go_quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\x01é"'
    assert f.ellipsis("日本語日本語", 5) == "日本…"
    assert f.short_id("sha256:" + "ab" * 32) == "abababababab"


def test_ports():
    ports = [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
             {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]
    assert f.display_ports(ports) == "0.0.0.0:8080->80/tcp, :::8080->80/tcp"
    exposed = [{"PrivatePort": p, "Type": "tcp"} for p in (80, 81, 82, 443)]
    assert f.display_ports(exposed) == "80-82/tcp, 443/tcp"
    same = [{"IP": "0.0.0.0", "PrivatePort": p, "PublicPort": p, "Type": "tcp"} for p in (7, 8)]
    assert f.display_ports(same) == "0.0.0.0:7-8->7-8/tcp"
    assert f.display_ports([]) == ""


def test_ps_table_matches_transcript():
    rows = [
        ["a50a0d0aa52e", "busybox", f.ps_command("sleep 1000"), "1 second ago", "Up 1 second", "", "run_C"],
        ["900c07cc2876", "busybox", f.ps_command("true"), "1 second ago", "Created", "", "cr_C"],
        ["aa8e8f3f627b", "busybox", f.ps_command("sh -c 'exit 1'"), "1 second ago", "Exited (1) 1 second ago", "", "w3_C"],
        ["b360ed164ad6", "busybox", f.ps_command("sh -c 'exit 0'"), "2 seconds ago", "Exited (0) 1 second ago", "", "w2_C"],
        ["438e2e07fc8d", "busybox", f.ps_command("sh -c 'sleep 2; exit 3'"), "4 seconds ago", "Exited (3) 2 seconds ago", "", "w_C"],
        ["2586a5d5a654", "busybox", f.ps_command("sh -c 'while true; do sleep 0.2; done'"), "About a minute ago", "Up 50 seconds", "", "life_C"],
    ]
    assert f.table(rows, HEADER) == (
        "CONTAINER ID   IMAGE     COMMAND                  CREATED              STATUS                     PORTS     NAMES\n"
        "a50a0d0aa52e   busybox   \"sleep 1000\"             1 second ago         Up 1 second                          run_C\n"
        "900c07cc2876   busybox   \"true\"                   1 second ago         Created                              cr_C\n"
        "aa8e8f3f627b   busybox   \"sh -c 'exit 1'\"         1 second ago         Exited (1) 1 second ago              w3_C\n"
        "b360ed164ad6   busybox   \"sh -c 'exit 0'\"         2 seconds ago        Exited (0) 1 second ago              w2_C\n"
        "438e2e07fc8d   busybox   \"sh -c 'sleep 2; exi…\"   4 seconds ago        Exited (3) 2 seconds ago             w_C\n"
        "2586a5d5a654   busybox   \"sh -c 'while true; …\"   About a minute ago   Up 50 seconds                        life_C\n")


def test_empty_tables_and_stats_match_transcript():
    assert f.table([], HEADER) == \
        "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
    stats_header = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
                    "BLOCK I/O", "PIDS"]
    row = ["87037c0e337f", "mem_C", f.percent(51.38), f"{f.bytes_size(87_460_003)} / {f.bytes_size(200 << 20)}",
           f.percent(41.71), f"{f.human_size(736, 3)} / {f.human_size(0, 3)}", "0B / 0B", "2"]
    assert f.table([row], stats_header) == (
        "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O     BLOCK I/O   PIDS\n"
        "87037c0e337f   mem_C     51.38%    83.41MiB / 200MiB   41.71%    736B / 0B   0B / 0B     2\n")


def test_tabwriter_blocks_end_at_lines_without_tabs():
    text = "a\tb\nlonger-cell\tc\nplain line\nx\ty\n"
    assert f.tabwrite(text) == ("a             b\nlonger-cell   c\nplain line\n"
                                "x         y\n")
