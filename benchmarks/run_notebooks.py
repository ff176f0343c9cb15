"""Execute notebooks at their full (human) settings and store the outputs in place.

The test suite executes every notebook at small settings (CROWDZOO_NOTEBOOK_SMALL=1) without
keeping what it printed; the committed notebooks carry the outputs of this script, so that
they read on GitHub with their figures.

    python benchmarks/run_notebooks.py                       # every notebook
    python benchmarks/run_notebooks.py notebooks/glad.ipynb  # some
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SHARED_DATA = ROOT.parent / "shared" / "data"


def tidy_streams(nb) -> None:
    """Merge each cell's consecutive stream outputs and apply carriage returns.

    Text progress bars (tqdm without ipywidgets) send one output per update; a notebook
    viewer shows them all. Merged and with every ``\r`` applied, only each bar's last state
    remains, as a terminal would show it.
    """
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.outputs:
            if (out.output_type == "stream" and merged and merged[-1].output_type == "stream"
                    and merged[-1].name == out.name):
                merged[-1].text += out.text
            else:
                merged.append(out)
        for out in merged:
            if out.output_type == "stream":
                lines = [line.rsplit("\r", 1)[-1] for line in out.text.split("\n")]
                out.text = "\n".join(line for line in lines if line.strip() or line == "")
        cell.outputs = [o for o in merged if o.output_type != "stream" or o.text.strip()]


def run(path: Path, timeout: int = 3600) -> float:
    """Execute one notebook in place (full settings); return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    env = os.environ
    env.pop("CROWDZOO_NOTEBOOK_SMALL", None)
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    if "CROWDZOO_DATA_DIR" not in env and SHARED_DATA.is_dir():
        env["CROWDZOO_DATA_DIR"] = str(SHARED_DATA)
    start = time.perf_counter()
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=timeout,
                            resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    tidy_streams(nb)
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(argv: list[str]) -> None:
    if {"-h", "--help"} & set(argv):
        print(__doc__.strip() + "\n    python benchmarks/run_notebooks.py --tidy [NOTEBOOK ...]"
              "  # only tidy stored outputs")
        return
    missing = [a for a in argv if a != "--tidy" and not Path(a).is_file()]
    if missing:
        sys.exit(f"run_notebooks.py: no such notebook: {', '.join(missing)}")
    if argv[:1] == ["--tidy"]:  # only tidy the stored outputs
        for path in [Path(a) for a in argv[1:]] or sorted(NOTEBOOKS.glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            tidy_streams(nb)
            nbformat.write(nb, path)
        return
    paths = [Path(a) for a in argv] or sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        seconds = run(path.resolve())
        print(f"{path.name}: executed in {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
