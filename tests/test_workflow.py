"""Daily-workflow features end to end through the CLI: frames, export, provenance, umask, timing,
scanner consistency, transfer function, row handling, bench resume."""
import json
import os

import numpy as np
import pytest

import mdf_io
from mpirecon.cli.main import main
from mpirecon.io.frames import FrameSelectionError, parse_frames


@pytest.fixture(scope="module")
def wf(tmp_path_factory):
    d = tmp_path_factory.mktemp("wf")
    cwd = os.getcwd()
    os.chdir(d)
    try:
        assert main(["simulate", "system-matrix", "-o", "sm.mdf", "--grid", "10", "8"]) == 0
        assert main(["simulate", "measurement", "--sm", "sm.mdf", "--phantom", "shape", "--snr", "30",
                     "--frames", "6", "--background-frames", "4", "-o", "meas.mdf"]) == 0
    finally:
        os.chdir(cwd)
    return d


@pytest.fixture()
def at(wf, monkeypatch):
    monkeypatch.chdir(wf)
    return wf


def test_parse_frames_python_style():
    assert parse_frames("5", 10).tolist() == [5]
    assert parse_frames("0:4", 10).tolist() == [0, 1, 2, 3]
    assert parse_frames("0:10:3", 10).tolist() == [0, 3, 6, 9]
    assert parse_frames("0:2,5,-1", 10).tolist() == [0, 1, 5, 9]
    assert parse_frames("-3:", 10).tolist() == [7, 8, 9]
    assert parse_frames([1, -2], 10).tolist() == [1, 8]
    assert parse_frames(None, 10) is None
    for bad in ("10", "-11", "a", "0:0", "1:2:0", "0:20", ""):
        with pytest.raises(FrameSelectionError):
            parse_frames(bad, 10)


def test_run_frames_average_blocks_background_frames(at, capsys):
    assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "pinv", "--frames", "0:4,-1", "-o", "f.mdf"]) == 0
    rec = mdf_io.read_reconstruction("f.mdf")
    assert rec.images.shape == (5, 8, 10)
    assert rec.parameters["frames"]["frame_indices"] == [0, 1, 2, 3, 5]
    assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "pinv", "--frames", "0:4", "--average-blocks", "2",
                 "--background-frames", "0:2", "-o", "b.mdf"]) == 0
    rec = mdf_io.read_reconstruction("b.mdf")
    assert rec.images.shape == (2, 8, 10) and rec.parameters["frames"]["frame_indices"] == [0, 2]
    assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "pinv", "--average", "-o", "a.mdf"]) == 0
    assert mdf_io.read_reconstruction("a.mdf").images.shape == (1, 8, 10)
    capsys.readouterr()
    for bad in (["--frames", "6"], ["--frames", "0:3", "--average-blocks", "2"], ["--background-frames", "4"]):
        assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "pinv", *bad, "-o", "bad.mdf"]) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
        assert len(err) == 1 and err[0].startswith("mpirecon: error: meas.mdf"), err
    assert not os.path.exists("bad.mdf")
    from mpirecon.io.loading import load_measurement_for, load_system_matrix
    sm = load_system_matrix("sm.mdf")
    assert load_measurement_for("meas.mdf", sm, frames="1:3").data.shape[0] == 2
    assert load_measurement_for("meas.mdf", sm, frames=[0, -1]).frame_indices.tolist() == [0, 5]


def test_provenance_own_uuid_inputs_and_info(at, capsys):
    assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "kaczmarz", "--param", "lam=0.02",
                 "--frames", "0:3", "-o", "prov.mdf"]) == 0
    out = capsys.readouterr()
    meas_uuid = mdf_io.MDFFile("meas.mdf").header.general.uuid
    sm_uuid = mdf_io.MDFFile("sm.mdf").header.general.uuid
    rec_file = mdf_io.MDFFile("prov.mdf")
    assert rec_file.header.general.uuid not in (meas_uuid, sm_uuid)
    inputs = mdf_io.read_reconstruction(rec_file).parameters["inputs"]
    assert inputs["measurement"] == {"path": "meas.mdf", "uuid": meas_uuid}
    assert inputs["system_matrix"] == {"path": "sm.mdf", "uuid": sm_uuid}
    # timing: set-up and per-frame solve reported separately
    assert "set-up" in out.out and "ms/frame over the other 2 frame(s)" in out.out
    assert main(["info", "prov.mdf"]) == 0
    info = capsys.readouterr().out
    assert "method:      kaczmarz" in info and "lam=0.02" in info and "snr_threshold=1.5" in info
    assert f"measurement: meas.mdf (uuid {meas_uuid})" in info and f"(uuid {sm_uuid})" in info
    assert "frames:      average=False" in info and "frames=0:3" in info
    assert "plan:        recorded" in info and "versions:    " in info and "memory:      precision float64" in info
    assert "plan={" not in info  # the plan is not dumped into the parameters line


def test_export_png_gif_nifti_mp4(at, capsys):
    import nibabel as nib
    from PIL import Image

    assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "pinv", "--frames", "0:3", "-o", "ex.mdf"]) == 0
    rec = mdf_io.read_reconstruction("ex.mdf")
    assert main(["export", "ex.mdf", "-o", "ex.png"]) == 0
    assert sorted(p for p in os.listdir(".") if p.startswith("ex_")) == ["ex_0000.png", "ex_0001.png", "ex_0002.png"]
    assert main(["export", "ex.mdf", "-o", "ex.gif"]) == 0
    assert Image.open("ex.gif").n_frames == 3
    for name in ("ex.nii", "ex.nii.gz"):
        assert main(["export", "ex.mdf", "-o", name]) == 0
        img = nib.load(name)
        assert img.shape == (10, 8, 1, 3)
        voxel = 1e3 * rec.fov[:2] / np.array([10, 8])
        np.testing.assert_allclose(np.diag(img.affine)[:2], voxel)
        np.testing.assert_allclose(img.affine[:2, 3], 1e3 * rec.center[:2] - 1e3 * rec.fov[:2] / 2 + voxel / 2)
        np.testing.assert_allclose(np.asarray(img.dataobj)[:, :, 0, 1], rec.images[1].T, rtol=1e-6)
    capsys.readouterr()
    from matplotlib import animation
    if not animation.writers.is_available("ffmpeg"):
        assert main(["export", "ex.mdf", "-o", "ex.mp4"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "ex.mp4" in err[0] and "ffmpeg" in err[0] and not os.path.exists("ex.mp4")
    assert main(["export", "ex.mdf", "-o", "ex.gif"]) == 2  # no clobbering
    assert main(["export", "ex.mdf", "-o", "ex.tiff"]) == 2


def test_export_3d_titles_and_times():
    from mpirecon.viz.export import draw_frame, frame_labels, nifti_affine, nifti_data

    images = np.zeros((2, 3, 4, 5))
    images[1, 2, 1, 3] = 1.0
    rec = mdf_io.Reconstruction(images=images, grid=(5, 4, 3), fov=np.array([0.005, 0.004, 0.006]),
                                center=np.array([0.0, 0.001, 0.0]),
                                parameters={"frames": {"frame_indices": [4, 6], "frame_duration_s": 0.02}})
    assert frame_labels(rec) == ["frame 4, t = 80.000 ms", "frame 6, t = 120.000 ms"]
    assert nifti_data(rec).shape == (5, 4, 3, 2) and nifti_data(rec)[3, 1, 2, 1] == 1.0
    np.testing.assert_allclose(nifti_affine(rec)[:3, 3], [-2.5 + 0.5, 1 - 2 + 0.5, -3 + 1])
    fig = draw_frame(rec, 1, 0.0, 1.0, "t")
    assert len(fig.axes) == 5 and fig.axes[1].get_title().startswith("x-z slice at y index 1")
    assert fig.axes[0].get_xlabel() == "x (mm)"


def test_cache_info_and_clear(tmp_path, capsys):
    (tmp_path / "dernet-demo-abc.pt").write_bytes(b"x" * 2_000_000)
    (tmp_path / "other.txt").write_text("keep me")
    assert main(["cache", "--cache-dir", str(tmp_path)]) == 0
    assert f"cache folder {tmp_path}: 1 file(s), 2.0 MB" in capsys.readouterr().out
    assert main(["demo", "--cache-dir", str(tmp_path), "--cache-info"]) == 0
    assert "2.0 MB" in capsys.readouterr().out
    assert main(["demo", "--cache-dir", str(tmp_path), "--clear-cache"]) == 0
    assert "removed 1 file(s)" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path)) == ["other.txt"]


def test_outputs_respect_umask(at, tmp_path):
    import stat

    from mpirecon.learning.weights import save_weights

    old = os.umask(0o022)
    try:
        assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "pinv", "--average", "-o", str(tmp_path / "u.mdf"),
                     "--png", str(tmp_path / "u.png")]) == 0
        assert main(["export", str(tmp_path / "u.mdf"), "-o", str(tmp_path / "u.gif")]) == 0
        save_weights(tmp_path / "w.pt", "test", {}, {})
        for name in ("u.mdf", "u.png", "u.gif", "w.pt"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
        os.umask(0o077)
        save_weights(tmp_path / "w2.pt", "test", {}, {})
        assert stat.S_IMODE((tmp_path / "w2.pt").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_scanner_mismatch_refused_and_overridable(at, capsys):
    assert main(["simulate", "system-matrix", "-o", "sm8.mdf", "--grid", "10", "8", "--amplitude", "0.008", "0.008"]) == 0
    h = mdf_io.MDFFile("sm8.mdf").header
    assert h.acquisition.gradient is not None and np.asarray(h.acquisition.gradient).shape == (1, 1, 3, 3)
    capsys.readouterr()
    assert main(["run", "meas.mdf", "--sm", "sm8.mdf", "--method", "pinv", "-o", "mm.mdf"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(err) == 1 and "meas.mdf" in err[0] and "/acquisition/drivefield/strength" in err[0]
    assert "0.008" in err[0] and "0.012" in err[0] and "sm8.mdf" in err[0], err
    assert not os.path.exists("mm.mdf")
    assert main(["run", "meas.mdf", "--sm", "sm8.mdf", "--method", "pinv", "--ignore-scanner-mismatch", "-o", "mm.mdf"]) == 0
    assert "warning" in capsys.readouterr().err and os.path.exists("mm.mdf")


def test_dernet_weights_for_another_calibration_say_so(at, capsys):
    assert main(["train", "--sm", "sm.mdf", "-o", "d.pt", "--samples", "64", "--val-samples", "16", "--epochs", "1",
                 "--quiet"]) == 0
    if not os.path.exists("sm8.mdf"):
        assert main(["simulate", "system-matrix", "-o", "sm8.mdf", "--grid", "10", "8", "--amplitude", "0.008", "0.008"]) == 0
    capsys.readouterr()
    assert main(["run", "meas.mdf", "--sm", "sm8.mdf", "--method", "dernet", "--weights", "d.pt", "-o", "dd.mdf"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(err) == 1 and "belong to another calibration" in err[0] and "sm.mdf (fingerprint" in err[0]
    assert "mpirecon train --method dernet --sm sm8.mdf" in err[0] and "rows missing" not in err[0]


def test_transfer_function_read_written_and_applied(at, capsys):
    import dataclasses

    import h5py

    from mpirecon.preprocess.transfer import correct_measurement

    sm = mdf_io.read_system_matrix("sm.mdf")
    raw = mdf_io.read_measurement("meas.mdf", subtract_background=False)
    rng = np.random.default_rng(7)
    k_full = raw.num_sampling_points // 2 + 1
    c = int(raw.rows.channel.max()) + 1
    tf = (0.5 + 1.5 * rng.random((c, k_full))) * np.exp(1j * rng.uniform(-np.pi, np.pi, (c, k_full)))
    t = tf[raw.rows.channel, raw.rows.frequency_index]
    mdf_io.write_system_matrix("smtf.mdf", dataclasses.replace(sm, transfer_function_corrected=True), overwrite=True)
    assert mdf_io.read_system_matrix("smtf.mdf").transfer_function_corrected
    hand = dataclasses.replace(raw, data=raw.data * t, background=raw.background * t, transfer_function=tf)
    mdf_io.write_measurement("meastf.mdf", hand, overwrite=True)
    mdf_io.write_measurement("meastf_bare.mdf", dataclasses.replace(hand, transfer_function=None), overwrite=True)
    with h5py.File("tf.h5", "w") as f:
        f["transferFunction"] = tf
    back = mdf_io.read_measurement("meastf.mdf", subtract_background=False)
    assert not back.transfer_function_corrected
    np.testing.assert_allclose(back.transfer_function, tf)
    fixed = correct_measurement(back)  # the corrected spectrum equals the known one
    assert fixed.transfer_function_corrected
    np.testing.assert_allclose(fixed.data, raw.data, rtol=1e-9, atol=1e-9 * np.abs(raw.data).max())
    np.testing.assert_allclose(fixed.background, raw.background, rtol=1e-9, atol=1e-9 * np.abs(raw.data).max())

    common = ["--sm", "smtf.mdf", "--method", "pinv", "--average"]
    assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "pinv", "--average", "-o", "tf_ref.mdf"]) == 0
    assert main(["run", "meastf.mdf", *common, "-o", "tf_own.mdf"]) == 0
    assert main(["run", "meastf_bare.mdf", *common, "--transfer-function", "tf.h5", "-o", "tf_given.mdf"]) == 0
    ref = mdf_io.read_reconstruction("tf_ref.mdf").images
    for name in ("tf_own.mdf", "tf_given.mdf"):
        np.testing.assert_allclose(mdf_io.read_reconstruction(name).images, ref, atol=1e-6 * np.abs(ref).max())
    capsys.readouterr()
    assert main(["run", "meastf_bare.mdf", *common, "-o", "tf_none.mdf"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(err) == 1 and "meastf_bare.mdf" in err[0] and "/acquisition/receiver/transferFunction" in err[0]


def test_num_used_freqs_and_row_weighting(at):
    from mpirecon.io.loading import load_system_matrix
    from mpirecon.simulation.phantoms import named_phantom
    from mpirecon.preprocess.weighting import row_weights, weight_measurement, weight_system_matrix

    full = load_system_matrix("sm.mdf")
    assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "pinv", "--average", "--num-used-freqs", "100",
                 "-o", "n100.mdf"]) == 0
    sel = mdf_io.read_reconstruction("n100.mdf").parameters["selection"]
    assert sel["num_rows"] == 100 and sel["num_used_freqs"] == 100
    top = load_system_matrix("sm.mdf", num_used_freqs=100)
    assert top.snr.min() >= np.sort(full.snr)[-100]
    truth = named_phantom("shape", (8, 10))
    images = {}
    for mode in ("none", "rownorm", "whiten"):
        assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", "pinv", "--average", "--row-weighting", mode,
                     "-o", f"w_{mode}.mdf", "--overwrite"]) == 0
        rec = mdf_io.read_reconstruction(f"w_{mode}.mdf")
        images[mode] = rec.images[0]
        assert np.corrcoef(images[mode].ravel(), truth.ravel())[0, 1] > 0.6
        assert rec.parameters["selection"].get("row_weighting", "none") == mode
    assert not np.allclose(images["none"], images["whiten"])
    # identical weighting of matrix and data: an exact system stays exact
    x = np.random.default_rng(1).random(full.num_voxels)
    meas = mdf_io.Measurement.from_arrays(full.matrix @ x)
    meas = mdf_io.Measurement(data=meas.data, rows=full.rows, frequencies=full.frequencies, bandwidth=full.bandwidth,
                              num_sampling_points=full.num_sampling_points)
    w = row_weights(full, "whiten")
    weighted = weight_system_matrix(full, w, "whiten")
    np.testing.assert_allclose(weight_measurement(meas, full, weighted, w).data[0], weighted.matrix @ x)


@pytest.mark.parametrize("method,params", [("pinv", ["lam=auto"]), ("kaczmarz", ["lam=auto"]),
                                           ("cgnr", ["iterations=auto"]), ("admm_tv", ["mu=auto"]),
                                           ("admm_l1", ["mu=auto", "rho=auto"])])
def test_auto_regularisation_end_to_end(at, method, params):
    from mpirecon.simulation.phantoms import named_phantom

    out = f"auto_{method}.mdf"
    assert main(["run", "meas.mdf", "--sm", "sm.mdf", "--method", method, *[a for p in params for a in ("--param", p)],
                 "--average", "-o", out, "--overwrite"]) == 0
    rec = mdf_io.read_reconstruction(out)
    assert all(rec.parameters[p.split("=")[0]] == "auto" for p in params) and rec.parameters["noise"]["source"]
    truth = named_phantom("shape", (8, 10))
    assert np.corrcoef(rec.images[0].ravel(), truth.ravel())[0, 1] > 0.6


def test_auto_lambda_rules(small_sm, monkeypatch):
    from mpirecon.optim import autoreg
    from mpirecon.physics.operator import operator_for
    from mpirecon.simulation.noise import complex_noise

    op = operator_for(small_sm)
    u, s, _ = op.svd()
    rng = np.random.default_rng(3)
    x = rng.random((small_sm.num_voxels, 4))
    clean = (small_sm.matrix @ x).T
    lams, rhos = {}, {}
    for sigma in (1e-3, 1e-2):
        level = sigma * np.abs(clean).max()
        b = op.data(clean + complex_noise(clean.shape, level, rng))
        from mpirecon.preprocess.noise import NoiseEstimate
        noise = NoiseEstimate(np.full(small_sm.num_rows, level), "given")
        lams[sigma] = autoreg.tikhonov_lambdas(op, b, noise)
        assert np.all(lams[sigma] >= autoreg.gcv_lambdas(u, s, b)[0])  # never below GCV
        assert autoreg.tikhonov_lambdas(op, b, None).shape == (4,)  # GCV without a noise estimate
        rhos[sigma] = rho = autoreg.admm_rho(op, b, noise, 200)
        assert rho.shape == (4,) and np.all(rho >= autoreg.RHO_MIN)
        np.testing.assert_allclose(np.log10(rho) * 4, np.round(np.log10(rho) * 4))  # quarter decades
    assert np.all(lams[1e-2] > lams[1e-3])  # more noise, more regularisation
    assert np.all(rhos[1e-2] >= rhos[1e-3])
    # the large-P path (spectrum from the 2R x 2R row Gram) agrees with the SVD
    import mpirecon.physics.operator as operator_module
    monkeypatch.setattr(operator_module, "SVD_MAX_VOXELS", 0)
    ug, sg = operator_module.SystemOperator(small_sm).spectrum()
    np.testing.assert_allclose(sg[:20], s[:20], rtol=1e-8)
    np.testing.assert_allclose(np.abs(np.sum(ug[:, :20] * u[:, :20], axis=0)), 1.0, atol=1e-6)


def test_bench_writes_each_step_resumes_and_refuses_nonempty(at, capsys):
    args = ["bench", "--sm", "sm.mdf", "--methods", "pinv", "pinv@auto", "--params", "pinv@auto=lam=auto",
            "--protocols", "paper", "--snr", "20", "30", "--test-samples", "4", "--val-samples", "3", "--quiet",
            "-o", "bres"]
    assert main(args) == 0
    res = json.loads(open("bres/results.json").read())
    assert res["protocols"]["paper"]["30"]["pinv@auto"]["parameters"]["lam"] == "auto"
    assert res["protocols"]["paper"]["30"]["pinv@auto"]["tuning"] == []  # fixed parameters are not tuned
    capsys.readouterr()
    assert main(args) == 2  # non-empty folder without --resume / --overwrite
    assert "--resume" in capsys.readouterr().err
    kept = res["protocols"]["paper"]["20"]["pinv"]
    del res["protocols"]["paper"]["30"]["pinv"]  # as if interrupted before the last step
    open("bres/results.json", "w").write(json.dumps(res))
    assert main(args + ["--resume"]) == 0
    again = json.loads(open("bres/results.json").read())
    assert again["protocols"]["paper"]["20"]["pinv"] == kept  # finished steps are not recomputed
    assert "pinv" in again["protocols"]["paper"]["30"]
    assert main(args[:-1] + ["bres", "--resume", "--test-samples", "5"]) == 2  # another configuration
    assert main(args + ["--overwrite"]) == 0


@pytest.mark.parametrize("name", ["admm_l1", "admm_tv", "admm_l1tv"])
def test_automatic_admm_parameters_are_per_frame(name, small_sm):
    from mpirecon import load_reconstructor

    rng = np.random.default_rng(5)
    b = rng.random((4, small_sm.num_voxels)) @ small_sm.matrix.T
    b[2] *= 30.0  # a much brighter frame must not change its neighbours' parameters
    b = b + 0.02 * np.abs(b).mean(axis=1, keepdims=True) * (rng.normal(size=b.shape) + 1j * rng.normal(size=b.shape))
    r = load_reconstructor(name, small_sm, mu="auto", rho="auto", iterations=50)
    batch = r.reconstruct(b)
    assert set(batch.extra["auto"]) == {"mu", "rho"} and len(batch.extra["auto"]["mu"]) == 4
    single = np.stack([r.reconstruct(b[i]).images[0] for i in range(4)])
    np.testing.assert_allclose(batch.images, single, rtol=1e-6, atol=1e-9 * np.abs(single).max())


def test_a_frame_selected_twice_is_read_once_and_repeated(sim_files):
    from mpirecon import load_measurement_for, load_system_matrix
    path = sim_files / "meas3.mdf"
    assert main(["simulate", "measurement", "--sm", str(sim_files / "sm.mdf"), "--phantom", "shape", "--frames", "3",
                 "-o", str(path), "--overwrite"]) == 0
    sm = load_system_matrix(sim_files / "sm.mdf")
    every = load_measurement_for(path, sm).data
    twice = load_measurement_for(path, sm, frames="2,0,0,2")
    np.testing.assert_array_equal(twice.data, every[[2, 0, 0, 2]])
    assert list(twice.frame_indices) == [2, 0, 0, 2]
