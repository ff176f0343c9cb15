"""One runner for every model of the zoo: ``fit(model, data, method) -> Fit``."""

# crowdzoo.models first: NumPyro's import of tqdm.auto then happens under models' filter of
# the "IProgress not found" warning in Jupyter
from crowdzoo import models as _models  # noqa: F401, I001

from .active import next_tasks, pair_information_gain, settled_tasks
from .map import MapResult, log_posterior, log_prior, run_em, run_lbfgs, run_squarem
from .diagnostics import ConvergenceWarning
from .result import INTERVAL, Fit
from .runner import METHODS, PseudoPosteriorWarning, fit

__all__ = [
    "INTERVAL",
    "METHODS",
    "ConvergenceWarning",
    "PseudoPosteriorWarning",
    "Fit",
    "MapResult",
    "fit",
    "log_posterior",
    "next_tasks",
    "pair_information_gain",
    "log_prior",
    "run_em",
    "run_lbfgs",
    "run_squarem",
    "settled_tasks",
]
