"""The volume store and mount planning on a temp root (no mounts: runs without root)."""
import json
import os

import pytest

from hutch.engine.volumes import MountError, MountPlan, plan_mounts, prepare_start, release_container
from hutch.engine.volumestore import NoSuchVolume, VolumeError, VolumeInUse, VolumeStore, match_filters
from hutch.paths import Paths


@pytest.fixture
def paths(tmp_path):
    p = Paths.from_root(str(tmp_path / "root"))
    os.makedirs(p.containers)
    return p


def container(paths, cid):
    os.makedirs(os.path.join(paths.containers, cid), exist_ok=True)
    return cid


def test_create_inspect_list_remove(paths):
    s = VolumeStore(paths)
    v = s.create("data", labels={"a": "b"}, options={})
    info = v.inspect()
    assert list(info) == ["CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"]
    assert info["Mountpoint"] == os.path.join(paths.volumes, "data", "_data")
    assert info["Labels"] == {"a": "b"} and info["Scope"] == "local"
    assert os.path.isdir(info["Mountpoint"])
    assert s.create("data").labels == {"a": "b"}          # existing: returned as is
    anon = s.create()
    assert len(anon.name) == 64 and anon.anonymous
    assert [v.name for v in s.list()] == sorted([anon.name, "data"])
    s.remove("data")
    with pytest.raises(NoSuchVolume, match="^get data: no such volume$"):
        s.remove("data")
    s.remove("data", force=True)
    assert not os.path.exists(os.path.join(paths.volumes, "data"))


@pytest.mark.parametrize("name,msg", [
    ("a", "create a: volume name is too short, names should be at least two alphanumeric characters"),
    ("x/y", 'create x/y: "x/y" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path'),
])
def test_bad_names(paths, name, msg):
    with pytest.raises(VolumeError) as e:
        VolumeStore(paths).create(name)
    assert str(e.value) == msg


def test_bad_options(paths):
    with pytest.raises(VolumeError, match='invalid option key: "foo"'):
        VolumeStore(paths).create("vv", options={"foo": "1"})
    with pytest.raises(VolumeError, match="quota"):
        VolumeStore(paths).create("vv", options={"size": "1g"})
    with pytest.raises(VolumeError, match='^create vv: missing required option: "device"$'):
        VolumeStore(paths).create("vv", options={"type": "tmpfs"})
    with pytest.raises(VolumeError, match='missing required option: "device"'):
        VolumeStore(paths).create("vv", options={"o": "size=1m"})


def test_in_use_until_container_gone(paths):
    s = VolumeStore(paths)
    cid = container(paths, "c" * 64)
    s.create("busy", ref=cid)
    with pytest.raises(VolumeInUse) as e:
        s.remove("busy", force=True)
    assert str(e.value) == f"remove busy: volume is in use - [{cid}]"
    os.rmdir(os.path.join(paths.containers, cid))     # container gone (crashed rm)
    s.remove("busy")


def test_filters(paths):
    s = VolumeStore(paths)
    s.create("used1", labels={"env": "prod"}, ref=container(paths, "1" * 64))
    s.create("free1", labels={"env": "dev", "x": ""})
    vols = {v.name: v for v in s.list()}
    pick = lambda f: sorted(n for n, v in vols.items() if match_filters(v, f))
    assert pick({"dangling": ["true"]}) == ["free1"]
    assert pick({"dangling": ["false"]}) == ["used1"]
    assert pick({"name": ["used"]}) == ["used1"]
    assert pick({"label": ["env=prod"]}) == ["used1"]
    assert pick({"label": ["x"]}) == ["free1"]
    assert pick({"driver": ["local"]}) == ["free1", "used1"]
    with pytest.raises(VolumeError, match="invalid filter 'dangling=maybe'"):
        pick({"dangling": ["maybe"]})
    with pytest.raises(VolumeError, match="invalid filter 'color'"):
        pick({"color": ["red"]})


def test_prune_keeps_used(paths):
    s = VolumeStore(paths)
    s.create("keep", ref=container(paths, "2" * 64))
    s.create("gone1")
    big = s.create("gone2")
    with open(os.path.join(big.mountpoint, "f"), "wb") as f:
        f.write(b"x" * 5000)
    removed, reclaimed = s.prune()
    assert sorted(removed) == ["gone1", "gone2"] and reclaimed == 5000
    assert [v.name for v in s.list()] == ["keep"]


def test_plan_precedence_and_records(paths, tmp_path):
    cid = container(paths, "a" * 64)
    host = tmp_path / "host"
    host.mkdir()
    plan = plan_mounts(paths, cid,
                       volumes=[f"{host}:/bind:ro", "named:/named", "/anon", "/img-dup"],
                       mounts=["type=tmpfs,dst=/t,tmpfs-size=1m", "type=volume,dst=/anon2"],
                       tmpfs=["/run:size=2m"], image_volumes=["/img", "/bind"])
    rec = json.loads(json.dumps(plan.record))
    again = MountPlan.from_record(rec)
    got = {m["Destination"]: m for m in again.docker_mounts()}
    assert set(got) == {"/bind", "/named", "/anon", "/img-dup", "/t", "/anon2", "/img"}
    assert got["/bind"] == {"Type": "bind", "Source": str(host), "Destination": "/bind",
                            "Mode": "ro", "RW": False, "Propagation": "rprivate"}
    assert got["/named"]["Mode"] == "z" and got["/named"]["Name"] == "named"
    assert got["/anon"]["Mode"] == "" and len(got["/anon"]["Name"]) == 64
    assert got["/t"] == {"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "",
                         "RW": True, "Propagation": ""}
    assert len(again.anonymous) == 4   # /anon, /img-dup, /anon2, /img
    s = VolumeStore(paths)
    assert all(s.get(n).refs == [cid] for n in again.volume_names)
    assert release_container(paths, cid, rec, remove_anonymous=True) == []
    assert [v.name for v in s.list()] == ["named"] and s.get("named").refs == []


def test_plan_errors_leave_nothing(paths, tmp_path):
    cid = container(paths, "b" * 64)
    with pytest.raises(MountError, match="^Duplicate mount point: /x$"):
        plan_mounts(paths, cid, volumes=["newvol:/x", "/anon", f"{tmp_path}:/x"])
    with pytest.raises(MountError, match="Duplicate mount point: /run"):
        plan_mounts(paths, cid, volumes=["v2:/run"], tmpfs=["/run"])
    with pytest.raises(MountError, match="bind source path does not exist: /nonexistent-h"):
        plan_mounts(paths, cid, volumes=["v3:/a"], mounts=["type=bind,src=/nonexistent-h,dst=/b"])
    assert VolumeStore(paths).list() == []


def test_volumes_from(paths, tmp_path):
    c1, c2 = container(paths, "1" * 64), container(paths, "2" * 64)
    p1 = plan_mounts(paths, c1, volumes=["shared:/data", f"{tmp_path}:/h"])
    p2 = plan_mounts(paths, c2, volumes_from=["first:ro"],
                     lookup=lambda ref: (c1, p1.record))
    got = {m["Destination"]: m for m in p2.docker_mounts()}
    assert got["/data"]["RW"] is False and got["/data"]["Mode"] == ""
    assert got["/h"]["Source"] == str(tmp_path)
    assert VolumeStore(paths).get("shared").refs == sorted([c1, c2])


def test_prepare_start_oci(paths, tmp_path):
    cid = container(paths, "d" * 64)
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc" / "app").mkdir(parents=True)
    (rootfs / "etc" / "app" / "conf").write_text("image content")
    os.chmod(rootfs / "etc" / "app", 0o750)
    newdir = tmp_path / "made" / "by-v"
    plan = plan_mounts(paths, cid, volumes=[f"{newdir}:/m", "cfg:/etc/app"],
                       mounts=["type=volume,src=nc,dst=/etc/app2,volume-nocopy"],
                       tmpfs=["/run:exec,size=1m"])
    oci = prepare_start(paths, plan.record, str(rootfs))
    by = {m["destination"]: m for m in oci}
    assert by["/m"] == {"destination": "/m", "type": "bind", "source": str(newdir),
                        "options": ["rbind", "rprivate"]}
    assert newdir.is_dir()
    assert by["/run"]["options"] == ["nosuid", "nodev", "rprivate", "exec", "size=1m"]
    vol = VolumeStore(paths).get("cfg").mountpoint
    assert open(os.path.join(vol, "conf")).read() == "image content"
    assert oct(os.stat(vol).st_mode & 0o7777) == oct(0o750)
    assert [len(m["destination"].split("/")) for m in oci] == sorted(len(m["destination"].split("/")) for m in oci)
    release_container(paths, cid, plan.record, remove_anonymous=True)


def test_container_being_created_holds_its_volumes(paths):
    s = VolumeStore(paths)
    cid = "9" * 64
    tmp = os.path.join(paths.containers, f".{cid}.creating")
    os.makedirs(tmp)
    with open(os.path.join(tmp, "creator"), "w") as f:
        from hutch.engine.store import proc_start_time
        f.write(f"{os.getpid()} {proc_start_time(os.getpid())}")
    s.create("fresh", ref=cid)
    with pytest.raises(VolumeInUse):
        s.remove("fresh")
    with open(os.path.join(tmp, "creator"), "w") as f:
        f.write("999999999 1")                        # its creator died (kill -9)
    s.remove("fresh")


def test_racing_creates_and_removes(paths):
    """Processes racing `create NAME --ref` and `volume rm NAME`: a volume that ends up
    referenced always exists (the lock makes create-with-ref and rm atomic)."""
    cids = [container(paths, f"{i:064x}") for i in range(8)]
    pids = []
    for i, cid in enumerate(cids):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                s = VolumeStore(paths)
                for _ in range(20):
                    if i % 2:
                        s.create("contended", ref=cid)
                        s.release("contended", cid)
                    else:
                        try:
                            s.remove("contended")
                        except (NoSuchVolume, VolumeInUse):
                            pass
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        pids.append(pid)
    assert all(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) == 0 for p in pids)
    s = VolumeStore(paths)
    s.create("contended", ref=cids[1])
    assert s.get("contended").refs == [cids[1]]
    assert not [n for n in os.listdir(paths.volumes) if n.startswith(".rm-")]


def test_record_or_whole_config(paths):
    cid = container(paths, "7" * 64)
    plan = plan_mounts(paths, cid, volumes=["rc:/x"])
    config = {"Config": {}, "HutchMounts": plan.record}
    assert MountPlan.from_record(config).volume_names == ["rc"] == plan.volume_names
    assert MountPlan.from_record({"HutchMounts": None}).mounts == []
    release_container(paths, cid, config)
    VolumeStore(paths).remove("rc")
