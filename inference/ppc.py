"""Posterior predictive checks: does the fitted model reproduce the answers it was fitted to.

For each posterior draw ``theta^(s)`` (NUTS/SVI), or the MAP repeated (the plug-in
predictive), the answers are replicated by the model's own NumPyro program run without
answers through ``numpyro.infer.Predictive`` (its parameter sites set to ``theta^(s)``):

* ``latent="posterior"`` (default): ``z_t ~ p(z_t | theta, y)``, the exact conditional — the
  same items with their inferred truths, new answers ("mixed" replication);
* ``latent="prior"``: ``z_t ~ p(z_t | theta)`` — new items from the model.

then the program draws ``y_rep`` on the observed design (who answered what), with whatever
explicit gates it has (the honest worker's isCorrect, MACE's spamming). Test statistics
``T(y)`` are compared with their replicated distribution ``T(y_rep)``; the posterior
predictive p-value is ``P(T(y_rep) >= T(y))`` (ties count half), close to 0 or 1 where the
model fails to reproduce the data. Posterior predictive p-values are not uniform under the
model (they concentrate near 0.5), so a p-value of 0.001 is strong evidence of misfit, and a
p-value of 0.3 is not evidence of fit.

Statistics (Han, Adiguzel & Carpenter 2024; Gelman et al. BDA3 ch. 6):

* per item: the number of answers that agree with the item's majority, and the histogram
  over items of the number of votes for each class (for binary data, the distribution of
  "positive votes per item" that Han et al. show Dawid-Skene cannot reproduce on RTE);
* per worker: the rate at which a worker's answers agree with the item's majority;
* overall: mean agreement, its spread over items, and the share of each class.

References
----------
1. A. Gelman, J. B. Carlin, H. S. Stern, D. B. Dunson, A. Vehtari, D. B. Rubin. Bayesian
   Data Analysis, 3rd ed., chapter 6 (posterior predictive checking). CRC Press, 2013.
2. J. Han, M. Adiguzel, B. Carpenter. Crowdsourcing with Difficulty: A Bayesian Rating Model
   for Heterogeneous Items. arXiv:2405.19521, 2024.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

__all__ = ["PPCResult", "posterior_predictive", "ppc", "ppp_value", "answer_statistics"]


@partial(jax.jit, static_argnames=("model", "latent"))
def _replicate(model, flat_params, data, key, latent: str):
    """Replicated answers ``(S, N)`` from the model's own program (``numpyro.infer.Predictive``).

    The model program runs without answers, its parameter sites (and, for
    ``latent="posterior"``, its ``z`` site, drawn from the exact ``p(z | theta, y)``) set to
    the given values: NumPyro's ``Predictive`` substitutes them and samples the rest.
    """
    from numpyro.infer import Predictive

    k_z, k_y = jax.random.split(key)
    samples = dict(flat_params)
    if latent == "posterior":
        n_draws = jax.tree.leaves(flat_params)[0].shape[0]

        def draw_z(params, k):
            logits = model.log_likelihood(params, data).logits
            return jax.random.categorical(k, logits, axis=-1)

        samples["z"] = jax.vmap(draw_z)(flat_params, jax.random.split(k_z, n_draws))
    predictive = Predictive(model, posterior_samples=samples, return_sites=["y"],
                            parallel=True)
    return predictive(k_y, data.without_labels())["y"]


def posterior_predictive(fit, n_draws: int = 200, latent: str = "posterior",
                         seed: int = 0) -> np.ndarray:
    """Replicated answers ``(S, N)`` (class codes) on the observed design.

    Parameters
    ----------
    fit : Fit
        A fit of a generative model (NUTS and SVI use their draws, evenly thinned to
        ``n_draws``; MAP repeats its point estimate: the plug-in predictive).
    n_draws : int
        Number of replicated data sets S.
    latent : {"posterior", "prior"}
        Where the true labels of the replicates come from (see the module docstring).
    seed : int
        Seed of the replication.
    """
    if latent not in ("posterior", "prior"):
        raise ValueError(f"latent must be 'posterior' or 'prior', got {latent!r}")
    from ..models import Baseline

    if isinstance(fit.model, Baseline) or not fit.params:
        raise ValueError(f"{fit.model.name} has no generative model to replicate answers from")
    if fit.has_draws:
        flat = {k: np.asarray(v).reshape((-1,) + v.shape[2:]) for k, v in fit.samples.items()}
        total = next(iter(flat.values())).shape[0]
        idx = np.linspace(0, total - 1, min(n_draws, total)).round().astype(int)
        flat = {k: jnp.asarray(v[idx]) for k, v in flat.items()}
    else:
        flat = {k: jnp.broadcast_to(jnp.asarray(v), (n_draws,) + np.shape(v))
                for k, v in fit.params.items()}
    y = _replicate(fit.model, flat, fit.data, jax.random.PRNGKey(seed), latent)
    return np.asarray(y, dtype=np.int32)


# --- statistics --------------------------------------------------------------------------
def answer_statistics(labels, task, worker, n_tasks: int, n_workers: int, n_classes: int):
    """Test statistics of one or many answer vectors.

    Parameters
    ----------
    labels : int array (N,) or (S, N)
        Answers (class codes).
    task, worker : int arrays (N,)
        The design.
    n_tasks, n_workers, n_classes : int
        Sizes.

    Returns
    -------
    dict of numpy arrays (leading dim S when ``labels`` is 2-d)
        ``counts`` (T, K) votes per item and class; ``agreement`` (T,) answers agreeing
        with the item's majority; ``worker_agreement`` (W,) share of a worker's answers that
        agree with the majority of their item (ties split); ``mean_agreement``,
        ``sd_agreement`` (share of an item's answers in its majority: mean and sd over
        items); ``class_share`` (K,).
    """
    y = np.atleast_2d(np.asarray(labels))
    s = y.shape[0]
    task = np.asarray(task)
    worker = np.asarray(worker)
    flat = (np.arange(s)[:, None] * n_tasks + task[None]) * n_classes + y
    counts = np.bincount(flat.ravel(), minlength=s * n_tasks * n_classes).reshape(
        s, n_tasks, n_classes)
    top = counts.max(-1)  # (S, T)
    n_top = (counts == top[..., None]).sum(-1)
    per_task = counts.sum(-1)
    answer_count = np.take_along_axis(counts[:, task], y[..., None], axis=-1)[..., 0]
    agree = (answer_count == top[:, task]) / n_top[:, task]  # (S, N), ties split
    n_w = np.bincount(worker, minlength=n_workers)
    w_agree = np.stack([np.bincount(worker, weights=a, minlength=n_workers) for a in agree])
    w_agree = w_agree / np.maximum(n_w, 1)
    has = per_task > 0
    share = np.where(has, top / np.maximum(per_task, 1), np.nan)
    out = {
        "counts": counts,
        "agreement": top,
        "worker_agreement": np.where(n_w > 0, w_agree, np.nan),
        "mean_agreement": np.nanmean(share, axis=1),
        "sd_agreement": np.nanstd(share, axis=1),
        "class_share": np.bincount((np.arange(s)[:, None] * n_classes + y).ravel(),
                                   minlength=s * n_classes).reshape(s, n_classes) / y.shape[1],
    }
    if np.ndim(labels) == 1:
        out = {k: v[0] for k, v in out.items()}
    return out


def ppp_value(observed, replicated) -> np.ndarray:
    """``P(T(y_rep) >= T(y))`` over the leading axis of ``replicated``; ties count half."""
    observed = np.asarray(observed, float)
    replicated = np.asarray(replicated, float)
    return (replicated > observed).mean(0) + 0.5 * (replicated == observed).mean(0)


def _vote_histogram(counts, max_votes: int):
    """``H[..., k, c]`` = number of items with exactly ``c`` votes for class ``k``."""
    counts = np.asarray(counts)
    onehot = counts[..., None] == np.arange(max_votes + 1)  # (..., T, K, C)
    return onehot.sum(-3)


@dataclasses.dataclass
class PPCResult:
    """Observed and replicated test statistics of a posterior predictive check.

    Attributes
    ----------
    model, method : str
        The fit that was checked.
    latent : str
        ``"posterior"`` or ``"prior"`` replication of the true labels.
    observed : dict
        :func:`answer_statistics` of the data.
    replicated : dict
        The same statistics of each replicate (leading dim S).
    task_ids, worker_ids, classes : pandas.Index
        The user's ids.
    """

    model: str
    method: str
    latent: str
    observed: dict
    replicated: dict
    task_ids: pd.Index
    worker_ids: pd.Index
    classes: pd.Index

    @property
    def n_replicates(self) -> int:
        """Number of replicated data sets."""
        return int(self.replicated["agreement"].shape[0])

    def _row(self, name, obs, rep, interval=0.95):
        lo, hi = (1 - interval) / 2, 1 - (1 - interval) / 2
        return {"statistic": name, "observed": float(obs), "replicated_mean": float(rep.mean()),
                "low": float(np.quantile(rep, lo)), "high": float(np.quantile(rep, hi)),
                "ppp": float(ppp_value(obs, rep))}

    def overall(self) -> pd.DataFrame:
        """Overall statistics: observed, replicated mean and 95% interval, ppp."""
        o, r = self.observed, self.replicated
        rows = [self._row("mean agreement with majority", o["mean_agreement"],
                          r["mean_agreement"]),
                self._row("sd over items of agreement", o["sd_agreement"], r["sd_agreement"])]
        for k, c in enumerate(self.classes):
            rows.append(self._row(f"share of class {c}", o["class_share"][k],
                                  r["class_share"][:, k]))
        stat_o, stat_r = self.histogram_discrepancy()
        rows.append(self._row("vote histogram chi-square", stat_o, stat_r))
        return pd.DataFrame(rows).set_index("statistic")

    def vote_histogram(self, label=None) -> pd.DataFrame:
        """Return number of items with ``c`` votes for a class, observed vs replicated, per ``c``.

        ``label`` defaults to the second class (binary data: the "positive" votes of Han et
        al.); ``label="agreement"`` gives the histogram of majority agreement instead.
        """
        obs, rep = self._histograms(label)
        lo, hi = np.quantile(rep, [0.025, 0.975], axis=0)
        return pd.DataFrame({"observed": obs, "replicated_mean": rep.mean(0), "low": lo,
                             "high": hi, "ppp": ppp_value(obs, rep)},
                            index=pd.Index(np.arange(obs.size), name="votes"))

    def _histograms(self, label=None):
        max_votes = int(max(self.observed["counts"].sum(-1).max(),
                            self.replicated["counts"].sum(-1).max()))
        if isinstance(label, str) and label == "agreement":
            obs = _vote_histogram(self.observed["agreement"][:, None], max_votes)[0]
            rep = _vote_histogram(self.replicated["agreement"][..., None], max_votes)[:, 0]
            return obs, rep
        k = (1 if len(self.classes) > 1 else 0) if label is None else self._class_code(label)
        obs = _vote_histogram(self.observed["counts"], max_votes)[k]
        rep = _vote_histogram(self.replicated["counts"], max_votes)[:, k]
        return obs, rep

    def _class_code(self, label):
        names = [str(c) for c in self.classes]
        if str(label) not in names:
            raise ValueError(f"{label!r} is not a class; classes: {names}")
        return names.index(str(label))

    def histogram_discrepancy(self, label=None):
        """Chi-square distance of the vote histogram from its replicated mean.

        ``X(y) = sum_c (H_c(y) - E[H_c]) ** 2 / (E[H_c] + 1)`` with ``E`` the mean over
        replicates, for the data and for each replicate: ``(X_obs, X_rep (S,))``. The +1
        keeps empty bins finite.
        """
        obs, rep = self._histograms(label)
        mean = rep.mean(0)
        x_obs = ((obs - mean) ** 2 / (mean + 1)).sum()
        x_rep = ((rep - mean) ** 2 / (mean + 1)).sum(-1)
        return float(x_obs), x_rep

    def items(self) -> pd.DataFrame:
        """Per item: answers agreeing with the majority, observed vs replicated, and ppp."""
        o, r = self.observed["agreement"], self.replicated["agreement"]
        return pd.DataFrame({"observed": o, "replicated_mean": r.mean(0),
                             "ppp": ppp_value(o, r)},
                            index=pd.Index(self.task_ids, name="task"))

    def workers(self) -> pd.DataFrame:
        """Per worker: agreement rate with the majority, observed vs replicated, and ppp."""
        o, r = self.observed["worker_agreement"], self.replicated["worker_agreement"]
        lo, hi = np.nanquantile(r, [0.025, 0.975], axis=0)
        return pd.DataFrame({"observed": o, "replicated_mean": np.nanmean(r, 0), "low": lo,
                             "high": hi, "ppp": ppp_value(o, r)},
                            index=pd.Index(self.worker_ids, name="worker"))

    def summary(self, level: float = 0.05) -> dict:
        """Headline numbers: histogram ppp and shares of items / workers with extreme ppp.

        An item or worker is *extreme* when its ppp is below ``level / 2`` or above
        ``1 - level / 2``.
        """
        x_obs, x_rep = self.histogram_discrepancy()
        ppp_items = self.items()["ppp"].to_numpy()
        ppp_workers = self.workers()["ppp"].to_numpy()

        def extreme(p):
            return float(np.mean((p < level / 2) | (p > 1 - level / 2)))

        return {"histogram_ppp": float(ppp_value(x_obs, x_rep)),
                "extreme_items": extreme(ppp_items), "extreme_workers": extreme(ppp_workers),
                "n_replicates": self.n_replicates}


def ppc(fit, n_draws: int = 200, latent: str = "posterior", seed: int = 0) -> PPCResult:
    """Posterior predictive check of a fit on its own data.

    Parameters
    ----------
    fit : Fit
        A fit of a generative model (MAP: plug-in predictive; NUTS/SVI: full posterior).
    n_draws : int
        Number of replicated data sets.
    latent : {"posterior", "prior"}
        Replicate the true labels from their posterior given the answers or from the prior.
    seed : int
        Seed of the replication.

    Returns
    -------
    PPCResult

    Examples
    --------
    >>> import crowdzoo
    >>> from crowdzoo.inference.criticism import ppc
    >>> fit = crowdzoo.fit("dawid_skene", crowdzoo.data.load_demo())
    >>> check = ppc(fit, n_draws=50)
    >>> check.overall().shape[1]
    5
    """
    y_rep = posterior_predictive(fit, n_draws=n_draws, latent=latent, seed=seed)
    a = fit.annotations
    args = (np.asarray(a.task), np.asarray(a.worker), a.n_tasks, a.n_workers, a.n_classes)
    return PPCResult(fit.model.name, fit.method, latent,
                     answer_statistics(np.asarray(a.label), *args),
                     answer_statistics(y_rep, *args), a.task_ids, a.worker_ids, a.classes)
