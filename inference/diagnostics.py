"""Diagnostics that speak up: convergence checks after a fit, and progress bars by default.

After NUTS, :func:`warn_if_unconverged` (called at the end of :func:`crowdzoo.fit`) emits one
:class:`ConvergenceWarning` when

* the largest rank-normalized split ``r_hat`` exceeds :data:`R_HAT_MAX` (1.01),
* the smallest bulk or tail ESS is below :data:`ESS_PER_CHAIN_MIN` (100) per chain, or
* any transition diverged,

naming the worst parameters and what to do (Vehtari, Gelman, Simpson, Carpenter & Bürkner
2021). After SVI, whose draws come from the fitted guide (independent, so ``r_hat`` and ESS
say nothing about the fit), it warns when the ELBO was still rising over the last tenth of
the steps (more steps needed). :func:`convergence_table` is the per-parameter table behind
:meth:`Fit.convergence`. (Progress bars: :mod:`crowdzoo.inference.progress`.)

References
----------
1. A. Vehtari, A. Gelman, D. Simpson, B. Carpenter, P.-C. Bürkner. Rank-Normalization,
   Folding, and Localization: An Improved R-hat for Assessing Convergence of MCMC.
   Bayesian Analysis 16(2):667-718, 2021. https://doi.org/10.1214/20-BA1221
2. M. Betancourt. A Conceptual Introduction to Hamiltonian Monte Carlo. arXiv:1701.02434,
   2017 (divergent transitions).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

__all__ = [
    "ConvergenceWarning",
    "ESS_PER_CHAIN_MIN",
    "R_HAT_MAX",
    "convergence_problems",
    "convergence_table",
    "warn_if_unconverged",
]

#: largest acceptable rank-normalized split r_hat (Vehtari et al. 2021)
R_HAT_MAX = 1.01
#: smallest acceptable bulk / tail ESS per chain (Vehtari et al. 2021: 100 per chain)
ESS_PER_CHAIN_MIN = 100
#: how many of the worst parameters a warning names
N_WORST = 3


class ConvergenceWarning(UserWarning):
    """A fit that has not converged.

    MCMC chains that disagree, too few effective draws, divergent transitions, an SVI
    objective still improving, or a MAP that hit its iteration cap.
    """


# --- the table ---------------------------------------------------------------------------
def _element_label(name: str, var, flat_index: int) -> str:
    """``name[coord, coord]`` of one element of a DataArray (without sample dims)."""
    dims = [d for d in var.dims if d not in ("chain", "draw")]
    if not dims:
        return name
    idx = np.unravel_index(flat_index, [var.sizes[d] for d in dims])
    parts = []
    for d, i in zip(dims, idx, strict=True):
        coord = var.coords.get(d)
        parts.append(str(coord.values[i]) if coord is not None else str(i))
    return f"{name}[{', '.join(parts)}]"


def convergence_table(fit) -> pd.DataFrame:
    """Per-parameter convergence of a fit with draws: worst r_hat, smallest ESS.

    One row per sampled parameter: ``r_hat`` (the largest over its elements; NaN for SVI,
    whose draws are independent), ``ess_bulk`` and ``ess_tail`` (the smallest), ``worst``
    (the element with the largest r_hat, or the smallest bulk ESS for SVI) and ``ok``
    (r_hat <= 1.01 and both ESS >= 100 per chain). Sorted worst first.

    ``table.attrs`` holds the overall numbers: ``max_r_hat``, ``min_ess_bulk``,
    ``min_ess_tail``, ``divergences``, ``num_chains``, ``num_draws``, ``converged`` and
    ``problems`` (sentences, empty when converged).
    """
    # arviz-stats' own functions (what az.rhat / az.ess are), without importing the rest of
    # arviz (plots): this check runs after every NUTS / SVI fit
    import arviz_stats as azs

    post = fit._posterior_dataset()
    chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    is_mcmc = fit.method == "nuts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant draws (fixed parameters)
        rhat = azs.rhat(post) if is_mcmc and chains > 1 else None
        ess_b = azs.ess(post, method="bulk")
        ess_t = azs.ess(post, method="tail")
    need = ESS_PER_CHAIN_MIN * chains
    # a chain moved if any parameter changed in it; a parameter that is constant while every
    # chain moved is fixed by the model (a one-entry simplex, e.g. one community), not stuck
    moved = np.zeros(chains, bool)
    for name in post.data_vars:
        sd = np.asarray(post[name].std("draw")).reshape(chains, -1)
        moved |= (sd > 0).any(axis=1) if sd.size else False
    rows = []
    for name in post.data_vars:
        eb = np.asarray(ess_b[name]).ravel()
        et = np.asarray(ess_t[name]).ravel()
        row = {"parameter": str(name), "size": int(eb.size)}
        if rhat is not None:
            r = np.asarray(rhat[name]).ravel()
            r_clean = np.where(np.isfinite(r), r, -np.inf)
            worst = int(np.argmax(r_clean))
            row["r_hat"] = float(np.nanmax(r)) if np.isfinite(r).any() else np.nan
        else:
            worst = int(np.nanargmin(np.where(np.isfinite(eb), eb, np.inf)))
            row["r_hat"] = np.nan
        row["ess_bulk"] = float(np.nanmin(eb)) if np.isfinite(eb).any() else np.nan
        row["ess_tail"] = float(np.nanmin(et)) if np.isfinite(et).any() else np.nan
        row["worst"] = _element_label(str(name), post[name], worst)
        # draws that never move (every transition rejected): r_hat / ESS are NaN or bogus
        constant = draws > 1 and float(post[name].std("draw").max()) == 0
        row["stuck"] = bool(constant and not moved.all())
        rows.append(row)
    table = pd.DataFrame(rows).set_index("parameter")
    if is_mcmc:
        table["ok"] = ((table["r_hat"].fillna(1.0) <= R_HAT_MAX)
                       & (table["ess_bulk"].fillna(np.inf) >= need)
                       & (table["ess_tail"].fillna(np.inf) >= need)
                       & ~table["stuck"])
        table = table.sort_values(["ok", "r_hat"], ascending=[True, False])
    else:
        table["ok"] = True
    divergences = int(np.asarray(fit.sample_stats.get("diverging", 0)).sum())
    attrs = {
        "method": fit.method,
        "num_chains": chains,
        "num_draws": draws,
        "max_r_hat": float(table["r_hat"].max()) if table["r_hat"].notna().any() else np.nan,
        "min_ess_bulk": float(table["ess_bulk"].min()),
        "min_ess_tail": float(table["ess_tail"].min()),
        "divergences": divergences,
    }
    problems = convergence_problems(fit, table, attrs)
    attrs["problems"] = problems
    attrs["converged"] = not problems
    table.attrs.update(attrs)
    return table


def _svi_problems(fit) -> list[str]:
    """ELBO still rising over the last tenth of the steps (a significant, relevant gain)."""
    elbo = np.asarray(fit.loss_history, dtype=float)
    elbo = elbo[np.isfinite(elbo)]
    if elbo.size < 40:
        return []
    w = max(10, elbo.size // 10)
    last, prev = elbo[-w:], elbo[-2 * w:-w]
    gain = last.mean() - prev.mean()
    se = np.sqrt(last.var() / w + prev.var() / w)
    n = max(int(fit.data.n_answers), 1)
    if gain > 3 * se and gain / n > 1e-3:
        return [f"the ELBO was still rising at the end (+{gain:.1f} over the last "
                f"{w} steps): raise num_steps (now {elbo.size}) or learning_rate"]
    return []


def convergence_problems(fit, table=None, attrs=None) -> list[str]:
    """Sentences describing why a fit has not converged (empty when it has)."""
    if not fit.has_draws:
        return []
    if fit.method == "svi":
        return _svi_problems(fit)
    if fit.method != "nuts":
        return []
    if table is None:
        table = fit.convergence()
        return list(table.attrs["problems"])
    chains = attrs["num_chains"]
    need = ESS_PER_CHAIN_MIN * chains
    problems = []

    def worst(column, ascending, limit):
        sel = table[column] > limit if not ascending else table[column] < limit
        t = table[sel].sort_values(column, ascending=ascending).head(N_WORST)
        return ", ".join(f"{r.worst} ({getattr(r, column):.{3 if column == 'r_hat' else 0}f})"
                         for r in t.itertuples())

    stuck = list(table.index[table["stuck"]])
    if stuck:
        problems.append(f"the draws of {', '.join(map(str, stuck[:N_WORST]))} never change "
                        f"(the chains did not move: every transition was rejected)")
    if np.isfinite(attrs["max_r_hat"]) and attrs["max_r_hat"] > R_HAT_MAX:
        problems.append(f"max r_hat {attrs['max_r_hat']:.3f} > {R_HAT_MAX} "
                        f"(worst: {worst('r_hat', False, R_HAT_MAX)})")
    low = min(attrs["min_ess_bulk"], attrs["min_ess_tail"])
    if np.isfinite(low) and low < need:
        column = "ess_bulk" if attrs["min_ess_bulk"] <= attrs["min_ess_tail"] else "ess_tail"
        problems.append(f"min {column.replace('_', ' ').replace('ess', 'ESS')} {low:.0f} < "
                        f"{need} ({ESS_PER_CHAIN_MIN} per chain x {chains}) "
                        f"(worst: {worst(column, True, need)})")
    if attrs["divergences"]:
        n = attrs["num_chains"] * attrs["num_draws"]
        problems.append(f"{attrs['divergences']} of {n} transitions diverged")
    return problems


def _advice(fit, problems: list[str]) -> str:
    text = " ".join(problems)
    tips = []
    if "did not move" in text:
        tips.append("start elsewhere (init_from_map=False) or check the model's support")
    if "r_hat" in text or "ESS" in text:
        tips.append("run longer chains (num_warmup, num_samples)")
    if "diverged" in text:
        tips.append("raise target_accept_prob (e.g. 0.95) or reparameterize")
    if "r_hat" in text:
        tips.append("check the rank plots (arviz_plots.plot_rank(fit.to_arviz())) for chains "
                    "stuck in different modes")
    return "; ".join(tips)


def warn_if_unconverged(fit, stacklevel: int = 3) -> list[str]:
    """Emit one :class:`ConvergenceWarning` when a NUTS or SVI fit has not converged.

    Returns the problems found (empty when converged; always empty for MAP, whose iteration
    cap is checked by the MAP runner itself). The numbers are in ``fit.convergence()``.
    """
    if not fit.has_draws or fit.method not in ("nuts", "svi"):
        return []
    problems = convergence_problems(fit)
    if problems:
        advice = _advice(fit, problems)
        warnings.warn(
            f"{fit.model.name} ({fit.method}) has not converged: " + "; ".join(problems)
            + (f". To do: {advice}" if advice else "")
            + ". See fit.convergence().",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )
    return problems
