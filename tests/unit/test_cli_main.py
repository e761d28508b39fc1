from hutch.cli.main import main
from hutch.paths import Paths


def test_unknown_command_is_125(capsys):
    assert main(["nosuch"]) == 125
    assert "'nosuch' is not a hutch command" in capsys.readouterr().err


def test_root_moves_state(tmp_path):
    p = Paths.from_root(str(tmp_path))
    assert p.root == str(tmp_path) and p.run == str(tmp_path / "run")
    assert p.runtime_state.startswith(str(tmp_path))


def test_group_path_is_named_in_flag_errors(capsys, tmp_path, monkeypatch):
    from hutch.cli import flags
    monkeypatch.setattr(flags, "invoked_path", None)    # main sets it for the process
    assert main(["--root", str(tmp_path), "container", "stop", "--nope"]) == 125
    err = capsys.readouterr().err
    assert err.startswith("unknown flag: --nope\n\nUsage:  hutch container stop [OPTIONS]"), err
    assert "Run 'hutch container stop --help'" in err
    assert main(["--root", str(tmp_path), "image", "list", "--nope"]) == 125
    assert "Usage:  hutch image ls [OPTIONS]" in capsys.readouterr().err
