from hutch.cli.main import main
from hutch.paths import Paths


def test_unknown_command_is_125(capsys):
    assert main(["nosuch"]) == 125
    assert "'nosuch' is not a hutch command" in capsys.readouterr().err


def test_root_moves_state(tmp_path):
    p = Paths.from_root(str(tmp_path))
    assert p.root == str(tmp_path) and p.run == str(tmp_path / "run")
    assert p.runtime_state.startswith(str(tmp_path))
