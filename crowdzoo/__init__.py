"""crowdzoo: a NumPyro model zoo of Bayesian models of crowdsourced annotation.

>>> import crowdzoo
>>> data = crowdzoo.data.load_demo()
>>> result = crowdzoo.fit("dawid_skene", data, method="map")
>>> result.task_posterior().head()  # doctest: +SKIP
"""

from __future__ import annotations

import os as _os
import sys as _sys


def _enable_parallel_chains() -> None:
    """Expose several CPU devices to JAX so NUTS chains run in parallel.

    Only possible before JAX's backend starts; set ``CROWDZOO_HOST_DEVICES=0`` to leave
    XLA_FLAGS alone.
    """
    wanted = _os.environ.get("CROWDZOO_HOST_DEVICES")
    if wanted == "0":
        return
    flags = _os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return
    jax_mod = _sys.modules.get("jax")
    if jax_mod is not None:
        try:
            from jax._src import xla_bridge

            if xla_bridge.backends_are_initialized():
                return
        except Exception:  # pragma: no cover - private API moved
            return
    n = int(wanted) if wanted else max(4, _os.cpu_count() or 1)
    _os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


_enable_parallel_chains()

import numpyro as _numpyro  # noqa: E402  (numpyro before arviz: arviz's converter needs it)


def _enable_compilation_cache() -> None:
    """Keep compiled kernels on disk, so a new process does not compile them again.

    Compilation is most of a cold fit's time (seconds; EM itself takes milliseconds). The
    cache lives in ``$CROWDZOO_CACHE_DIR`` (default ``~/.cache/crowdzoo/jax``); set it to
    ``0`` to turn this off. A cache the user configured for JAX is left alone.
    """
    import jax

    where = _os.environ.get("CROWDZOO_CACHE_DIR", "")
    if where == "0" or jax.config.jax_compilation_cache_dir:
        return
    path = where or _os.path.join(_os.path.expanduser("~"), ".cache", "crowdzoo", "jax")
    try:
        _os.makedirs(path, exist_ok=True)
    except OSError:  # read-only home: run without the cache
        return
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


_enable_compilation_cache()

from . import data, inference, models  # noqa: E402
from .data import Annotations, load_dataset, read_csv  # noqa: E402
from .inference import Fit, fit  # noqa: E402
from .models import get_model, list_models  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Annotations",
    "Fit",
    "__version__",
    "data",
    "fit",
    "get_model",
    "inference",
    "list_models",
    "load_dataset",
    "models",
    "read_csv",
]
