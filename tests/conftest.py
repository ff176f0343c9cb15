"""Shared fixtures: seeds, the real datasets of ../shared/data (skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import crowdzoo

# what the CLI and the notebooks do: parallel NUTS chains, compiled kernels kept on disk
crowdzoo.setup()

#: ../shared/data beside the repository (CI lays it there); override with CROWDZOO_DATA_DIR
SHARED_DATA = Path(
    os.environ.get("CROWDZOO_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)


def has_dataset(name: str) -> bool:
    """Whether a real dataset folder is available."""
    return (SHARED_DATA / name / "answers.csv").exists()


def require_dataset(name: str):
    """Load a real dataset, or skip the calling test when ../shared/data is absent."""
    if not has_dataset(name):
        pytest.skip(f"dataset {name!r} not found under {SHARED_DATA} (../shared/data absent)")
    from crowdzoo.data import load_dataset

    return load_dataset(name, data_dir=SHARED_DATA)


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)


@pytest.fixture(scope="session")
def demo():
    from crowdzoo.data import load_demo

    return load_demo()


@pytest.fixture(scope="session")
def demo_truth():
    from crowdzoo.data import load_demo_truth

    return load_demo_truth()
