import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mdf_io
from mdf_io import (MDFFormatError, MDFHeader, MDFMismatchError, MDFNotSupportedError, MDFWriteError, RowIndex,
                    SystemMatrix, read_measurement, read_reconstruction, read_system_matrix, write_mdf,
                    write_measurement, write_reconstruction, write_system_matrix)


def _header(v=16, c=2, calib=None):
    h = MDFHeader()
    h.acquisition.receiver.num_sampling_points = v
    h.acquisition.receiver.num_channels = c
    h.acquisition.receiver.bandwidth = 1000.0
    h.calibration = calib
    return h


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 5), j=st.integers(1, 2), c=st.integers(1, 3), v=st.sampled_from([8, 10, 16]),
       fourier=st.booleans(), fast=st.booleans(), perm=st.booleans(), nbg=st.integers(0, 2),
       select=st.booleans(), dtype=st.sampled_from(["float32", "float64", "int16"]))
def test_measurement_round_trip_all_layouts(tmp_path_factory, n, j, c, v, fourier, fast, perm, nbg, select, dtype):
    rng = np.random.default_rng(n * 100 + v)
    k_full = v // 2 + 1
    total = n + nbg
    if fourier:
        ksel = np.sort(rng.choice(k_full, size=max(1, k_full // 2), replace=False)) if select else None
        kk = k_full if ksel is None else ksel.size
        data = rng.normal(size=(total, j, c, kk)) + 1j * rng.normal(size=(total, j, c, kk))
    else:
        ksel = None
        data = (rng.normal(size=(total, j, c, v)) * 100).astype(dtype)
    is_bg = np.zeros(total, bool)
    is_bg[n:] = True
    permutation = rng.permutation(total) if perm else None
    path = tmp_path_factory.mktemp("rt") / "m.mdf"
    write_mdf(path, _header(v, c), data, fourier=fourier, is_background_frame=is_bg, fast_frame_axis=fast,
              frequency_selection=ksel, frame_permutation=permutation)
    with mdf_io.MDFFile(path) as f:
        spectra = f.read_spectra()
        assert f.layout.fast_frame_axis == fast
        np.testing.assert_array_equal(f.layout.is_background_frame, is_bg)
    expected = data if fourier else np.fft.rfft(data.astype(np.float64), axis=-1)
    np.testing.assert_allclose(spectra, expected, rtol=1e-12, atol=1e-9)
    meas = read_measurement(path, subtract_background=False)
    assert meas.data.shape == (n, j * c * (expected.shape[-1]))
    np.testing.assert_allclose(meas.data, expected[:n].reshape(n, -1), atol=1e-9)
    if nbg:
        corr = read_measurement(path)
        np.testing.assert_allclose(corr.data, (expected[:n] - expected[n:].mean(0)).reshape(n, -1), atol=1e-9)


def _sm(rng, p=6, k=5, c=2):
    rows = RowIndex.full(1, c, k)
    m = rng.normal(size=(c * k, p)) + 1j * rng.normal(size=(c * k, p))
    h = _header(v=2 * (k - 1), c=c)
    return SystemMatrix(matrix=m, rows=rows, frequencies=np.arange(c * k, dtype=float), snr=rng.uniform(0, 10, c * k),
                        grid=(3, 2, 1), fov=(0.03, 0.02, 0), center=(0, 0, 0), bandwidth=1000.0,
                        num_sampling_points=2 * (k - 1), header=h)


def test_system_matrix_round_trip_with_background(tmp_path, rng):
    sm = _sm(rng)
    bg = rng.normal(size=(3, sm.num_rows)) + 0j
    raw = SystemMatrix(**{**sm.__dict__, "matrix": sm.matrix + bg.mean(0)[:, None]})
    write_system_matrix(tmp_path / "sm.mdf", raw, background=bg, background_corrected=False)
    back = read_system_matrix(tmp_path / "sm.mdf")
    np.testing.assert_allclose(back.matrix, sm.matrix, atol=1e-12)
    np.testing.assert_allclose(back.snr, sm.snr)
    assert back.grid == (3, 2, 1) and back.background_corrected
    np.testing.assert_allclose(back.fov, [0.03, 0.02, 0])
    np.testing.assert_allclose(back.frequencies, np.tile(np.linspace(0, 1000, 5), 2))
    no_sub = read_system_matrix(tmp_path / "sm.mdf", subtract_background=False)
    np.testing.assert_allclose(no_sub.matrix, raw.matrix, atol=1e-12)
    assert back.header.general.uuid == sm.header.general.uuid


def test_measurement_object_round_trip(tmp_path, rng):
    sm = _sm(rng)
    meas = mdf_io.Measurement(data=rng.normal(size=(4, sm.num_rows)) + 1j, rows=sm.rows, frequencies=sm.frequencies,
                              bandwidth=1000.0, num_sampling_points=8, background=rng.normal(size=(2, sm.num_rows)) + 0j)
    write_measurement(tmp_path / "m.mdf", meas)
    back = read_measurement(tmp_path / "m.mdf", subtract_background=False)
    np.testing.assert_allclose(back.data, meas.data)
    np.testing.assert_allclose(back.background, meas.background)
    avg = read_measurement(tmp_path / "m.mdf", frames=[1, 2], average=True, subtract_background=False)
    np.testing.assert_allclose(avg.data[0], meas.data[1:3].mean(0))


def _handwritten(path, *, data=None, drop=None, snr=None):
    """A calibration file written with raw h5py from the specification (not our writer)."""
    rng = np.random.default_rng(3)
    j, c, k, n = 1, 2, 5, 6 + 2
    if data is None:
        data = rng.normal(size=(j, c, k, n)) + 1j * rng.normal(size=(j, c, k, n))
    with h5py.File(path, "w") as f:
        f["version"] = "2.1.0"
        f["uuid"] = "0b0e6a4c-7e2b-4e8e-9bb4-5b5b2c1c0a11"
        f["time"] = "2024-01-01T00:00:00"
        f["acquisition/numFrames"] = n
        f["acquisition/numPeriodsPerFrame"] = j
        f["acquisition/numAverages"] = 1
        f["acquisition/startTime"] = "2024-01-01T00:00:00"
        f["acquisition/receiver/bandwidth"] = 1.25e6
        f["acquisition/receiver/numChannels"] = c
        f["acquisition/receiver/numSamplingPoints"] = 8
        f["acquisition/receiver/unit"] = "V"
        f["calibration/size"] = np.array([3, 2, 1])
        f["calibration/fieldOfView"] = np.array([0.03, 0.02, 0.0])
        f["calibration/fieldOfViewCenter"] = np.zeros(3)
        f["calibration/method"] = "robot"
        f["calibration/snr"] = snr if snr is not None else np.arange(j * c * k, dtype=float).reshape(j, c, k)
        f["measurement/data"] = data
        for flag, val in (("isFourierTransformed", 1), ("isFastFrameAxis", 1), ("isBackgroundCorrected", 0),
                          ("isFrequencySelection", 0), ("isFramePermutation", 0), ("isSpectralLeakageCorrected", 0),
                          ("isTransferFunctionCorrected", 0), ("isSparsityTransformed", 0)):
            f["measurement/" + flag] = np.int8(val)
        f["measurement/isBackgroundFrame"] = np.array([0] * 6 + [1] * 2, np.int8)
        if drop:
            del f[drop]
    return data


def test_handwritten_calibration_reads(tmp_path):
    data = _handwritten(tmp_path / "hand.mdf")
    sm = read_system_matrix(tmp_path / "hand.mdf")
    expected = data[0, :, :, :6] - data[0, :, :, 6:].mean(-1, keepdims=True)
    np.testing.assert_allclose(sm.matrix, expected.reshape(10, 6))
    np.testing.assert_allclose(sm.snr, np.arange(10.0))
    assert sm.image_shape == (2, 3)
    assert "calibration" in mdf_io.describe(tmp_path / "hand.mdf")


def test_our_files_read_with_raw_h5py_minimal_sequence(tmp_path, small_sim):
    """The community's minimal reader: data J x C x K x N, drop bg frames, merge rows; measurement rfft."""
    small_sim.write(tmp_path / "sm.mdf")
    with h5py.File(tmp_path / "sm.mdf", "r") as f:
        d = f["/measurement/data"][()]
        bg = f["/measurement/isBackgroundFrame"][()].astype(bool)
        size = f["/calibration/size"][()]
        fg = d[..., ~bg] - d[..., bg].mean(-1, keepdims=True)
        s = fg[0].reshape(-1, fg.shape[-1])
    assert tuple(size) == (10, 8, 1)
    np.testing.assert_allclose(s, small_sim.calibration.matrix, rtol=1e-10, atol=1e-30)


@pytest.mark.parametrize("case,field", [
    ("missing", "/measurement/isFastFrameAxis"),
    ("shape", "/measurement/data"),
    ("nan", "/measurement/data"),
    ("snr", "/calibration/snr"),
])
def test_bad_input_errors_name_the_field(tmp_path, case, field):
    p = tmp_path / f"{case}.mdf"
    if case == "missing":
        _handwritten(p, drop="measurement/isFastFrameAxis")
    elif case == "shape":
        _handwritten(p, data=np.ones((1, 2, 4, 8), complex))
    elif case == "nan":
        d = np.ones((1, 2, 5, 8), complex)
        d[0, 0, 0, 0] = np.nan
        _handwritten(p, data=d)
    else:
        _handwritten(p, snr=np.ones((1, 2, 3)))
    with pytest.raises(MDFFormatError) as err:
        read_system_matrix(p)
    assert field in str(err.value) and str(p) in str(err.value)


def test_non_hdf5_truncated_and_wrong_dtype(tmp_path):
    (tmp_path / "x.mdf").write_text("not hdf5")
    with pytest.raises(MDFFormatError, match="HDF5"):
        read_system_matrix(tmp_path / "x.mdf")
    _handwritten(tmp_path / "ok.mdf")
    blob = (tmp_path / "ok.mdf").read_bytes()
    (tmp_path / "trunc.mdf").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(MDFFormatError):
        read_system_matrix(tmp_path / "trunc.mdf")
    _handwritten(tmp_path / "dt.mdf", data=np.ones((1, 2, 5, 8)))
    with pytest.raises(MDFFormatError, match="complex"):
        read_system_matrix(tmp_path / "dt.mdf")


def test_sparsity_flag_without_its_transformation_is_refused(tmp_path):
    _handwritten(tmp_path / "s.mdf")
    with h5py.File(tmp_path / "s.mdf", "a") as f:
        f["measurement/isSparsityTransformed"][()] = 1
    with pytest.raises(MDFNotSupportedError, match="sparsityTransformation|isSparsityTransformed"):
        read_system_matrix(tmp_path / "s.mdf")


def test_measurement_mismatch_is_reported(tmp_path, small_sm, rng):
    other = mdf_io.Measurement.from_arrays(rng.normal(size=(1, 5)) + 0j, num_sampling_points=64)
    with pytest.raises(MDFMismatchError, match="bandwidth"):
        other.matched_to(small_sm)


def test_writer_refuses_overwrite_and_leaves_no_partial_file(tmp_path, rng):
    sm = _sm(rng)
    write_system_matrix(tmp_path / "a.mdf", sm)
    before = (tmp_path / "a.mdf").read_bytes()
    with pytest.raises(MDFWriteError, match="exist"):
        write_system_matrix(tmp_path / "a.mdf", sm)
    assert (tmp_path / "a.mdf").read_bytes() == before
    bad = SystemMatrix(**{**sm.__dict__, "matrix": sm.matrix * np.nan})
    with pytest.raises(MDFWriteError, match="finite"):
        write_system_matrix(tmp_path / "b.mdf", bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mdf"]


def test_reconstruction_round_trip(tmp_path, rng):
    rec = mdf_io.Reconstruction(images=rng.random((2, 4, 5)), grid=(5, 4, 1), fov=np.array([0.02, 0.016, 0]),
                                center=np.zeros(3), method="pinv", parameters={"lam": 0.1})
    write_reconstruction(tmp_path / "r.mdf", rec)
    back = read_reconstruction(tmp_path / "r.mdf")
    np.testing.assert_allclose(back.images, rec.images)
    assert back.method == "pinv" and back.parameters == {"lam": 0.1}
    assert "reconstruction" in mdf_io.describe(tmp_path / "r.mdf")


def test_lazy_subset_reads_only_requested_frequencies(tmp_path, small_sim):
    small_sim.write(tmp_path / "sm.mdf")
    rows = small_sim.calibration.rows.take(np.arange(40, 60))
    sm = read_system_matrix(tmp_path / "sm.mdf", rows=rows)
    np.testing.assert_allclose(sm.matrix, small_sim.calibration.matrix[40:60], rtol=1e-10, atol=1e-30)


def test_fingerprint_survives_mdf_round_trip_but_not_gain(tmp_path, small_sim):
    small_sim.write(tmp_path / "sm.mdf")
    back = read_system_matrix(tmp_path / "sm.mdf")
    assert back.fingerprint() == small_sim.calibration.fingerprint()
    scaled = small_sim.calibration.take_rows(np.arange(small_sim.calibration.num_rows))
    scaled.matrix = scaled.matrix * 1.001
    assert scaled.fingerprint() != back.fingerprint()


def test_read_system_matrix_from_open_file_matches_path(tmp_path, small_sim):
    small_sim.write(tmp_path / "sm.mdf")
    with mdf_io.MDFFile(tmp_path / "sm.mdf") as mdf:
        rows = mdf.available_rows().take(np.arange(10, 30))
        from_open = read_system_matrix(mdf, rows=rows)
        assert mdf.h5.id.valid  # left open
    from_path = read_system_matrix(tmp_path / "sm.mdf", rows=rows)
    np.testing.assert_array_equal(from_open.matrix, from_path.matrix)
    np.testing.assert_array_equal(from_open.snr, from_path.snr)


def test_schema_table_round_trips_every_header_field(tmp_path, rng):
    from mdf_io import schema
    sm = _sm(rng)
    h = sm.header.model_copy(deep=True)
    h.tracer = mdf_io.Tracer(name=["a", "b"], batch=["1", "2"], vendor=["v", "w"], volume=[1.0, 2.0],
                             concentration=[3.0, 4.0], solute=["Fe", "Fe"])
    h.acquisition.receiver.data_conversion_factor = [[2.0, 0.5]] * 2
    h.acquisition.receiver.induction_factor = [1.0, 2.0]
    h.calibration = mdf_io.Calibration(method="hybrid", size=(3, 2, 1), delta_sample_size=(1e-3, 1e-3, 0.0))
    with h5py.File(tmp_path / "h.h5", "w") as f:
        schema.write_header(f, h)
    with h5py.File(tmp_path / "h.h5", "r") as f:
        back = schema.read_header(f)
    assert back == h
    paths = {s.group.rstrip("/") + "/" + fl.name for s in schema.SECTIONS for fl in s.fields}
    assert "/acquisition/receiver/numSamplingPoints" in paths and "/calibration/size" in paths


def test_atomic_outputs_all_or_none_and_no_clobber(tmp_path):
    import os
    from mdf_io import atomic_output, atomic_outputs
    with atomic_output(tmp_path / "a.txt") as tmp:
        tmp.write_text("one")
    assert (tmp_path / "a.txt").read_text() == "one"
    assert oct((tmp_path / "a.txt").stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    with pytest.raises(MDFWriteError, match="exist"):
        with atomic_output(tmp_path / "a.txt") as tmp:
            tmp.write_text("two")
    with pytest.raises(RuntimeError):
        with atomic_outputs([tmp_path / "b.mdf", tmp_path / "b.png"]) as (t1, t2):
            t1.write_text("x")
            raise RuntimeError("boom")
    with pytest.raises(MDFWriteError, match="exist"):  # second name taken meanwhile: neither appears
        with atomic_outputs([tmp_path / "c.mdf", tmp_path / "c.png"]) as (t1, t2):
            (tmp_path / "c.png").write_text("someone else")
    assert not (tmp_path / "c.mdf").exists() and (tmp_path / "c.png").read_text() == "someone else"
    with atomic_outputs([tmp_path / "a.txt", tmp_path / "d.png"], overwrite=True) as (t1, t2):
        t1.write_text("new")
        t2.write_text("png")
    assert (tmp_path / "a.txt").read_text() == "new"
    for bad, match in ((tmp_path, "directory"), (tmp_path / "missing" / "x.mdf", "parent")):
        with pytest.raises(MDFWriteError, match=match):
            with atomic_output(bad):
                pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "c.png", "d.png"]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir()) and os.path.isfile(tmp_path / "d.png")


def test_atomic_output_cleans_up_on_sigterm(tmp_path):
    import subprocess
    import sys
    code = ("import os, signal, sys, time\n"
            "from mdf_io import atomic_output\n"
            "with atomic_output(sys.argv[1]) as tmp:\n"
            "    tmp.write_text('partial')\n"
            "    print('ready', flush=True)\n"
            "    time.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "out.mdf")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.terminate()
    assert proc.wait(timeout=20) == 143
    assert list(tmp_path.iterdir()) == []


def _umask():
    import os
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_fingerprint_is_computed_in_row_blocks_with_the_whole_matrix_hash(small_sim, monkeypatch):
    """The blocked fingerprint (memory: one block) is the hash of the whole quantised matrix, the
    value weights trained before the blocking recorded, for any block size."""
    import hashlib

    import mdf_io.containers as containers
    sm = small_sim.calibration
    m = np.asarray(sm.matrix, dtype=np.complex128)
    scale = float(np.max(np.abs(m)))
    q = np.round(m / scale * 2 ** 20)
    h = hashlib.sha256()
    for part in (q.real, q.imag):
        h.update(np.ascontiguousarray(part).astype(np.int64).tobytes())
    h.update(f"{scale:.6e}".encode())
    h.update(sm.rows.keys.tobytes())
    h.update(np.asarray(sm.grid, np.int64).tobytes())
    for entries in (1, 3 * sm.matrix.shape[1] + 5, 2 ** 30):
        monkeypatch.setattr(containers, "FINGERPRINT_BLOCK_ENTRIES", entries)
        assert sm.fingerprint() == h.hexdigest()
