"""Execute every notebook in notebooks/ (small settings: CROWDZOO_NOTEBOOK_SMALL=1).

Parametrized over the glob, so notebooks added later are executed too. A warning inside the
kernel does not fail a notebook; an error in any cell does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def _execute(nb, timeout=600):
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=timeout,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    return client.execute()


#: ../shared/data beside the repository (where CI lays it), unless CROWDZOO_DATA_DIR is set
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def small_env(monkeypatch):
    """Kernels inherit the environment: small settings, the inline backend, the data dir.

    The notebooks run in notebooks/, where ``../shared/data`` is not the shared data folder,
    so the kernel is pointed at it explicitly (a notebook skips its real-data part when the
    folder is absent).
    """
    monkeypatch.setenv("CROWDZOO_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    if "CROWDZOO_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
        monkeypatch.setenv("CROWDZOO_DATA_DIR", str(SHARED_DATA))


def test_kernel_is_this_python(small_env):
    """The "python3" kernel runs in the interpreter (and venv) that runs the tests."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import sys; print(sys.executable)")]
    _execute(nb, timeout=120)
    printed = nb.cells[0].outputs[0]["text"].strip()
    assert Path(printed).resolve() == Path(sys.executable).resolve()


def test_kernel_shows_progress_and_no_tqdm_warning(small_env):
    """In Jupyter, progress bars are on by default and importing crowdzoo (numpyro, tqdm.auto)
    prints no "IProgress not found" warning (ipywidgets is optional)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import crowdzoo\n"
        "from crowdzoo.inference.progress import default_progress\n"
        "fit = crowdzoo.fit('one_coin', crowdzoo.data.load_demo())\n"
        "print('progress', default_progress())")]
    _execute(nb, timeout=300)
    texts = [o.get("text", "") for o in nb.cells[0].outputs]
    assert "progress True" in "".join(texts), texts
    assert not any("IProgress" in t for t in texts), texts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, small_env):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # a notebook may be committed with its outputs: run it afresh
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    try:
        _execute(nb)
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name}: a cell failed:\n{err}", pytrace=False)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    produced = [
        o
        for c in code
        for o in c.outputs
        if o.output_type in ("stream", "execute_result", "display_data")
    ]
    assert produced, f"{path.name} produced no output"


def test_notebooks_found():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOKS_DIR}"
    assert os.path.basename(NOTEBOOKS[0]).endswith(".ipynb")
