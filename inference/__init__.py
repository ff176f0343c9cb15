"""One runner for every model of the zoo: ``fit(model, data, method) -> Fit``."""

from .result import INTERVAL, Fit
from .map import MapResult, log_posterior, log_prior, run_em, run_lbfgs, run_squarem
from .diagnostics import ConvergenceWarning
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
    "log_prior",
    "run_em",
    "run_lbfgs",
    "run_squarem",
]
