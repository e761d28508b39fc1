"""Docker's -v / --mount / --tmpfs / --volumes-from parsing and its error wording."""
import pytest

from hutch.engine.volumes import (MountError, merge_tmpfs_options, parse_mount, parse_tmpfs,
                                  parse_volume, parse_volumes_from, ram_in_bytes, tmpfs_data,
                                  valid_mount_mode)


def test_bind_forms():
    s = parse_volume("/host:/ctr")
    assert (s.type, s.source, s.target, s.readonly, s.mode) == ("bind", "/host", "/ctr", False, "")
    assert s.create_source
    s = parse_volume("/host:/ctr:ro,Z")
    assert s.readonly and s.mode == "ro,Z"
    s = parse_volume("/h:/c:rshared")
    assert s.propagation == "rshared"


def test_relative_dot_path_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = parse_volume("./d:/c")
    assert s.type == "bind" and s.source == str(tmp_path / "d")


def test_named_and_anonymous():
    s = parse_volume("data:/var/lib/data:ro")
    assert (s.type, s.source, s.readonly) == ("volume", "data", True)
    s = parse_volume("/scratch")
    assert (s.type, s.source, s.target) == ("volume", "", "/scratch")
    assert parse_volume("data:/x:nocopy").nocopy is True


@pytest.mark.parametrize("raw,msg", [
    ("/foo:rw", "invalid volume specification: '/foo:rw'"),
    (":/x", "invalid volume specification: ':/x'"),
    ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
    ("/a:/b:xx", "invalid mode: xx"),
    ("/a:/b:ro,rw", "invalid mode: ro,rw"),
    ("/a:/", "invalid volume specification: '/a:/': invalid mount config for type \"bind\": "
             "invalid specification: destination can't be '/'"),
    ("/a:rel", "invalid volume specification: '/a:rel': invalid mount config for type "
               "\"bind\": invalid mount path: 'rel' mount path must be absolute"),
    ("/a:/b:nocopy", "invalid volume specification: '/a:/b:nocopy': invalid mount config for "
                     "type \"bind\": field VolumeOptions must not be specified"),
    ("v1:/b:shared", "invalid volume specification: 'v1:/b:shared': invalid mount config for "
                     "type \"volume\": field BindOptions must not be specified"),
])
def test_volume_errors(raw, msg):
    with pytest.raises(MountError) as e:
        parse_volume(raw)
    assert str(e.value) == msg
    assert not e.value.usage_error


def test_mount_forms():
    s = parse_mount("type=bind,source=/h,target=/c,readonly,bind-propagation=rslave")
    assert (s.type, s.source, s.target, s.readonly, s.propagation) == ("bind", "/h", "/c", True, "rslave")
    s = parse_mount("src=vol,dst=/d,volume-nocopy")
    assert (s.type, s.source, s.nocopy) == ("volume", "vol", True)
    s = parse_mount("type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770")
    assert s.tmpfs_size == 64 << 20 and s.tmpfs_mode == 0o1770
    assert tmpfs_data(s) == "mode=1770,size=64m"
    s = parse_mount('type=volume,target=/x,"volume-label=a=b",volume-opt=type=tmpfs,ro=false')
    assert s.volume_labels == {"a": "b"} and s.volume_opts == {"type": "tmpfs"}
    assert not s.readonly


@pytest.mark.parametrize("value,msg,usage", [
    ("type=bind,source=/h", "target is required", True),
    ("type=bind,target=/t,foo", "invalid field 'foo' must be a key=value pair", True),
    ("type=bind,target=/t,color=red", "unexpected key 'color' in 'color=red'", True),
    ("type=bind,target=/t,src=/h,volume-nocopy", "cannot mix 'volume-*' options with mount type 'bind'", True),
    ("type=volume,target=/t,tmpfs-size=1m", "cannot mix 'tmpfs-*' options with mount type 'volume'", True),
    ("type=tmpfs,target=/t,tmpfs-size=lots", "invalid value for tmpfs-size: lots", True),
    ("type=tmpfs,target=/t,tmpfs-mode=999", "invalid value for tmpfs-mode: 999", True),
    ("type=bind,target=/t,readonly=maybe", "invalid value for readonly: maybe", True),
])
def test_mount_flag_errors(value, msg, usage):
    with pytest.raises(MountError) as e:
        parse_mount(value)
    assert str(e.value) == f'invalid argument "{value}" for "--mount" flag: {msg}'
    assert e.value.usage_error is usage


@pytest.mark.parametrize("value,msg", [
    ("type=bind,target=/t", 'invalid mount config for type "bind": field Source must not be empty'),
    ("type=bind,src=rel,target=/t", "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
    ("type=bind,src=/h,target=/t,bind-propagation=sideways", 'invalid mount config for type "bind": invalid propagation mode: sideways'),
    ("type=volume,target=/t,readonly", 'invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes'),
    ("type=tmpfs,src=x,target=/t", 'invalid mount config for type "tmpfs": field Source must not be specified'),
    ("type=nfs,target=/t", 'invalid mount config for type "nfs": mount type unknown'),
    ("type=volume,target=/", "invalid mount config for type \"volume\": invalid specification: destination can't be '/'"),
])
def test_mount_daemon_errors(value, msg):
    with pytest.raises(MountError) as e:
        parse_mount(value)
    assert str(e.value) == msg
    assert not e.value.usage_error


def test_tmpfs():
    assert parse_tmpfs("/run") == ("/run", "")
    assert parse_tmpfs("/run:rw,size=64m,exec") == ("/run", "rw,size=64m,exec")
    with pytest.raises(MountError, match=r"Invalid tmpfs option \[\"bogus\"\]"):
        parse_tmpfs("/run:bogus")
    with pytest.raises(MountError, match="mount path must be absolute"):
        parse_tmpfs("run")
    assert merge_tmpfs_options(["noexec", "nosuid", "nodev", "rprivate", "exec", "size=1m",
                                "size=2m", "shared"]) == ["nosuid", "nodev", "exec", "size=2m", "shared"]


def test_volumes_from():
    assert parse_volumes_from("c1") == ("c1", "rw")
    assert parse_volumes_from("c1:ro") == ("c1", "ro")
    for bad in ("c1:shared", "c1:nocopy", "c1:xx"):
        with pytest.raises(MountError, match="invalid mode"):
            parse_volumes_from(bad)


def test_modes_and_sizes():
    assert valid_mount_mode("ro,z,rprivate,nocopy")
    assert not valid_mount_mode("z,Z")
    assert ram_in_bytes("1g") == 1 << 30 and ram_in_bytes("512k") == 512 << 10
    assert ram_in_bytes("100") == 100 and ram_in_bytes("1.5MiB") == 1572864


def test_mount_flag_for_the_cli_parser():
    from hutch.cli.flags import Command, CommandLineError, Flag
    from hutch.engine.volumes import mount_flag
    cmd = Command("run", "[OPTIONS] IMAGE", "Run", [Flag("mount", None, "list", [], parse=mount_flag)])
    opts, _ = cmd.parse(["--mount", "type=tmpfs,dst=/t", "img"])
    assert opts["mount"] == ["type=tmpfs,dst=/t"]
    with pytest.raises(CommandLineError) as e:
        cmd.parse(["--mount", "type=bind,src=/x", "img"])
    assert e.value.message.startswith('invalid argument "type=bind,src=/x" for "--mount" flag: target is required')
    # the daemon's checks are left for plan_mounts
    assert cmd.parse(["--mount", "type=bind,dst=/t", "img"])[0]["mount"] == ["type=bind,dst=/t"]


def test_host_config_mounts():
    from hutch.engine.volumes import host_config_mounts
    assert host_config_mounts([]) is None
    got = host_config_mounts(["type=bind,src=/h,dst=/c,ro,bind-propagation=rslave",
                              "src=v1,dst=/v,volume-nocopy,volume-label=a=b",
                              "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1777"])
    assert got == [
        {"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": True,
         "BindOptions": {"Propagation": "rslave"}},
        {"Type": "volume", "Source": "v1", "Target": "/v",
         "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"}}},
        {"Type": "tmpfs", "Source": "", "Target": "/t",
         "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o1777}},
    ]
