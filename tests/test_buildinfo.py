"""Build identity (issue 20): the version names the git commit; copies without git read _version.py."""

import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import REPO

from covermill.buildinfo import UNKNOWN, version
from covermill.cli import main


def _git(*args) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout.strip()


def _in_git() -> bool:
    try:
        _git("rev-parse", "--git-dir")
    except (OSError, subprocess.CalledProcessError):
        return False
    return (REPO / ".git").exists()


@pytest.mark.skipif(not _in_git(), reason="not a git checkout")
def test_a_checkout_names_its_commit_as_the_build_does():
    pytest.importorskip("setuptools_scm")
    commit = _git("rev-parse", "--short=7", "HEAD")
    assert f"+g{commit}" in version()
    # the same answer as setuptools-scm gives the build (it reads pyproject.toml's settings)
    built = subprocess.run([sys.executable, "-m", "setuptools_scm"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.strip().splitlines()[-1]
    assert built == version()
    res = CliRunner().invoke(main, ["--version"])
    assert res.exit_code == 0 and res.output == f"covermill, version {version()}\n"


def _run_copy(tmp_path, version_file: str | None) -> str:
    shutil.copytree(REPO / "covermill", tmp_path / "covermill", ignore=shutil.ignore_patterns("__pycache__"))
    generated = tmp_path / "covermill" / "_version.py"
    generated.unlink(missing_ok=True)
    if version_file is not None:
        generated.write_text(version_file)
    code = "import sys, covermill; v = covermill.__version__; print(v); print('setuptools_scm' in sys.modules)"
    # -S: no .pth files, so an editable install's finder cannot serve the checkout's own _version.py
    # to the copy; the installed packages stay importable through PYTHONPATH
    site = [p for p in sys.path if p.endswith("site-packages")]
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin",
                                          "PYTHONPATH": os.pathsep.join([str(tmp_path), *site])}).stdout.split()
    return out


def test_a_copy_without_git_reads_the_generated_file(tmp_path):
    got, asked_git = _run_copy(tmp_path, "__version__ = version = '1.2.3.dev4+gabcdef0'\n")
    assert got == "1.2.3.dev4+gabcdef0" and asked_git == "False"


def test_a_copy_with_no_version_information_says_unknown(tmp_path):
    got, _ = _run_copy(tmp_path, None)
    assert got == UNKNOWN


def test_importing_covermill_and_its_cli_runs_no_git():
    code = "import sys, covermill, covermill.cli; print('setuptools_scm' in sys.modules, 'subprocess' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}).stdout.split()
    assert out[0] == "False"
