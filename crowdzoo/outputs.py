"""Output folders of the command line: atomic files and a manifest of what a run wrote.

Every file the CLI writes goes through :func:`atomic_write`: it is written to a hidden
temporary name in the same folder (``.crowdzoo-tmp-XXXX-<name>``, so the extension is
kept), flushed to disk, and renamed onto its final name only when complete. A run killed at
any point (``kill -9``, a full disk, Ctrl-C) leaves, under each final name, either the file
that was there before or the complete new one -- never a truncated CSV that pandas would
read without complaint. A killed run may leave hidden ``.crowdzoo-tmp-*`` files behind;
``--overwrite`` removes them.

:class:`OutputDir` adds the manifest, ``crowdzoo-manifest.json``: which command, model,
method, options, crowdzoo version and input files (with their SHA-256) made the files of the
folder, and the list of those files (with size and SHA-256 once complete). It is written
first with ``"status": "running"`` and the files the run is about to write, and rewritten
last with ``"status": "complete"``. So crowdzoo always knows which files in a folder are its
own:

* a folder whose manifest names another run is refused unless ``--overwrite``, which first
  removes that run's files -- only the files its manifest lists, and only when they are
  unchanged since crowdzoo wrote them (same SHA-256) -- then the old manifest;
* a file the run would write that no manifest lists (the user's own ``labels.csv``) is
  never replaced: the run is refused, with or without ``--overwrite``;
* other files in the folder (the user's notes, data) are left alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST", "TMP_PREFIX", "OutputDir", "OutputError", "atomic_write", "file_digest"]

#: name of the manifest file in an output folder
MANIFEST = "crowdzoo-manifest.json"
#: prefix of the temporary files (hidden; the final name follows it)
TMP_PREFIX = ".crowdzoo-tmp-"
#: version of the manifest's layout
MANIFEST_VERSION = 1


class OutputError(ValueError):
    """The output folder cannot be used as asked (reported as one line, exit code 2)."""


def _checkpoint(stage: str, name: str) -> None:
    """Do nothing; a seam where tests interrupt a write (``tests/test_reliability.py``)."""


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Write a file so that its final name only ever holds a complete file.

    Parameters
    ----------
    path : path
        The final name.
    write : callable
        ``write(tmp_path)`` writes the whole file to ``tmp_path`` (a fresh, empty file in
        the same folder whose name ends with the final name, so writers that read the
        format from the extension -- matplotlib -- work).

    Returns
    -------
    Path
        ``path``, now holding the complete file (flushed to disk, then renamed into place
        with :func:`os.replace`, which is atomic on POSIX and Windows).
    """
    path = Path(path)
    folder = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix="-" + path.name, dir=folder)
    try:  # mkstemp makes the file private (0600): give it the mode a plain open() would
        os.fchmod(fd, 0o666 & ~_umask())
    except (AttributeError, OSError):  # pragma: no cover - Windows
        pass
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _checkpoint("start", path.name)
        write(tmp)
        _checkpoint("written", path.name)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    _fsync_dir(folder)
    _checkpoint("renamed", path.name)
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_json(path: Path, obj: dict) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def _inputs(files: dict[str, str | None]) -> dict:
    out = {}
    for what, name in files.items():
        if name is None:
            continue
        p = Path(name)
        out[what] = {"path": str(p.resolve()), "bytes": p.stat().st_size,
                     "sha256": file_digest(p)}
    return out


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class OutputDir:
    """An output folder of one CLI run: checks it, writes files atomically, keeps a manifest.

    Parameters
    ----------
    path : path
        The folder (created with its parents when missing).
    run : dict
        What this run is: ``command``, ``model``, ``method``, ``seed``, ``options`` ... --
        written to the manifest as given.
    inputs : dict of str -> path or None
        Input files (``answers``, ``gold``, ``features``): their SHA-256 goes into the
        manifest.
    planned : sequence of str
        Names of the files the run may write; checked before any work is done (a user's
        file under one of these names stops the run at once, not after the fit).
    overwrite : bool
        Replace the files of an earlier crowdzoo run (``--overwrite``).

    Raises
    ------
    OutputError
        The path is a file; the folder holds another run's files and ``overwrite`` is
        False; a planned name is taken by a file no manifest lists; a listed file was
        changed since crowdzoo wrote it; the manifest is unreadable.
    """

    def __init__(self, path: str | os.PathLike, run: dict, inputs: dict | None = None,
                 planned: Sequence[str] = (), overwrite: bool = False):
        self.path = Path(path)
        self.run = dict(run)
        self.planned = list(dict.fromkeys(planned))
        self.written: list[str] = []
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"--out {str(self.path)!r} is a file, not a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create the output folder {str(self.path)!r}: "
                              f"{err.strerror or err}") from None
        self.inputs = _inputs(inputs or {})
        self._started = _stamp()
        self._take_over(overwrite)
        for name in self.planned:
            self._refuse_foreign(name)
        self._write_manifest("running")

    # --- the folder's earlier contents ---------------------------------------------------
    def _read_manifest(self) -> dict | None:
        p = self.path / MANIFEST
        if not p.exists():
            return None
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            files = data["files"]
            assert isinstance(files, list)
            for f in files:
                name = f["name"]
                assert isinstance(name, str) and name == Path(name).name and name != MANIFEST
        except Exception:
            raise OutputError(
                f"{str(p)!r} is not a manifest crowdzoo can read, so it cannot tell which files "
                f"in {str(self.path)!r} are its own; remove it or choose another --out"
            ) from None
        return data

    def _take_over(self, overwrite: bool) -> None:
        old = self._read_manifest()
        if old is None:
            return
        what = f"crowdzoo {old.get('command', '?')}"
        if old.get("model"):
            what += f" --model {old['model']}"
        if old.get("method"):
            what += f" --method {old['method']}"
        state = "an interrupted" if old.get("status") != "complete" else "an earlier"
        if not overwrite:
            raise OutputError(
                f"{str(self.path)!r} holds the files of {state} run ({what}, "
                f"{old.get('started', '?')}); pass --overwrite to replace them (only that "
                f"run's files are removed), or choose another --out"
            )
        changed = []
        for f in old["files"]:
            p = self.path / f["name"]
            if p.is_file() and f.get("sha256") and file_digest(p) != f["sha256"]:
                changed.append(f["name"])
        if changed:
            raise OutputError(
                f"--overwrite: {', '.join(changed)} in {str(self.path)!r} changed since crowdzoo "
                f"wrote them; move them away first (crowdzoo removes only its own, unchanged "
                f"files)"
            )
        for f in old["files"]:
            (self.path / f["name"]).unlink(missing_ok=True)
        for tmp in self.path.glob(TMP_PREFIX + "*"):
            tmp.unlink(missing_ok=True)
        (self.path / MANIFEST).unlink(missing_ok=True)

    def _refuse_foreign(self, name: str) -> None:
        if name == MANIFEST or name != Path(name).name:
            raise ValueError(f"bad output name {name!r}")
        p = self.path / name
        if p.exists() and name not in self.written:
            raise OutputError(
                f"{str(p)!r} exists and was not written by crowdzoo (no manifest lists it); "
                f"move it or choose another --out (--overwrite never replaces your own files)"
            )

    # --- writing -------------------------------------------------------------------------
    def _write_manifest(self, status: str) -> Path:
        names = self.written if status == "complete" else list(
            dict.fromkeys([*self.written, *self.planned]))
        files = []
        for name in names:
            entry: dict[str, Any] = {"name": name}
            p = self.path / name
            if status == "complete" and p.is_file():
                entry.update(bytes=p.stat().st_size, sha256=file_digest(p))
            files.append(entry)
        from . import __version__

        manifest = {
            "crowdzoo_manifest": MANIFEST_VERSION,
            "status": status,
            **self.run,
            "crowdzoo_version": __version__,
            "inputs": self.inputs,
            "started": self._started,
            "finished": _stamp() if status == "complete" else None,
            "files": files,
        }
        return _write_json(self.path / MANIFEST, manifest)

    def write(self, name: str, writer: Callable[[Path], Any]) -> Path:
        """Write ``name`` in the folder atomically with ``writer(tmp_path)``; record it."""
        if name not in self.planned:  # list it in the manifest before it exists
            self._refuse_foreign(name)
            self.planned.append(name)
            self._write_manifest("running")
        elif name not in self.written:
            self._refuse_foreign(name)
        path = atomic_write(self.path / name, writer)
        if name not in self.written:
            self.written.append(name)
        return path

    def finish(self) -> list[Path]:
        """Write the final manifest (last); return the paths of the files written."""
        self._write_manifest("complete")
        return [self.path / n for n in self.written]


def listed_files(folder: str | os.PathLike) -> Iterable[str]:
    """Names of the files the manifest of ``folder`` lists (empty without a manifest)."""
    p = Path(folder) / MANIFEST
    if not p.exists():
        return []
    return [f["name"] for f in json.loads(p.read_text(encoding="utf-8"))["files"]]
