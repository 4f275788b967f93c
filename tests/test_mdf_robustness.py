"""Regression tests from the fuzzing campaign: crafted or damaged MDF files give one-line
MDFErrors naming the file and the field, quickly, without reading other files or allocating
memory for data that are not in the file."""
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from itertools import permutations

import h5py
import numpy as np
import pytest

import mdf_io
from mdf_io import (MDFError, MDFFormatError, MDFNotSupportedError, describe, read_measurement,
                    read_system_matrix)
from mdf_io.errors import one_line

from mdf_cases import calibration, check_error, measurement, set_dataset, sha256


def _fails(path, field=None, *, call=read_system_matrix, error=MDFFormatError, max_mb=20):
    """Assert that ``call(path)`` raises ``error`` naming ``field``, in one line, within 5 s,
    allocating less than ``max_mb`` MB, and that the file is unchanged."""
    before = sha256(path)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(error) as info:
            call(path)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 5
    assert peak < max_mb * 2 ** 20, f"{peak / 2 ** 20:.0f} MB allocated"
    assert check_error(info.value, path) == []
    if field:
        assert f"'{field}'" in str(info.value)
    assert sha256(path) == before
    return info.value


@pytest.fixture()
def cal(tmp_path):
    p = tmp_path / "cal.mdf"
    calibration(p)
    return p


# -- frequency selection in any order ----------------------------------------------------------

@pytest.mark.parametrize("order", list(permutations([4, 0, 2])))
@pytest.mark.parametrize("fast", [True, False])
def test_frequency_selection_in_any_order_reads_correctly(tmp_path, order, fast):
    p = tmp_path / "sel.mdf"
    data = calibration(p, selection=order, fast=fast)
    with h5py.File(p, "r") as f:
        snr = f["calibration/snr"][()]
    sm = read_system_matrix(p)
    expected = (data[:6] - data[6:].mean(0)).reshape(6, -1).T
    np.testing.assert_allclose(sm.matrix, expected)
    np.testing.assert_array_equal(sm.rows.frequency_index, np.tile(order, 2))
    np.testing.assert_array_equal(sm.snr, snr.ravel())
    np.testing.assert_allclose(sm.frequencies, np.tile(order, 2) / 4 * 1000.0)
    pick = sm.rows.take([5, 0, 3])
    part = read_system_matrix(p, rows=pick)
    np.testing.assert_allclose(part.matrix, expected[[5, 0, 3]])
    np.testing.assert_array_equal(part.snr, snr.ravel()[[5, 0, 3]])
    meas = read_measurement(p, rows=pick, subtract_background=False)
    np.testing.assert_allclose(meas.data, data[:6].reshape(6, -1)[:, [5, 0, 3]])


def test_duplicate_or_out_of_range_frequency_selection_is_refused(cal):
    set_dataset(cal, "measurement/frequencySelection", np.array([5, 1, 5]))
    assert "distinct" in str(_fails(cal, "/measurement/frequencySelection"))
    set_dataset(cal, "measurement/frequencySelection", np.array([5, 1, 6]))
    _fails(cal, "/measurement/frequencySelection")
    set_dataset(cal, "measurement/frequencySelection", np.array([5, 0, 3]))
    _fails(cal, "/measurement/frequencySelection")


# -- links and external storage ------------------------------------------------------------------

def test_external_storage_is_refused(tmp_path):
    p = tmp_path / "m.mdf"
    measurement(p, permutation=False)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(80, dtype=np.int16).tobytes())
    with h5py.File(p, "a") as f:
        del f["measurement/data"]
        f.create_dataset("measurement/data", shape=(5, 1, 2, 8), dtype=np.int16,
                         external=[(str(secret), 0, 160)])
    err = _fails(p, "/measurement/data", call=read_measurement)
    assert "external storage" in str(err)


@pytest.mark.parametrize("target", ["/etc/hostname", "other"])
def test_external_link_is_refused_even_to_a_valid_file(tmp_path, cal, target):
    if target == "other":
        calibration(tmp_path / "other.mdf")
        target = str(tmp_path / "other.mdf")
    set_dataset(cal, "measurement/data", h5py.ExternalLink(target, "/measurement/data"))
    assert "external link" in str(_fails(cal, "/measurement/data"))
    set_dataset(cal, "acquisition/receiver/bandwidth", h5py.ExternalLink(target, "/x"))
    _fails(cal, "/acquisition/receiver/bandwidth", call=describe)


def test_external_link_to_a_group_is_refused(tmp_path, cal):
    with h5py.File(cal, "a") as f:
        del f["calibration"]
        f["calibration"] = h5py.ExternalLink("/etc/hostname", "/calibration")
    _fails(cal, "/calibration")


def test_soft_link_loops_are_refused_and_plain_soft_links_followed(tmp_path, cal):
    with h5py.File(cal, "a") as f:
        f.move("measurement/data", "measurement/_stored")
        f["measurement/data"] = h5py.SoftLink("/measurement/_stored")
    expected = read_system_matrix(cal).matrix  # a soft link inside the file is fine
    assert expected.shape == (6, 6)
    with h5py.File(cal, "a") as f:
        del f["measurement/data"]
        f["measurement/data"] = h5py.SoftLink("/measurement/loop")
        f["measurement/loop"] = h5py.SoftLink("data")
    assert "soft-link loop" in str(_fails(cal, "/measurement/data"))


def test_virtual_dataset_is_refused(tmp_path, cal):
    other = tmp_path / "src.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros((1, 2, 3, 8), complex)
    layout = h5py.VirtualLayout(shape=(1, 2, 3, 8), dtype=complex)
    layout[:] = h5py.VirtualSource(str(other), "x", shape=(1, 2, 3, 8))
    with h5py.File(cal, "a") as f:
        del f["measurement/data"]
        f.create_virtual_dataset("measurement/data", layout)
    assert "virtual" in str(_fails(cal, "/measurement/data"))


# -- declared sizes ------------------------------------------------------------------------------

@pytest.mark.parametrize("name,value", [
    ("acquisition/receiver/numSamplingPoints", np.int64(2 ** 41)),
    ("acquisition/numFrames", np.int64(2 ** 28)),
    ("acquisition/numFrames", np.uint64(2 ** 64 - 1)),
    ("acquisition/numFrames", np.int64(0)),
    ("acquisition/numFrames", np.int64(-8)),
    ("acquisition/numPeriodsPerFrame", np.int64(-1)),
    ("acquisition/receiver/numChannels", np.int64(0)),
    ("acquisition/receiver/numSamplingPoints", np.int64(-8)),
    ("acquisition/receiver/bandwidth", np.float64(np.nan)),
    ("acquisition/receiver/bandwidth", np.float64(0.0)),
    ("acquisition/receiver/bandwidth", np.float64(-1000.0)),
    ("calibration/size", np.array([0, 2, 1])),
    ("calibration/size", np.array([-3, -2, 1])),
    ("calibration/size", np.array([2 ** 40, 2 ** 40, 2 ** 40])),
    ("calibration/size", np.array([2 ** 62, 2 ** 62, 4], np.int64)),
])
def test_declared_sizes_are_checked(cal, name, value):
    set_dataset(cal, name, value)
    err = _fails(cal, "/" + name)
    assert "/" + name in str(err)
    _fails(cal, "/" + name, call=describe)


@pytest.mark.parametrize("name", ["measurement/isFastFrameAxis", "measurement/isBackgroundFrame",
                                  "measurement/frequencySelection", "calibration/snr", "version",
                                  "measurement/data"])
def test_huge_declared_arrays_are_not_allocated(cal, name):
    with h5py.File(cal, "a") as f:
        dtype = f[name].dtype
        del f[name]
        f.create_dataset(name, shape=(2 ** 40,), dtype=dtype, chunks=(4096,))
    _fails(cal, "/" + name)


def test_data_never_written_is_refused(cal):
    with h5py.File(cal, "a") as f:
        shape, dtype = f["measurement/data"].shape, f["measurement/data"].dtype
        del f["measurement/data"]
        f.create_dataset("measurement/data", shape=shape, dtype=dtype)  # never written
    assert "never written" in str(_fails(cal, "/measurement/data"))


def test_zero_voxels_and_processed_time_domain(tmp_path, cal):
    with h5py.File(cal, "a") as f:
        f["measurement/isBackgroundFrame"][...] = 1
    _fails(cal, "/calibration/size")
    p = tmp_path / "m.mdf"
    measurement(p)
    set_dataset(p, "acquisition/receiver/numSamplingPoints", np.int64(16))
    _fails(p, "/measurement/data", call=read_measurement, error=MDFNotSupportedError)


# -- damaged content -----------------------------------------------------------------------------

def test_corrupt_compressed_chunk(tmp_path):
    p = tmp_path / "gz.mdf"
    calibration(p, compression="gzip")
    with h5py.File(p, "r") as f:
        info = f["measurement/data"].id.get_chunk_info(0)
    with open(p, "r+b") as fh:
        fh.seek(info.byte_offset + 8)
        fh.write(b"\x00\xff" * 16)
    err = _fails(p, "/measurement/data")
    assert "read error" in str(err)


@pytest.mark.parametrize("name", ["measurement/isFastFrameAxis", "acquisition/receiver/bandwidth",
                                  "version", "calibration/size", "measurement/data",
                                  "measurement/isBackgroundFrame", "calibration/snr"])
def test_group_where_a_dataset_belongs(cal, name):
    with h5py.File(cal, "a") as f:
        del f[name]
        f.create_group(name)
    _fails(cal, "/" + name)


def test_dataset_where_a_group_belongs(cal):
    with h5py.File(cal, "a") as f:
        del f["acquisition/receiver"]
        f["acquisition/receiver"] = 3
    _fails(cal, "/acquisition/receiver")


@pytest.mark.parametrize("name,value", [
    ("acquisition/numFrames", np.complex128(8 + 1j)),
    ("acquisition/numFrames", "eight"),
    ("acquisition/receiver/bandwidth", "wide"),
    ("acquisition/receiver/bandwidth", np.array([1000.0, 2.0])),
    ("measurement/isFastFrameAxis", np.int8(2)),
    ("measurement/isFastFrameAxis", "yes"),
    ("version", np.int64(2)),
    ("version", np.void(b"2.1.0")),
    ("version", np.array([b"2.\xff\xfe"], dtype="S4")),
    ("scanner/name", np.array(b"\xc3\x28", dtype="S2")),
    ("calibration/method", "bogus"),
    ("calibration/size", np.array([3.0, 2.0, 1.0])),
    ("calibration/fieldOfView", np.array([np.nan, 0.0, 0.0])),
    ("measurement/data", np.ones((1, 2, 3, 8))),
    ("measurement/data", np.array([b"x"] * 48).reshape(1, 2, 3, 8)),
    ("tracer/name", np.array([1.5])),
    ("study/number", np.array([1, 2])),
])
def test_wrong_value_types_name_the_field(cal, name, value):
    set_dataset(cal, name, value)
    _fails(cal, "/" + name)


def test_vlen_invalid_utf8_string(cal):
    with h5py.File(cal, "a") as f:
        del f["scanner/operator"]
        f.create_dataset("scanner/operator", data=b"\xff\xfe", dtype=h5py.string_dtype("utf-8"))
    _fails(cal, "/scanner/operator")


def test_pydantic_errors_become_one_line_format_errors(cal):
    set_dataset(cal, "calibration/method", "bogus")
    err = _fails(cal, "/calibration/method")
    assert "https://" not in str(err) or "\n" not in str(err)


def test_error_messages_collapse_whitespace():
    err = MDFFormatError("f.mdf", "/a", "one\n  two", "three\r\n\tfour " + "x" * 1000)
    assert "\n" not in str(err) and "one two" in str(err) and "three four" in str(err)
    assert len(str(err)) < 700
    assert one_line("a \n b") == "a b"


# -- non-regular files ---------------------------------------------------------------------------

@pytest.mark.parametrize("call", [read_system_matrix, read_measurement, describe, mdf_io.MDFFile])
def test_fifo_is_refused_immediately(tmp_path, call):
    fifo = tmp_path / "pipe.mdf"
    os.mkfifo(fifo)
    result = {}

    def run():
        try:
            call(fifo)
        except BaseException as exc:  # noqa: BLE001
            result["err"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(5)
    if t.is_alive():  # unblock the thread before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("reading a FIFO blocked")
    assert isinstance(result["err"], MDFFormatError) and "regular file" in str(result["err"])


def test_cli_info_on_fifo_and_directory_returns_quickly(tmp_path):
    fifo = tmp_path / "pipe.mdf"
    os.mkfifo(fifo)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for target in (fifo, tmp_path):
        r = subprocess.run([sys.executable, "-m", "mpirecon.cli.main", "info", str(target)],
                           capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode != 0 and "regular" in r.stderr


@pytest.mark.parametrize("make", ["missing", "directory", "text", "truncated"])
def test_unreadable_inputs(tmp_path, cal, make):
    p = tmp_path / "x.mdf"
    if make == "directory":
        p.mkdir()
    elif make == "text":
        p.write_text("not hdf5\n")
    elif make == "truncated":
        p.write_bytes(cal.read_bytes()[:3000])
    for call in (read_system_matrix, read_measurement, describe):
        with pytest.raises(MDFError) as info:
            call(p)
        if make != "missing" and make != "directory":
            assert check_error(info.value, p) == []


def test_corrupt_string_heap_is_refused_not_looped_on(cal):
    """A zero-sized free-space object in the global heap made HDF5 loop forever reading /version."""
    with h5py.File(cal, "r") as f:
        ds = f["version"]
        offset, (addr_size, len_size) = ds.id.get_offset(), f.id.get_create_plist().get_sizes()
    blob = bytearray(cal.read_bytes())
    heap = int.from_bytes(blob[offset + 4:offset + 4 + addr_size], "little")
    assert blob[heap:heap + 4] == b"GCOL"
    size = int.from_bytes(blob[heap + 8:heap + 8 + len_size], "little")
    p = 8 + len_size
    while int.from_bytes(blob[heap + p:heap + p + 2], "little") != 0:  # walk to the free space
        obj = int.from_bytes(blob[heap + p + 8:heap + p + 8 + len_size], "little")
        p += 8 + len_size + -(-obj // 8) * 8
    assert p < size
    blob[heap + p + 8:heap + p + 8 + len_size] = bytes(len_size)
    cal.write_bytes(bytes(blob))
    code = ("import sys, mdf_io\n"
            "try:\n    mdf_io.describe(sys.argv[1])\n"
            "except mdf_io.MDFFormatError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code, str(cal)], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert "/version" in r.stdout and "heap" in r.stdout, r.stdout + r.stderr
