"""The result of a fit: task posteriors, worker parameters, diagnostics and ArviZ output.

Everything here is at the edge of the library: JAX arrays in, pandas and xarray out, with the
user's own task ids, worker ids and class names.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

__all__ = ["Fit", "INTERVAL"]

#: probability mass of the credible intervals reported by :meth:`Fit.workers`
INTERVAL = 0.89


@partial(jax.jit, static_argnames=("model",))
def _rao_blackwell(model, flat_samples, data):
    """Average of the exact ``p(z | params, y)`` over draws, and per-task log-lik per draw."""

    def step(acc, params):
        m = model.log_likelihood(params, data)
        return acc + jax.nn.softmax(m.logits, axis=-1), m.per_task

    zeros = jnp.zeros((data.n_tasks, data.n_classes))
    acc, per_task = jax.lax.scan(step, zeros, flat_samples)
    n = jax.tree.leaves(flat_samples)[0].shape[0]
    return acc / n, per_task


@partial(jax.jit, static_argnames=("model",))
def _point_posterior(model, params, data):
    m = model.log_likelihood(params, data)
    return jax.nn.softmax(m.logits, axis=-1), m.per_task


class Fit:
    """A fitted crowd model.

    Attributes
    ----------
    model : CrowdModel
        The model that was fitted.
    method : str
        ``"map"``, ``"svi"`` or ``"nuts"``.
    annotations : Annotations
        The data, with the user's ids.
    params : dict of numpy arrays
        The MAP, or the posterior mean of each parameter when there are draws.
    samples : dict of numpy arrays or None
        Posterior draws, shaped ``(chain, draw, ...)``.
    loss_history : numpy array or None
        Log posterior per EM / L-BFGS iteration (MAP, and the MAP start of NUTS), or the ELBO
        per SVI step.
    diagnostics : dict
        Algorithm, iterations and convergence; divergences for NUTS.
    elapsed : float
        Wall time of the fit in seconds (compilation included).
    """

    def __init__(self, model, method, annotations, data, *, params=None, samples=None,
                 sample_stats=None, loss_history=None, task_probs=None, per_task_loglik=None,
                 diagnostics=None):
        self.model = model
        self.method = method
        self.annotations = annotations
        self.data = data
        self.samples = samples
        self.sample_stats = sample_stats or {}
        self.loss_history = None if loss_history is None else np.asarray(loss_history)
        self.diagnostics = dict(diagnostics or {})
        self.elapsed = float("nan")
        self.seed = None
        if params is None and samples is not None:
            params = {k: v.mean(axis=(0, 1)) for k, v in samples.items()}
        self.params = params or {}
        self._task_probs = task_probs
        self._per_task_loglik = per_task_loglik

    # --- draws -------------------------------------------------------------------------
    @property
    def has_draws(self) -> bool:
        """Whether there are posterior draws (SVI, NUTS)."""
        return self.samples is not None

    def _flat(self):
        return {k: jnp.asarray(v.reshape((-1,) + v.shape[2:])) for k, v in self.samples.items()}

    def _compute_posterior(self):
        if self._task_probs is not None and (self._per_task_loglik is not None or not self.params):
            return
        if self.has_draws:
            probs, per_task = _rao_blackwell(self.model, self._flat(), self.data)
            shape = next(iter(self.samples.values())).shape[:2]
            self._per_task_loglik = np.asarray(per_task).reshape(shape + (self.data.n_tasks,))
        else:
            probs, per_task = _point_posterior(
                self.model, {k: jnp.asarray(v) for k, v in self.params.items()}, self.data
            )
            self._per_task_loglik = np.asarray(per_task)[None, None]
        if self._task_probs is None:
            self._task_probs = np.asarray(probs, dtype=np.float64)
            self._task_probs /= self._task_probs.sum(-1, keepdims=True)
        if not np.isfinite(self._task_probs).all():
            raise FloatingPointError(f"{self.model.name}: non-finite task posterior")

    # --- tasks ---------------------------------------------------------------------------
    def task_posterior(self) -> pd.DataFrame:
        """``p(z_t = k | answers)``: tasks x classes, rows sum to one.

        For SVI and NUTS this is the average over draws of the exact conditional
        ``p(z | params, answers)`` (Rao-Blackwellized), not a histogram of sampled labels.
        """
        self._compute_posterior()
        a = self.annotations
        return pd.DataFrame(
            self._task_probs,
            index=pd.Index(a.task_ids, name="task"),
            columns=pd.Index(a.classes, name="label"),
        )

    def labels(self) -> pd.Series:
        """Most probable class of each task (first class on exact ties)."""
        post = self.task_posterior()
        codes = post.to_numpy().argmax(axis=1)
        return pd.Series(np.asarray(self.annotations.classes)[codes], index=post.index,
                         name="label")

    def accuracy(self, gold: pd.Series | None = None) -> float:
        """Expected accuracy of :meth:`labels` on gold tasks (exact ties split evenly).

        ``gold`` defaults to the gold labels of the data; it is an error to score on gold
        labels that were used to fit (they are clamped, so the score would be 1).
        """
        a = self.annotations
        if gold is None:
            if not a.has_gold:
                raise ValueError("no gold labels to score against; pass gold=")
            if np.any(np.asarray(self.data.gold) >= 0):
                raise ValueError(
                    "the gold labels were used to fit (use_gold=True clamps them), so scoring "
                    "on them is meaningless; fit with use_gold=False to score"
                )
            gold = a.gold_series()
        post = self.task_posterior()
        gold = pd.Series(gold)
        missing = gold.index.difference(post.index)
        if len(missing):
            raise ValueError(f"gold has {len(missing)} tasks without answers, e.g. {list(missing[:5])}")
        p = post.loc[gold.index].to_numpy()
        top = np.isclose(p, p.max(axis=1, keepdims=True), rtol=0, atol=1e-9)
        cls = {str(c): i for i, c in enumerate(a.classes)}
        try:
            g = np.array([cls[str(v)] for v in gold.to_numpy()])
        except KeyError as err:
            raise ValueError(f"gold label {err.args[0]!r} is not a class of the data") from None
        hit = top[np.arange(len(g)), g] / top.sum(axis=1)
        return float(hit.mean())

    def log_likelihood(self) -> np.ndarray:
        """Per-task log-likelihood ``log p(y_t | params)``, shaped ``(chain, draw, task)``."""
        self._compute_posterior()
        return self._per_task_loglik

    def tasks(self) -> pd.DataFrame:
        """Per-task table: label, its probability, number of answers, gold, task parameters."""
        post = self.task_posterior()
        a = self.annotations
        df = pd.DataFrame(index=post.index)
        df["label"] = self.labels()
        df["probability"] = post.to_numpy().max(axis=1)
        df["n_answers"] = np.bincount(a.task, minlength=a.n_tasks)
        if a.has_gold:
            df["gold"] = a.gold_series().reindex(post.index)
        df = df.join(self._param_table("task", a.task_ids))
        return df

    # --- workers -------------------------------------------------------------------------
    def _stats(self, which: str):
        fn = self.model.worker_stats if which == "worker" else self.model.task_stats
        if self.has_draws:
            flat = self._flat()
            out = jax.vmap(lambda p: fn(p, self.data))(flat)
            shape = next(iter(self.samples.values())).shape[:2]
            return {k: np.asarray(v).reshape(shape + v.shape[1:]) for k, v in out.items()}
        return {k: np.asarray(v) for k, v in fn(
            {k: jnp.asarray(v) for k, v in self.params.items()}, self.data).items()}

    def _named_values(self, dim: str):
        """Parameters whose first dim is ``dim``, plus derived stats: name -> (values, dims)."""
        out = {}
        source = self.samples if self.has_draws else self.params
        for name, dims in self.model.dims.items():
            if dims and dims[0] == dim and name in source:
                out[name] = (np.asarray(source[name]), dims)
        for name, v in self._stats(dim).items():
            out[name] = (v, (dim,) + tuple(f"{name}_dim_{i}" for i in range(v.ndim - 1
                         - (2 if self.has_draws else 0))))
        return out

    def _param_table(self, dim: str, ids) -> pd.DataFrame:
        lo, hi = (1 - INTERVAL) / 2, 1 - (1 - INTERVAL) / 2
        classes = [str(c) for c in self.annotations.classes]
        cols = {}
        for name, (values, dims) in self._named_values(dim).items():
            lead = 2 if self.has_draws else 0
            n = values.shape[lead]
            flat = values.reshape(values.shape[:lead] + (n, -1))
            rest = values.shape[lead + 1:]
            if rest:
                axis_dims = tuple(dims[1:]) if len(dims) == 1 + len(rest) else (None,) * len(rest)
                labels = [
                    f"{name}[" + ",".join(
                        classes[i] if d in ("true_class", "label") else str(i)
                        for i, d in zip(idx, axis_dims, strict=True)) + "]"
                    for idx in np.ndindex(*rest)
                ]
            else:
                labels = [name]
            for j, label in enumerate(labels):
                col = flat[..., j]
                if self.has_draws:
                    draws = col.reshape(-1, n)
                    cols[label] = draws.mean(0)
                    cols[f"{label}_low"] = np.quantile(draws, lo, axis=0)
                    cols[f"{label}_high"] = np.quantile(draws, hi, axis=0)
                else:
                    cols[label] = col
        return pd.DataFrame(cols, index=pd.Index(ids, name=dim))

    def workers(self) -> pd.DataFrame:
        """Per-worker table: number of answers and the model's per-worker parameters.

        For Dawid-Skene: the confusion matrix entries ``confusion[true,label]`` and the
        derived ``accuracy``. With draws (SVI, NUTS), each value is the posterior mean and
        ``*_low`` / ``*_high`` give the central 89% credible interval.
        """
        a = self.annotations
        df = pd.DataFrame(index=pd.Index(a.worker_ids, name="worker"))
        df["n_answers"] = np.bincount(a.worker, minlength=a.n_workers)
        table = self._param_table("worker", a.worker_ids)
        df = df.join(table)
        df.attrs["interval"] = INTERVAL if self.has_draws else None
        return df

    # --- ArviZ ---------------------------------------------------------------------------
    def to_arviz(self):
        """The fit as an ArviZ DataTree.

        Groups: ``posterior`` (draws, or the MAP as a single draw), ``sample_stats`` (NUTS),
        ``log_likelihood`` (``answers``: per task, for ``az.loo``), ``observed_data``
        (``label`` per answer) and ``constant_data`` (task and worker of each answer).
        Named dims: ``task``, ``worker``, ``true_class``, ``label``, ``answer``.
        """
        import numpyro  # noqa: F401  (import order: numpyro before arviz)
        import arviz as az

        a = self.annotations
        if self.has_draws:
            post = dict(self.samples)
        else:
            post = {k: np.asarray(v)[None, None] for k, v in self.params.items()}
        dims = {k: list(v) for k, v in self.model.dims.items()}
        for which in ("worker", "task"):
            for name, v in self._stats(which).items():
                post[name] = v if self.has_draws else v[None, None]
                dims[name] = [which]
        classes = [str(c) for c in a.classes]
        coords = {
            "task": [str(t) for t in a.task_ids],
            "worker": [str(w) for w in a.worker_ids],
            "true_class": classes,
            "label": classes,
            "answer": np.arange(a.n_answers),
        }
        dims["answers"] = ["task"]
        dims["label_obs"] = ["answer"]
        dims["task_of_answer"] = ["answer"]
        dims["worker_of_answer"] = ["answer"]
        groups = {
            "posterior": post,
            "log_likelihood": {"answers": self.log_likelihood()},
            "observed_data": {"label_obs": np.asarray(a.label)},
            "constant_data": {"task_of_answer": np.asarray(a.task),
                              "worker_of_answer": np.asarray(a.worker)},
        }
        if self.sample_stats:
            groups["sample_stats"] = {
                ("diverging" if k == "diverging" else
                 {"num_steps": "n_steps", "accept_prob": "acceptance_rate"}.get(k, k)): v
                for k, v in self.sample_stats.items()
            }
        attrs = {"model": self.model.name, "method": self.method,
                 "inference_library": "numpyro", "creation_library": "crowdzoo"}
        return az.from_dict(groups, coords=coords, dims=dims,
                            attrs={"posterior": attrs, "log_likelihood": attrs})

    def summary(self):
        """ArviZ summary (mean, sd, HDI, r_hat, ESS) of the parameters for draws; a text
        report for MAP."""
        if self.has_draws:
            import numpyro  # noqa: F401
            import arviz as az

            # az.summary stacks variables along a dim it calls "label": rename ours first
            post = self.to_arviz()["posterior"].to_dataset()[list(self.samples)]
            if "label" in post.dims:
                post = post.rename({"label": "answer_label"})
            return az.summary(post)
        lines = [f"{self.model.name} fitted by {self.method} ({self.diagnostics.get('algorithm')})"]
        for k, v in self.diagnostics.items():
            lines.append(f"  {k}: {v}")
        return "\n".join(lines)

    def convergence(self) -> dict:
        """NUTS/SVI: max r_hat, min bulk/tail ESS and divergences over all parameters."""
        if not self.has_draws:
            return dict(self.diagnostics)
        import numpyro  # noqa: F401
        import arviz as az

        dt = self.to_arviz()
        post = dt["posterior"].to_dataset()[list(self.samples)]
        out = dict(self.diagnostics)
        if self.method == "nuts":
            rhat = az.rhat(post)
            out["max_r_hat"] = float(max(float(rhat[v].max()) for v in rhat.data_vars))
        ess_b = az.ess(post, method="bulk")
        ess_t = az.ess(post, method="tail")
        out["min_ess_bulk"] = float(min(float(ess_b[v].min()) for v in ess_b.data_vars))
        out["min_ess_tail"] = float(min(float(ess_t[v].min()) for v in ess_t.data_vars))
        return out

    def predict_proba(self, features) -> pd.DataFrame:
        """Class probabilities of the learned classifier for new items (learning from crowds).

        Delegates to the model's ``predict_proba(params, features, data)`` hook; with draws
        (SVI, NUTS) the probabilities are averaged over the draws (posterior predictive).

        Parameters
        ----------
        features : pandas.DataFrame or array (n, D)
            Features of the new items, with the training features' columns (a frame is
            aligned by column name; its index names the rows of the result).

        Returns
        -------
        pandas.DataFrame
            Items x classes, rows sum to one.
        """
        if not getattr(self.model, "has_classifier", False):  # baselines have no such flag
            raise TypeError(
                f"model {self.model.name!r} has no classifier of task features; predict_proba "
                f"needs a learning-from-crowds model such as 'raykar'"
            )
        hook = self.model.predict_proba
        names = self.annotations.feature_names
        d = self.data.features.shape[1]
        if isinstance(features, pd.DataFrame):
            index = features.index
            if names is not None and set(map(str, features.columns)) == set(names):
                features = features.set_axis(list(map(str, features.columns)), axis=1)[list(names)]
            features = features.to_numpy(dtype=np.float64)
        else:
            features = np.asarray(features, dtype=np.float64)
            index = pd.RangeIndex(features.shape[0] if features.ndim else 0)
        if features.ndim != 2 or features.shape[1] != d:
            raise ValueError(f"features must have shape (n, {d}) like the training features, "
                             f"got {features.shape}")
        if not np.isfinite(features).all():
            raise ValueError("features have NaN/inf values in rows "
                             f"{list(np.flatnonzero(~np.isfinite(features).all(1))[:5])}")
        x = jnp.asarray(features, jnp.float32)
        if self.has_draws:
            probs = jax.vmap(lambda p: hook(p, x, self.data))(self._flat()).mean(0)
        else:
            probs = hook({k: jnp.asarray(v) for k, v in self.params.items()}, x, self.data)
        return pd.DataFrame(np.asarray(probs, dtype=np.float64), index=index,
                            columns=pd.Index(self.annotations.classes, name="label"))

    def __repr__(self) -> str:
        a = self.annotations
        return (f"Fit(model={self.model.name!r}, method={self.method!r}, tasks={a.n_tasks}, "
                f"workers={a.n_workers}, classes={a.n_classes}, elapsed={self.elapsed:.2f}s)")
