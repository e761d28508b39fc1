"""v1 → v2 value conversion (shared/reference/cgroups.md)."""
import pytest

from hutch.cgroups import convert


@pytest.mark.parametrize("shares,weight", [
    (0, 0), (1, 1), (2, 1), (512, 59), (1024, 100), (2048, 174), (262144, 10000),
    (10 ** 6, 10000),
])
def test_cpu_shares_to_weight(shares, weight):
    assert convert.cpu_shares_to_weight(shares) == weight


def test_cpu_weight_is_monotonic():
    weights = [convert.cpu_shares_to_weight(s) for s in range(2, 262145, 97)]
    assert weights == sorted(weights)
    assert 1 <= min(weights) and max(weights) <= 10000


@pytest.mark.parametrize("quota,period,out", [
    (None, None, None), (0, 0, None), (150000, 100000, "150000 100000"),
    (-1, 100000, "max 100000"), (None, 50000, "max 50000"), (25000, None, "25000"),
])
def test_cpu_max(quota, period, out):
    assert convert.cpu_max(quota, period) == out


@pytest.mark.parametrize("swap,memory,out", [
    (None, None, None), (0, 200, None), (-1, 200, -1), (300, 200, 100), (200, 200, 0),
    (0, -1, -1),
])
def test_memory_swap_max(swap, memory, out):
    assert convert.memory_swap_max(swap, memory) == out


@pytest.mark.parametrize("swap,memory,msg", [
    (300, 0, "unable to set swap limit without memory limit"),
    (300, -1, "unable to set swap limit without memory limit"),
    (100, 200, r"memory\+swap limit should be >= memory limit"),
])
def test_memory_swap_max_errors(swap, memory, msg):
    with pytest.raises(ValueError, match=msg):
        convert.memory_swap_max(swap, memory)


@pytest.mark.parametrize("w,out", [(0, 0), (10, 1), (100, 910), (500, 4950), (1000, 10000)])
def test_blkio_weight_to_io_weight(w, out):
    assert convert.blkio_weight_to_io_weight(w) == out


def test_io_max_lines():
    bio = {"throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 20971520}],
           "throttleWriteBpsDevice": [{"major": 254, "minor": 0, "rate": 31457280}],
           "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
           "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 0}]}
    assert convert.io_max_lines(bio) == [
        "254:0 rbps=20971520", "254:0 wbps=31457280", "8:16 riops=100", "8:16 wiops=max"]


def test_limit_str():
    assert convert.limit_str(-1) == "max"
    assert convert.limit_str(50) == "50"
