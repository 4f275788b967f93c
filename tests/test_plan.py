"""Reconstruction plans: the CLI and the API run one pipeline, plans round-trip through TOML and
result files, the cache reads and sets up once, frames are streamed in blocks."""
import numpy as np
import pytest

import mdf_io
from mpirecon.cli.main import main
from mpirecon.errors import UsageError
from mpirecon.plan import PlanCache, ReconstructionPlan


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 10 x 8 calibration and a 7-frame measurement with 5 background frames."""
    d = tmp_path_factory.mktemp("plan")
    assert main(["simulate", "system-matrix", "-o", str(d / "sm.mdf"), "--grid", "10", "8"]) == 0
    assert main(["simulate", "measurement", "--sm", str(d / "sm.mdf"), "--phantom", "shape", "--frames", "7",
                 "--background-frames", "5", "-o", str(d / "meas.mdf")]) == 0
    return d


def plan_for(files, method="kaczmarz", **parameters):
    return ReconstructionPlan(inputs={"measurement": str(files / "meas.mdf"), "calibration": str(files / "sm.mdf")},
                              method={"name": method, "parameters": parameters})


def without_run_specifics(params: dict) -> dict:
    """Parameters without what differs between two runs of one plan (peak memory, output paths)."""
    out = dict(params, memory={k: v for k, v in params["memory"].items()
                               if k not in ("peak_bytes", "budget", "budget_bytes")})  # the machine's free memory
    out["plan"] = dict(params["plan"], output=None)
    return out


def test_cli_and_plan_give_identical_images_and_provenance(files, tmp_path):
    out = tmp_path / "cli.mdf"
    assert main(["run", str(files / "meas.mdf"), "--sm", str(files / "sm.mdf"), "--method", "kaczmarz",
                 "--param", "iterations=5", "--frames", "0:6", "--average-blocks", "2", "-o", str(out)]) == 0
    plan = plan_for(files, iterations=5).with_changes(frames={"frames": "0:6", "average_blocks": 2},
                                                      output={"path": str(tmp_path / "api.mdf")})
    result = plan.run()
    cli, api = mdf_io.read_reconstruction(out), mdf_io.read_reconstruction(tmp_path / "api.mdf")
    np.testing.assert_array_equal(cli.images, api.images)
    np.testing.assert_array_equal(result.images, api.images)
    assert without_run_specifics(cli.parameters) == without_run_specifics(api.parameters)
    assert cli.parameters["frames"]["frame_indices"] == [0, 2, 4]
    assert {"mpirecon", "numpy", "python"} <= set(cli.parameters["versions"])
    assert cli.parameters["inputs"]["measurement"]["uuid"]


def test_plan_toml_round_trip(files, tmp_path):
    plan = plan_for(files, lam=0.5, seed=3).with_changes(
        selection={"channels": [0, 1], "min_frequency": 80e3}, frames={"average": True},
        preprocessing={"row_weighting": "rownorm", "scanner_mismatch": "warn"},
        method={"parameters": {"nonneg": False, "strategy": None}, "memory_limit": "2G"},
        output={"path": str(tmp_path / "r.mdf")})
    path = plan.save(tmp_path / "p.toml")
    assert ReconstructionPlan.load(path) == plan
    assert "strategy = \"None\"" in path.read_text()
    # a hand-written plan with paths relative to its folder
    (tmp_path / "rel.toml").write_text('[inputs]\nmeasurement = "m.mdf"\n[method]\nname = "pinv"\n')
    rel = ReconstructionPlan.load(tmp_path / "rel.toml")
    assert rel.inputs.measurement == str(tmp_path / "m.mdf") and rel.selection.snr_threshold is None
    (tmp_path / "bad.toml").write_text('[inputs]\nmeasurement = "m.mdf"\n[method]\nname = "pinv"\nbogus = 1\n')
    with pytest.raises(UsageError, match="bad.toml.*method.bogus"):
        ReconstructionPlan.load(tmp_path / "bad.toml")


def test_run_with_a_saved_plan_and_overrides(files, tmp_path, capsys):
    plan_file = tmp_path / "p.toml"
    assert main(["run", str(files / "meas.mdf"), "--sm", str(files / "sm.mdf"), "--method", "cgnr",
                 "--param", "iterations=3", "--save-plan", str(plan_file)]) == 0
    assert not list(tmp_path.glob("*.mdf"))  # --save-plan without -o: only the plan
    assert main(["run", "--plan", str(plan_file), "--param", "iterations=4", "-o", str(tmp_path / "a.mdf")]) == 0
    rec = mdf_io.read_reconstruction(tmp_path / "a.mdf")
    assert rec.method == "cgnr" and rec.parameters["iterations"] == 4
    assert main(["run", "--plan", str(plan_file)]) == 2
    assert "-o" in capsys.readouterr().err


@pytest.fixture(scope="module")
def dernet_weights(files, tmp_path_factory):
    from mpirecon.io.loading import load_system_matrix
    from mpirecon_dernet.training import TrainConfig, train_dernet
    path = tmp_path_factory.mktemp("w") / "dernet.pt"
    train_dernet(load_system_matrix(files / "sm.mdf"), path,
                 TrainConfig(samples=128, val_samples=32, epochs=1, batch_size=64, c5=16, max_minutes=None),
                 progress=False)
    return path


@pytest.mark.parametrize("method", ["kaczmarz", "dernet"])
def test_rerun_reproduces_the_images(files, tmp_path, method, request):
    extra = ["--weights", str(request.getfixturevalue("dernet_weights"))] if method == "dernet" else []
    first, again = tmp_path / "r.mdf", tmp_path / "r2.mdf"
    assert main(["run", str(files / "meas.mdf"), "--sm", str(files / "sm.mdf"), "--method", method,
                 "--frames", "0:3", *extra, "-o", str(first)]) == 0
    assert main(["rerun", str(first), "-o", str(again)]) == 0
    a, b = mdf_io.read_reconstruction(first), mdf_io.read_reconstruction(again)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.parameters["plan"]["method"] == b.parameters["plan"]["method"]
    assert main(["rerun", str(first), "-o", str(first)]) == 2  # never over an input


def test_a_sweep_reads_the_calibration_and_sets_up_once(files, monkeypatch):
    from mpirecon.physics import operator as operator_module
    built = []
    original = operator_module.SystemOperator.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(operator_module.SystemOperator, "__init__", counting)
    cache, images = PlanCache(), []
    for lam in np.logspace(-3, 0, 10):
        images.append(plan_for(files, "admm_l1", mu=float(lam), iterations=20).run(cache=cache).images)
    assert cache.reads == 1 and cache.binds == 1 and len(built) == 1
    assert not np.array_equal(images[0], images[-1])
    # the cached sweep equals fresh runs
    fresh = plan_for(files, "admm_l1", mu=float(np.logspace(-3, 0, 10)[4]), iterations=20).run().images
    np.testing.assert_allclose(images[4], fresh, rtol=1e-10, atol=1e-12)
    # another measurement with the same plan reuses it too
    plan_for(files, "admm_l1", mu=0.01).with_changes(frames={"frames": "3"}).run(cache=cache)
    assert cache.reads == 1 and cache.binds == 1


@pytest.mark.parametrize("frames", [{}, {"average_blocks": 2, "frames": "0:6"}, {"average": True}])
def test_blocks_give_the_images_of_one_read(files, tmp_path, frames):
    whole = plan_for(files).with_changes(frames=frames).run()  # kaczmarz: each frame on its own, to rounding
    streamed = plan_for(files).with_changes(frames=dict(frames, block_size=2),
                                                    output={"path": str(tmp_path / "s.mdf")})
    result = streamed.run(keep_images=False)
    assert result.images is None
    rec = mdf_io.read_reconstruction(tmp_path / "s.mdf")
    np.testing.assert_allclose(rec.images, whole.images, rtol=1e-10, atol=1e-13)
    assert rec.parameters["frames"]["frame_indices"] == whole.reconstruction.parameters["frames"]["frame_indices"]
    assert rec.parameters["noise"] == whole.reconstruction.parameters["noise"]


def test_a_failure_midway_leaves_no_output(files, tmp_path, monkeypatch):
    from baselines.kaczmarz import Kaczmarz
    calls = []
    original = Kaczmarz._solve

    def failing(self, spectra):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("simulated crash in the third block")
        return original(self, spectra)

    monkeypatch.setattr(Kaczmarz, "_solve", failing)
    plan = plan_for(files).with_changes(frames={"block_size": 2}, output={"path": str(tmp_path / "x.mdf"),
                                                                          "png": str(tmp_path / "x.png")})
    with pytest.raises(RuntimeError, match="third block"):
        plan.run()
    assert list(tmp_path.iterdir()) == []


def test_every_2d_only_method_refuses_a_3d_calibration_in_one_line(tmp_path, capsys):
    from mpirecon.registry import get_reconstructor_class, list_reconstructors as available
    assert main(["simulate", "system-matrix", "--grid", "4", "3", "3", "--frequencies", "60",
                 "-o", str(tmp_path / "sm.mdf")]) == 0
    assert main(["simulate", "measurement", "--sm", str(tmp_path / "sm.mdf"), "--phantom", "shape",
                 "-o", str(tmp_path / "m.mdf")]) == 0
    capsys.readouterr()
    two_d = [m for m in available() if not get_reconstructor_class(m).capabilities.supports_3d]
    assert {"dernet"} <= set(two_d) and not {"ppmpi", "admm_net", "deq_mpi", "dip"} & set(two_d)
    for method in available():
        weights = []
        if method not in two_d and get_reconstructor_class(method).capabilities.needs_weights:
            assert main(["train", "--method", method, "--sm", str(tmp_path / "sm.mdf"), "-o", str(tmp_path / f"{method}.pt"),
                         "--samples", "16", "--val-samples", "8", "--epochs", "1", "--batch-size", "8", "--quiet"]) == 0
            weights = ["--weights", str(tmp_path / f"{method}.pt")]
        fast = ["--param", "iterations=50"] if method == "dip" else []  # a 3D generator, fitted 50 steps
        code = main(["run", str(tmp_path / "m.mdf"), "--sm", str(tmp_path / "sm.mdf"), "--method", method,
                     "-o", str(tmp_path / f"{method}.mdf")] + weights + fast)
        err = capsys.readouterr().err.strip().splitlines()
        if method in two_d:
            assert code == 2 and len(err) == 1 and "2D grids only" in err[0] and "--slice" in err[0], err
            assert not (tmp_path / f"{method}.mdf").exists()
        else:
            assert code == 0, err


def test_the_block_shrinks_to_fit_the_memory_budget(files, tmp_path):
    from mpirecon.io.loading import selected_problem_size
    from mpirecon.registry import get_reconstructor_class
    cls = get_reconstructor_class("kaczmarz")
    rows, voxels = selected_problem_size(files / "sm.mdf", 1.5)
    config = cls._validated({"dtype": "float64"})
    one, seven = (cls.memory_estimate(config, rows, voxels, n).total for n in (1, 7))
    assert seven > one
    limit = str((one + seven) // 2)  # the 7 frames of one block do not fit, a few do
    plan = plan_for(files, dtype="float64").with_changes(method={"memory_limit": limit},
                                                         output={"path": str(tmp_path / "b.mdf")})
    result = plan.run(keep_images=True)
    assert result.memory["frames"] < 7 and result.images.shape[0] == 7
    np.testing.assert_allclose(result.images, plan_for(files).run().images, rtol=1e-10, atol=1e-13)
    with pytest.raises(Exception, match="memory budget"):  # a block size given is kept, and refused
        plan.with_changes(frames={"block_size": 7}, output={"path": None}).run()
