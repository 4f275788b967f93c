"""Sparsity-transformed (DCT-compressed) calibrations: written from a known matrix, read back."""
import h5py
import numpy as np
import pytest

import mdf_io
from mdf_io import MDFFormatError, MDFNotSupportedError
from mdf_io.sparsity import TRANSFORMS, compress_rows, expand_rows
from mpirecon.cli.main import main
from mpirecon.io.loading import load_system_matrix


@pytest.fixture(scope="module")
def cal3d():
    from mpirecon.simulation.scanner import scanner_3d
    from mpirecon.simulation.system_matrix import simulate_calibration

    sim = simulate_calibration(scanner_3d((5, 4, 3), num_frequencies=40))
    return sim


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_all_coefficients_read_back_exactly(cal3d, tmp_path, name):
    cal = cal3d.calibration
    path = tmp_path / "c.mdf"
    mdf_io.write_system_matrix(path, cal, sparsity=(name, cal.num_voxels), background=cal3d.background_frames,
                               background_corrected=False)
    back = mdf_io.read_system_matrix(path, subtract_background=False)
    np.testing.assert_allclose(back.matrix, cal.matrix, rtol=0, atol=1e-6 * np.abs(cal.matrix).max())  # complex64
    assert back.grid == cal.grid and np.array_equal(back.rows.keys, cal.rows.keys)
    with h5py.File(path) as f:  # the file is what MDF 2.1 describes
        assert f["measurement/isSparsityTransformed"][()] == 1
        assert f["measurement/data"].shape == (1, 3, 40, cal.num_voxels + cal3d.background_frames.shape[0])
        assert f["measurement/subsamplingIndices"].shape == (1, 3, 40, cal.num_voxels)


def test_kept_coefficients_give_the_truncated_matrix_and_selection_reads_only_kept_rows(cal3d, tmp_path):
    cal = cal3d.calibration
    path = tmp_path / "c.mdf"
    mdf_io.write_system_matrix(path, cal, sparsity=("DCT-IV", 12))
    coeff, idx = compress_rows(cal.matrix, cal.grid, "DCT-IV", 12)
    expected = expand_rows(coeff, idx, cal.grid, "DCT-IV")
    np.testing.assert_allclose(mdf_io.read_system_matrix(path).matrix, expected, atol=1e-6 * np.abs(expected).max())
    assert np.linalg.norm(expected - cal.matrix) < 0.9 * np.linalg.norm(cal.matrix)  # a real approximation
    sel = load_system_matrix(path, snr_threshold=2.0)
    keep = cal.snr > 2.0
    np.testing.assert_allclose(sel.matrix, expected[keep], atol=1e-6 * np.abs(expected).max())
    assert main(["info", str(path)]) == 0


def test_bad_compressed_files_get_one_line_errors(cal3d, tmp_path, capsys):
    cal = cal3d.calibration
    path = tmp_path / "c.mdf"
    mdf_io.write_system_matrix(path, cal, sparsity=("DCT-II", 6))
    with h5py.File(path, "a") as f:
        del f["measurement/sparsityTransformation"]
        f["measurement/sparsityTransformation"] = "wavelet"
    with pytest.raises(MDFNotSupportedError, match="sparsityTransformation"):
        mdf_io.read_system_matrix(path)
    mdf_io.write_system_matrix(path, cal, sparsity=("DCT-II", 6), overwrite=True)
    with h5py.File(path, "a") as f:
        idx = f["measurement/subsamplingIndices"][()]
        idx[0, 0, 0, 0] = cal.num_voxels + 5
        f["measurement/subsamplingIndices"][()] = idx
    with pytest.raises(MDFFormatError, match="subsamplingIndices"):
        mdf_io.read_system_matrix(path)
    assert main(["run", str(path), "--sm", str(path), "--method", "pinv", "-o", str(tmp_path / "r.mdf")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) <= 2
    with pytest.raises(mdf_io.MDFWriteError, match="sparsityTransformation"):
        mdf_io.write_system_matrix(tmp_path / "w.mdf", cal, sparsity=("DCT-V", 6))


def test_selected_rows_are_read_in_blocks_with_progress(cal3d, tmp_path, monkeypatch):
    import mdf_io.spectra

    cal = cal3d.calibration
    path = tmp_path / "chunked.mdf"
    mdf_io.write_system_matrix(path, cal)
    whole = load_system_matrix(path, snr_threshold=2.0)
    monkeypatch.setattr(mdf_io.spectra, "READ_BLOCK_BYTES", 1)  # one frequency (or one chunk) per read
    calls = []
    blocked = mdf_io.read_system_matrix(path, rows=whole.rows, progress=lambda done, total: calls.append((done, total)))
    np.testing.assert_array_equal(blocked.matrix, whole.matrix)
    assert len(calls) > 1 and calls[-1][0] == calls[-1][1] and all(a[0] < b[0] for a, b in zip(calls, calls[1:]))


def test_frequency_blocks_keep_hdf5_chunks_whole(tmp_path, monkeypatch):
    import mdf_io.spectra as spectra

    with h5py.File(tmp_path / "c.h5", "w") as f:
        ds = f.create_dataset("d", shape=(1, 2, 40, 10), dtype="c8", chunks=(1, 2, 8, 10))
        monkeypatch.setattr(spectra, "READ_BLOCK_BYTES", 1)
        uk = np.array([0, 3, 7, 8, 9, 20, 39])
        blocks = spectra._frequency_blocks(ds, uk, fast=True)
    assert [b.tolist() for b in blocks] == [[0, 3, 7], [8, 9], [20], [39]]  # chunks of 8 along K
    np.testing.assert_array_equal(np.concatenate(blocks), uk)
