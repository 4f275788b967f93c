"""Every command and code block of the README runs, as written, on the files the README itself makes.

Shell lines are taken from the README's ```bash blocks in order (the install and test commands are
CI's own job and skipped); some get options appended that only make them quicker (a tiny training,
a bench of a few samples): the command as written must still parse and run. The README's Python
blocks are executed after the commands, in the same folder. ``mpirecon demo`` (minutes: it trains)
runs in the slow test with a tiny training recipe.
"""
import re
import shlex
import shutil
from pathlib import Path

import pytest

from mpirecon.cli.main import main

README = Path(__file__).resolve().parents[1] / "README.md"
#: options appended to a command (by its first words) that only make it faster here
QUICK = {
    ("train",): ["--set", "samples=128", "--set", "val_samples=32", "--set", "epochs=1", "--quiet"],
    ("bench",): ["--methods", "pinv", "dernet", "--snr", "30", "--test-samples", "3", "--val-samples", "3",
                 "--no-tuning", "--quiet"],
}
SKIPPED = ("pip ", "python -m pytest")


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", README.read_text(), flags=re.S)


def commands() -> list[list[str]]:
    """The ``mpirecon`` command lines of the README's bash blocks, comments removed."""
    out = []
    for block in blocks("bash"):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if not line or line.startswith(SKIPPED):
                continue
            argv = shlex.split(line)
            assert argv[0] == "mpirecon", line
            out.append(argv[1:])
    return out


def quick(argv: list[str]) -> list[str]:
    for prefix, extra in QUICK.items():
        if tuple(argv[:len(prefix)]) == prefix:
            return argv + extra
    return argv


def test_readme_commands_and_python_blocks_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPIRECON_CACHE", str(tmp_path / "cache"))
    argvs = [a for a in commands() if a[0] != "demo"]
    assert len(argvs) >= 15
    for argv in argvs:
        if "your_sm.mdf" in argv and not Path("your_sm.mdf").exists():
            shutil.copy("sm.mdf", "your_sm.mdf")  # "your" calibration: the one simulated above
        code = main(quick(argv))
        assert code == 0, (argv, capsys.readouterr().err[-2000:])
    for block in blocks("python"):
        exec(compile(block, "README.md", "exec"), {})
    assert Path("recon_again.mdf").exists() and Path("rec_plan.mdf").exists() is False  # saved, not run
    assert Path("plan2.toml").exists()


@pytest.mark.slow
def test_readme_demo_runs(tmp_path, monkeypatch):
    from mpirecon import demo
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPIRECON_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(demo, "DEMO_TRAINING", dict(demo.DEMO_TRAINING, samples=256, val_samples=64, epochs=1))
    argv = [a for a in commands() if a[0] == "demo"]
    assert argv == [["demo"]]
    assert main(argv[0]) == 0
    assert (tmp_path / "mpirecon-demo" / "metrics.md").exists()
