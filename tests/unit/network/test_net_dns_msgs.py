"""DNS wire format of the embedded server (no root)."""
import socket
import struct

from hutch.network import dns


def query(name: str, qtype: int = 1, qid: int = 0x1234) -> bytes:
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return q + struct.pack("!HH", qtype, 1)


def test_parse_query():
    qid, flags, name, qtype, end = dns.parse_query(query("Web.Net", 28))
    assert (qid, name, qtype, end) == (0x1234, "web.net", 28, len(query("Web.Net", 28)))
    assert dns.parse_query(b"\0" * 5) is None
    assert dns.parse_query(query("x")[:-2]) is None


def test_answer_a_records():
    q = query("web")
    end = dns.parse_query(q)[4]
    r = dns.answer(q, end, ["10.0.0.2", "10.0.0.3"])
    qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", r)
    assert (qid, qd, an) == (0x1234, 1, 2) and flags & 0x8000 and flags & 0x0100 and flags & 0xF == 0
    assert r[end:end + 2] == b"\xc0\x0c" and r[-4:] == socket.inet_aton("10.0.0.3")
    assert struct.unpack_from("!H", dns.answer(q, end, [], rcode=3), 2)[0] & 0xF == 3


def test_server_lookup_from_endpoint_records(tmp_path):
    import json
    (tmp_path / "n1").mkdir()
    (tmp_path / "n1" / "endpoints.json").write_text(json.dumps({
        "a" * 64: {"name": "web", "ip": "10.0.0.2", "aliases": ["www"]},
        "b" * 64: {"name": "cli", "ip": "10.0.0.3", "aliases": []}}))
    (tmp_path / "n1" / "network.json").write_text(json.dumps({"Name": "Front"}))
    (tmp_path / "n2").mkdir()
    (tmp_path / "n2" / "endpoints.json").write_text(json.dumps({
        "c" * 64: {"name": "other", "ip": "10.1.0.2", "aliases": []}}))
    (tmp_path / "n2" / "network.json").write_text(json.dumps({"Name": "back"}))
    s = dns.Server(str(tmp_path / "sock"), str(tmp_path))
    assert s.lookup("b" * 64, "www") == ["10.0.0.2"]
    assert s.lookup("b" * 64, "a" * 12) == ["10.0.0.2"]
    assert s.lookup("b" * 64, "www.front") == ["10.0.0.2"]
    assert s.lookup("b" * 64, "other") is None
    assert s.lookup("c" * 64, "web") is None
    assert s.lookup_ptr("b" * 64, "10.0.0.2") == "web.front"
    assert s.lookup_ptr("c" * 64, "10.0.0.2") is None


def test_ptr_answer():
    assert dns.reverse_ip("2.0.18.172.in-addr.arpa") == "172.18.0.2"
    assert dns.reverse_ip("example.com") is None
    q = query("2.0.18.172.in-addr.arpa", 12)
    end = dns.parse_query(q)[4]
    r = dns.answer(q, end, [], ptr="web.front")
    assert struct.unpack_from("!H", r, 6)[0] == 1
    assert r.endswith(b"\x03web\x05front\x00")
