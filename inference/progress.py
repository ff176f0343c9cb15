"""Progress bars where the user looks: terminals and Jupyter.

:func:`default_progress` decides whether a long fit shows a bar when the user did not say;
:func:`progress_bar` makes one with ``tqdm.auto`` (a widget in Jupyter when ipywidgets is
installed, text otherwise), imported only when a bar is shown.
"""

from __future__ import annotations

import sys

__all__ = ["default_progress", "progress_bar"]


def _in_notebook() -> bool:
    """Whether we run inside a Jupyter / IPython kernel."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # pragma: no cover - IPython internals
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def default_progress() -> bool:
    """Return True in a terminal (stderr a TTY) or a Jupyter kernel; False in pipes, CI, logs."""
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        tty = bool(isatty()) if isatty is not None else False
    except ValueError:  # closed stream
        tty = False
    return tty or _in_notebook()


def progress_bar(total: int, desc: str, enabled: bool):
    """Return a tqdm bar (``tqdm.auto``: a widget in Jupyter) or a no-op with the same API."""
    if not enabled:
        return _NoBar()
    import warnings

    with warnings.catch_warnings():
        # tqdm.auto falls back to text (and says so) when ipywidgets is missing
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


class _NoBar:
    def update(self, n: int = 1) -> None:
        """Do nothing."""

    def set_postfix_str(self, s: str) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None
