import json
import subprocess
import sys
from pathlib import Path

import pytest

# The installed console script when present (as a user runs it), else the module.
_SCRIPT = Path(sys.executable).parent / "jaxdyn"
_COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "jaxdyn.cli"]


def run_cli(*args, timeout=300):
    return subprocess.run([*_COMMAND, *args], capture_output=True, text=True, timeout=timeout)


def test_help():
    res = run_cli("--help")
    assert res.returncode == 0
    assert "demo" in res.stdout and "info" in res.stdout


def test_info_json():
    res = run_cli("info", "--json")
    assert res.returncode == 0
    info = json.loads(res.stdout)
    assert "jax" in info["versions"] and info["devices"]


@pytest.mark.slow
def test_demo_writes_figure_and_summary_and_overwrites_only_when_asked(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "summary.json").write_text("{\"mine\": 1}")
    res = run_cli("demo", "--out", str(out), "--n-hidden", "16", "--n-traj", "3")
    assert res.returncode == 2 and "--force" in res.stderr
    assert (out / "summary.json").read_text() == "{\"mine\": 1}"
    res = run_cli("demo", "--out", str(out), "--n-hidden", "16", "--n-traj", "3", "--force")
    assert res.returncode == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_hidden"] == 16 and summary["all_integrations_succeeded"]
    # the origin is always an equilibrium of the bias-free network
    assert summary["fixed_points"] >= 1
    assert summary["unstable_directions_at_origin"] in summary["fixed_point_unstable_directions"]
    assert (out / "demo.png").stat().st_size > 1000
    assert not list(out.glob("*.tmp"))


@pytest.mark.parametrize("args", [("--bogus",), ("demo", "--n-hidden", "0"),
                                  ("demo", "--g", "abc"), ("nosuchcommand",)])
def test_user_errors_exit_2_with_one_line(args):
    res = run_cli(*args)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("jaxdyn: error:"), res.stderr


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run_cli("demo", "--out", str(blocker / "sub"))
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1

