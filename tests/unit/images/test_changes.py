import pytest

from hutch.images.changes import ChangeError, apply_changes


def test_json_and_shell_forms():
    cfg = apply_changes({}, ['CMD ["sh", "-c", "echo hi"]', "ENTRYPOINT /bin/run me"])
    assert cfg["Cmd"] == ["sh", "-c", "echo hi"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/run me"]


def test_env_label_expose_volume_workdir_user_stopsignal():
    cfg = apply_changes({"Env": ["A=1"]}, [
        'ENV A=2 B="two words"', "env C legacy value", 'LABEL a=b "c d"=e',
        "EXPOSE 80 53/udp 8000-8001", 'VOLUME ["/data", "/logs"]', "VOLUME /x /y",
        "WORKDIR /app", "WORKDIR sub", "USER nobody", "STOPSIGNAL SIGINT"])
    assert cfg["Env"] == ["A=2", "B=two words", "C=legacy value"]
    assert cfg["Labels"] == {"a": "b", "c d": "e"}
    assert set(cfg["ExposedPorts"]) == {"80/tcp", "53/udp", "8000/tcp", "8001/tcp"}
    assert set(cfg["Volumes"]) == {"/data", "/logs", "/x", "/y"}
    assert cfg["WorkingDir"] == "/app/sub"
    assert cfg["User"] == "nobody"
    assert cfg["StopSignal"] == "SIGINT"


def test_refuses_other_instructions():
    with pytest.raises(ChangeError, match="FROM is not a valid change command"):
        apply_changes({}, ["FROM busybox"])
    with pytest.raises(ChangeError):
        apply_changes({}, ["EXPOSE 80/xyz"])
