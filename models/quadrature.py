"""Quadrature rules for integrating a task's own parameters out of its likelihood.

Used by :meth:`crowdzoo.models.base.CrowdModel.task_quadrature` (the integrated per-task
log-likelihood that a LOO over tasks needs when tasks have their own parameters).

References
----------
1. P. J. Davis and P. Rabinowitz. Methods of Numerical Integration, 2nd ed. Academic Press,
   1984 (Gauss-Hermite and Gauss-Legendre rules).
"""

from __future__ import annotations

import numpy as np

__all__ = ["gauss_hermite_normal", "gauss_legendre_beta"]


def gauss_hermite_normal(n: int, loc=0.0, scale=1.0):
    """Nodes and log-weights of ``n``-point Gauss-Hermite quadrature for ``Normal(loc, scale)``.

    ``E[f(x)] ~= sum_q exp(log_w_q) f(x_q)``, exact for polynomials of degree < 2n. ``loc``
    may be an array (per-task prior means): the nodes are then ``(n,) + loc.shape``.
    """
    x, w = np.polynomial.hermite_e.hermegauss(int(n))  # weight exp(-x^2 / 2)
    loc = np.asarray(loc, float)
    nodes = loc[None] + scale * x.reshape((-1,) + (1,) * loc.ndim)
    return nodes, np.log(w) - 0.5 * np.log(2 * np.pi)


def gauss_legendre_beta(n: int, a: float, b: float):
    """Nodes and log-weights of ``n``-point Gauss-Legendre quadrature of ``Beta(a, b)`` on (0, 1).

    The weights are the Legendre weights times the Beta density, renormalized to sum to one.
    """
    from scipy.stats import beta as beta_dist

    x, w = np.polynomial.legendre.leggauss(int(n))
    u = (x + 1) / 2
    lw = np.log(w / 2) + beta_dist.logpdf(u, a, b)
    return u, lw - np.logaddexp.reduce(lw)
