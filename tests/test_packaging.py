"""The wheel holds one import package, crowdzoo, with models/, inference/ and data/ inside it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    pytest.importorskip("setuptools")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for pkg in ("crowdzoo", "models", "inference", "data"):
        shutil.copytree(ROOT / pkg, src / pkg,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(src)],
        check=True, capture_output=True, text=True,
    )
    (whl,) = out.glob("crowdzoo-*.whl")
    return zipfile.ZipFile(whl)


def test_wheel_contents(wheel):
    names = set(wheel.namelist())
    for required in (
        "crowdzoo/__init__.py",
        "crowdzoo/cli.py",
        "crowdzoo/py.typed",
        "crowdzoo/models/__init__.py",
        "crowdzoo/models/core.py",
        "crowdzoo/models/dawid_skene.py",
        "crowdzoo/inference/__init__.py",
        "crowdzoo/inference/runner.py",
        "crowdzoo/data/__init__.py",
        "crowdzoo/data/annotations.py",
        "crowdzoo/data/datasets/demo_answers.csv",
        "crowdzoo/data/datasets/demo_truth.csv",
    ):
        assert required in names, required
    # nothing lands in site-packages as a bare top-level models/inference/data package
    tops = {n.split("/")[0] for n in names}
    assert not tops & {"models", "inference", "data", "tests", "notebooks", "benchmarks"}, tops
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "crowdzoo = crowdzoo.cli:main" in wheel.read(entry).decode()
    # every module of the source tree is in the wheel
    for pkg, dest in (("models", "crowdzoo/models"), ("inference", "crowdzoo/inference"),
                      ("data", "crowdzoo/data"), ("crowdzoo", "crowdzoo")):
        for path in (ROOT / pkg).glob("*.py"):
            assert f"{dest}/{path.name}" in names, path
