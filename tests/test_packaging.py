"""A built wheel carries the demo: installed (not editable) into a fresh virtual environment, the
README's first command works from it (issue 10: resources/ sat outside the package)."""

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _copy_source(dest: Path) -> Path:
    """A clean copy of what the wheel is built from (no stale build/ folder can leak in)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", "*.pyc")
    for name in ("octviewer", "trainer", "resources"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    return dest


@pytest.mark.slow
def test_wheel_ships_the_demo_and_runs_it(tmp_path):
    pytest.importorskip("setuptools", minversion="70.1")  # builds bdist_wheel without the wheel package
    if not (ROOT / "resources" / "models" / "demo_semt.safetensors").exists():
        pytest.skip("demo model not built")
    source = _copy_source(tmp_path / "src")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(wheels), str(source)], check=True, timeout=300)
    (wheel,) = wheels.glob("octviewer-*.whl")
    # a fresh environment that sees this one's dependencies (torch, Qt…) but not its octviewer:
    # no downloads; a plain path line in a .pth does not run this environment's editable finder
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing from the checkout
    env.update(QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, env=env).stdout.strip()
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], check=True,
                   timeout=300, env=env, cwd=tmp_path)
    (Path(purelib) / "_parent_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    where = subprocess.run([str(python), "-c", "import octviewer.resources as r; print(r.DEMO_MODEL)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=True).stdout
    assert str(env_dir) in where  # the demo model comes from the installed wheel, not the checkout
    shot = tmp_path / "demo.png"
    result = subprocess.run([str(bin_dir / "octviewer"), "--demo", "--device", "cpu", "--screenshot", str(shot)],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
