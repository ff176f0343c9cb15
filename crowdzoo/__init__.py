"""crowdzoo: a NumPyro model zoo of Bayesian models of crowdsourced annotation.

>>> import crowdzoo
>>> data = crowdzoo.data.load_demo()
>>> result = crowdzoo.fit("dawid_skene", data, method="map")
>>> result.task_posterior().head()  # doctest: +SKIP

Importing crowdzoo changes nothing outside it: JAX, NumPyro and the models are imported on
first use (so ``crowdzoo --help`` is instant), and process-wide JAX settings are made only
by an explicit :func:`setup` call (the command line and the notebooks make it).
"""

from __future__ import annotations

import importlib as _importlib
import os as _os
import sys as _sys

__version__ = "0.1.0"

#: public names -> the module that defines them (imported on first access)
_LAZY = {
    "Annotations": "crowdzoo.data",
    "load_dataset": "crowdzoo.data",
    "read_csv": "crowdzoo.data",
    "Fit": "crowdzoo.inference",
    "fit": "crowdzoo.inference",
    "ConvergenceWarning": "crowdzoo.inference",
    "next_tasks": "crowdzoo.inference",
    "settled_tasks": "crowdzoo.inference",
    "get_model": "crowdzoo.models",
    "list_models": "crowdzoo.models",
}
_SUBMODULES = ("data", "inference", "models", "aggregation", "plots", "cli")

__all__ = [
    "Annotations",
    "ConvergenceWarning",
    "Fit",
    "__version__",
    "aggregation",
    "data",
    "fit",
    "get_model",
    "inference",
    "list_models",
    "load_dataset",
    "models",
    "next_tasks",
    "plots",
    "read_csv",
    "settled_tasks",
    "setup",
]


def __getattr__(name: str):
    """Import public names and submodules on first access (PEP 562)."""
    if name in _SUBMODULES:
        return _import(f"crowdzoo.{name}")
    if name in _LAZY:
        value = getattr(_import(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'crowdzoo' has no attribute {name!r}")


def _import(module: str):
    """Import a submodule without tqdm's "IProgress not found" warning.

    NumPyro's first import of ``tqdm.auto`` warns so in a Jupyter kernel without ipywidgets
    (tqdm then draws text bars, which is what we want).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        return _importlib.import_module(module)


def __dir__():
    return sorted(set(globals()) | set(__all__))


def _backend_started() -> bool:
    """Whether JAX has already created its backends (then XLA flags no longer apply)."""
    if "jax" not in _sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except Exception:  # pragma: no cover - private API moved: assume the worst
        return True


def setup(host_devices: int | None = None, compilation_cache: bool | str = True) -> dict:
    """Process-wide JAX settings for crowdzoo: parallel NUTS chains and a compile cache.

    Call it once, before anything uses JAX (the ``crowdzoo`` command and the notebooks do).
    Without it crowdzoo works the same, only NUTS chains run one after another on the CPU
    and every new process compiles its kernels again. The draws do not depend on it: the
    same seed gives the same draws with chains in parallel or in sequence.

    Parameters
    ----------
    host_devices : int, optional
        How many CPU devices XLA should expose (``--xla_force_host_platform_device_count``),
        so that NUTS chains run in parallel. Default: ``$CROWDZOO_HOST_DEVICES``, else
        ``max(4, os.cpu_count())``; ``0`` leaves ``XLA_FLAGS`` alone. Has no effect (and says
        so in the returned dict) once JAX's backend has started, or when ``XLA_FLAGS``
        already sets a device count.
    compilation_cache : bool or str
        Keep compiled kernels on disk so that a new process does not compile them again
        (compilation is most of a cold fit's time). ``True``: ``$CROWDZOO_CACHE_DIR`` or
        ``~/.cache/crowdzoo/jax``; a string: that folder; ``False`` (or
        ``CROWDZOO_CACHE_DIR=0``): off. A cache the user configured for JAX is left alone.

    Returns
    -------
    dict
        What was done: ``host_devices`` (the count set, or None) and ``compilation_cache``
        (the folder, or None), with a ``note`` when something could not be applied.
    """
    done: dict = {"host_devices": None, "compilation_cache": None}
    notes = []
    wanted = host_devices
    if wanted is None:
        env = _os.environ.get("CROWDZOO_HOST_DEVICES")
        wanted = int(env) if env else max(4, _os.cpu_count() or 1)
    if int(wanted) < 0:
        raise ValueError(f"host_devices must be >= 0, got {host_devices!r}")
    flags = _os.environ.get("XLA_FLAGS", "")
    if int(wanted) > 0:
        if "xla_force_host_platform_device_count" in flags:
            notes.append("XLA_FLAGS already sets the device count")
        elif _backend_started():
            notes.append("JAX's backend has already started: call crowdzoo.setup() before "
                         "using JAX to run NUTS chains in parallel")
        else:
            _os.environ["XLA_FLAGS"] = (
                f"{flags} --xla_force_host_platform_device_count={int(wanted)}".strip())
            done["host_devices"] = int(wanted)
    if compilation_cache:
        import jax

        where = compilation_cache if isinstance(compilation_cache, str) else \
            _os.environ.get("CROWDZOO_CACHE_DIR", "")
        if where == "0":
            pass
        elif jax.config.jax_compilation_cache_dir:
            done["compilation_cache"] = jax.config.jax_compilation_cache_dir
        else:
            path = where or _os.path.join(_os.path.expanduser("~"), ".cache", "crowdzoo", "jax")
            try:
                _os.makedirs(path, exist_ok=True)
                jax.config.update("jax_compilation_cache_dir", path)
                jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
                done["compilation_cache"] = path
            except OSError as err:  # read-only home: run without the cache
                notes.append(f"no compilation cache: {err}")
    if notes:
        done["note"] = "; ".join(notes)
    return done
