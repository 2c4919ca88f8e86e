"""The README's two commands: `make test` installs no system package off CI, and browser and PostgreSQL tests
say why they skip."""

import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO


def _dry_run(target, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    environ.update(env)
    return subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True, env=environ).stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_installs_system_packages_only_under_ci():
    assert "apt-get" not in _dry_run("test")
    assert "apt-get install" in _dry_run("test", CI="true")
    assert "apt-get install" in _dry_run("browser")
    assert "apt-get install -y -qq postgresql" in _dry_run("postgres")


@pytest.mark.parametrize("fixture, variable, fix", [("browser", "CATDOG_CHROMIUM", "make browser"),
                                                   ("postgres", "CATDOG_PG_BINDIR", "make postgres")])
@pytest.mark.parametrize("ci", ["", "true"])
def test_a_missing_system_part_skips_with_the_fix_and_fails_under_ci(tmp_path, ci, fixture, variable, fix):
    (tmp_path / "test_needs_it.py").write_text(f"def test_it({fixture}):\n    pass\n")
    env = {**os.environ, variable: str(tmp_path / "missing"), "PYTHONPATH": str(REPO / "tests"), "CI": ci}
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-rs", "-q", "-p", "no:cacheprovider",
                          "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, env=env)
    text = out.stdout + out.stderr
    assert fix in text, text
    if ci:
        assert out.returncode == 1 and "1 error" in text and "CI=true: required" in text, text
    else:
        assert out.returncode == 0 and "1 skipped" in text, text
