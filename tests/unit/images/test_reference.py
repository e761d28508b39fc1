import pytest

from hutch.images import reference as refs


@pytest.mark.parametrize("given,full,familiar", [
    ("busybox", "docker.io/library/busybox", "busybox"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("progrium/stress", "docker.io/progrium/stress", "progrium/stress"),
    ("index.docker.io/library/busybox:latest", "docker.io/library/busybox:latest",
     "busybox:latest"),
    ("localhost:5000/app:v1", "localhost:5000/app:v1", "localhost:5000/app:v1"),
    ("localhost/app", "localhost/app", "localhost/app"),
    ("quay.io/a/b/c:t", "quay.io/a/b/c:t", "quay.io/a/b/c:t"),
    ("busybox@sha256:" + "a" * 64, "docker.io/library/busybox@sha256:" + "a" * 64,
     "busybox@sha256:" + "a" * 64),
    ("127.0.0.1:5000/x:1@sha256:" + "b" * 64, "127.0.0.1:5000/x:1@sha256:" + "b" * 64,
     "127.0.0.1:5000/x:1@sha256:" + "b" * 64),
])
def test_normalisation(given, full, familiar):
    r = refs.parse(given)
    assert str(r) == full
    assert r.familiar() == familiar


def test_default_tag():
    assert str(refs.parse_tagged("busybox")) == "docker.io/library/busybox:latest"
    assert refs.parse_tagged("busybox@sha256:" + "c" * 64).tag is None


@pytest.mark.parametrize("bad,msg", [
    ("BadName", "invalid reference format: repository name (library/BadName) must be lowercase"),
    ("user/BadName:tag", "invalid reference format: repository name (user/BadName) must be "
     "lowercase"),
    ("busybox:", "invalid reference format"),
    ("bus box", "invalid reference format"),
    ("busybox@sha256:abc", "invalid reference format"),
    ("a" * 64, "invalid repository name (" + "a" * 64 + "), cannot specify 64-byte "
     "hexadecimal strings"),
    ("-bad", "invalid reference format"),
    ("", "invalid reference format"),
])
def test_errors_use_dockers_wording(bad, msg):
    with pytest.raises(refs.InvalidReference) as e:
        refs.parse(bad)
    assert str(e.value) == msg


def test_uppercase_first_component_is_a_registry_host():
    r = refs.parse("Registry/app")
    assert r.domain == "Registry" and r.path == "app"
