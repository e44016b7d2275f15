"""Package hygiene: lint clean, import is lazy (no jit compile, no pandas/matplotlib at import)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_lazy():
    code = ("import sys, meanfield, numba; "
            "heavy = [m for m in ('pandas', 'matplotlib', 'scipy.optimize') if m in sys.modules]; "
            "from meanfield import activations; "
            "compiled = [n for n in ('_sigmoid', '_elu_core') "
            "            if getattr(activations, n).signatures]; "
            "print(heavy, compiled)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"


def test_public_api_is_exported():
    import meanfield

    for name in ["q_map", "c_map", "cov_map", "propagate", "q_star", "c_star", "chi_1", "chi_c",
                 "depth_scales", "eoc_rate", "Activation"]:
        assert name in meanfield.__all__ and callable(getattr(meanfield, name))


@pytest.mark.skipif(shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff is installed by the [test] extra")
def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    proc = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_readme_tour_runs():
    text = (ROOT / "README.md").read_text()
    tour = text.split("```python", 1)[1].split("```", 1)[0]
    namespace = {}
    exec(compile(tour, "README.md", "exec"), namespace)
    assert namespace["hist"].test_accuracy.iloc[-1] > 0.3  # SBP-SR trains (chance: 0.1)
    assert namespace["scr"].s_cr.mean() > 0.9  # the EOC keeps s_cr high at depth 50
