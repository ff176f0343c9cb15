"""The result of a fit: task posteriors, worker parameters, diagnostics and ArviZ output.

Everything here is at the edge of the library: JAX arrays in, pandas and xarray out, with the
user's own task ids, worker ids and class names.
"""

from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

__all__ = ["ARVIZ_RESERVED_DIMS", "CrowdTree", "Fit", "INTERVAL", "MissingGroupError",
           "arviz_dim"]

#: probability mass of the credible intervals reported by :meth:`Fit.workers`
INTERVAL = 0.89

#: dim names ArviZ creates or reserves (``az.summary`` stacks along ``label``, plots facet
#: along ``column`` / ``row`` / ``plot_axis``, ...): no DataTree of a fit uses them
ARVIZ_RESERVED_DIMS = frozenset({
    "label", "summary", "quantile", "hdi", "ci_bound", "ci", "plot_axis", "column", "row",
    "__variable__", "model", "sample", "kwarg", "rope_dim", "pointwise_sample_dim",
    "component", "dim_0",
})
#: a model dim -> its name in the DataTree (the models' ``label`` is ArviZ's stacking dim)
_DIM_RENAMES = {"label": "answer_class"}
#: most posterior draws replicated into the ``posterior_predictive`` group
MAX_PREDICTIVE_DRAWS = 500
#: replicates of the plug-in predictive of a MAP fit
MAP_PREDICTIVE_DRAWS = 100


def arviz_dim(dim: str) -> str:
    """Return the DataTree name of a model dim (``label`` -> ``answer_class``, others as is)."""
    return _DIM_RENAMES.get(dim, dim)


class MissingGroupError(KeyError, ValueError):
    """A group a fit cannot have (``log_likelihood`` of a MAP fit, ``sample_stats`` of SVI).

    Both a ``KeyError`` (what a missing DataTree group raises, which ArviZ expects) and a
    ``ValueError`` (so ``hasattr`` does not swallow it), with a message that says what to do.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


_MISSING_GROUP = {
    "log_likelihood": "LOO needs posterior draws: fit with method='nuts' or 'svi' (a {method} "
                      "fit is one point, it has no log_likelihood draws)",
    "sample_stats": "sample_stats (energy, divergences, tree depth) come from NUTS: fit with "
                    "method='nuts' (this is a {method} fit)",
}


def _datatree_base():
    import xarray as xr

    return xr.DataTree


class CrowdTree(_datatree_base()):
    """An ArviZ DataTree that says why a group is missing.

    A MAP fit has no ``log_likelihood`` draws and SVI / MAP have no NUTS ``sample_stats``;
    asking for them (``tree["log_likelihood"]``, ``tree.log_likelihood``, as ``az.loo``,
    ``az.compare``, ``plot_energy`` do) raises :class:`MissingGroupError` with a message
    naming the method to fit with, instead of ArviZ's ``IndexError`` on a single draw.
    Everything else is a plain :class:`xarray.DataTree`.
    """

    __slots__ = ()

    def _missing(self, name):
        if name not in _MISSING_GROUP:
            return None
        try:
            children = object.__getattribute__(self, "_children")
            parent = object.__getattribute__(self, "_parent")
            attrs = object.__getattribute__(self, "_attrs") or {}
        except AttributeError:
            return None
        if parent is not None or name in children or "method" not in attrs:
            return None
        if name == "log_likelihood" and attrs.get("pseudo_likelihood"):
            return MissingGroupError(
                f"LOO needs a likelihood of the answers: {attrs.get('model')}'s plugs in a "
                f"statistic of the answers themselves (a pseudo-likelihood), so its fit has no "
                f"log_likelihood group")
        return MissingGroupError(_MISSING_GROUP[name].format(method=attrs["method"].upper()))

    def __getattr__(self, name):
        err = self._missing(name)
        if err is not None:
            raise err
        return super().__getattr__(name)

    def __getitem__(self, key):
        err = self._missing(key) if isinstance(key, str) else None
        if err is not None:
            raise err
        return super().__getitem__(key)


@partial(jax.jit, static_argnames=("model",))
def _replicate_answers(model, flat_params, design, key):
    """Replicated answers, one set per draw, from the model's own program (Predictive)."""
    from numpyro.infer import Predictive

    return Predictive(model, posterior_samples=flat_params, return_sites=["y"])(key, design)["y"]


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
    seed : int or None
        The seed of :func:`crowdzoo.fit`.
    options : dict or None
        The method's settings of :func:`crowdzoo.fit`, defaults filled in (None for a
        ``Fit`` built otherwise); an exact LOO refit (:func:`crowdzoo.inference.compare.loo`
        with ``reloo``) reruns the method with them.
    """

    def __init__(self, model, method, annotations, data, *, params=None, samples=None,
                 sample_stats=None, loss_history=None, task_probs=None, per_task_loglik=None,
                 diagnostics=None):
        self.model = model
        self.method = method
        self.annotations = annotations
        self.data = data
        relabelled = None
        if samples is not None:
            # exchangeable components (or true classes under a symmetric posterior): one labelling
            new = model.relabel_draws(samples, data=data)
            changed = np.zeros(next(iter(samples.values())).shape[:2], bool)
            for k, v in new.items():
                if v is samples.get(k):  # untouched (the usual case): nothing to compare
                    continue
                diff = np.asarray(v) != np.asarray(samples[k])
                changed |= diff.reshape(diff.shape[:2] + (-1,)).any(-1)
            relabelled = float(changed.mean()) if changed.size else 0.0
            samples = new
        self.samples = samples
        self.sample_stats = sample_stats or {}
        self.loss_history = None if loss_history is None else np.asarray(loss_history)
        self.diagnostics = dict(diagnostics or {})
        if relabelled or (relabelled is not None and data is not None
                           and model.class_symmetric(data)):
            # the share of draws that were given another labelling
            self.diagnostics["relabelled_draws"] = relabelled
        self.elapsed = float("nan")
        self.seed = None
        self.options = None
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
        """Return the expected accuracy of :meth:`labels` on gold tasks (exact ties split evenly).

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
            raise ValueError(
                f"gold has {len(missing)} tasks without answers, e.g. {list(missing[:5])}")
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
        cache = self.__dict__.setdefault("_stats_cache", {})
        if which not in cache:
            cache[which] = self._compute_stats(which)
        return cache[which]

    def _compute_stats(self, which: str):
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
    def _arviz_dims(self) -> dict:
        """ArviZ dims of every posterior variable (sampled sites and derived stats)."""
        dims = {k: [arviz_dim(d) for d in v] for k, v in self.model.dims.items()}
        for which in ("worker", "task"):
            for name, v in self._stats(which).items():
                extra = v.ndim - 1 - (2 if self.has_draws else 0)
                declared = dims.get(name)
                if declared is None or len(declared) != 1 + extra:
                    dims[name] = [which] + [f"{name}_dim_{i}" for i in range(extra)]
        return dims

    def _arviz_coords(self) -> dict:
        a = self.annotations
        classes = [str(c) for c in a.classes]
        coords = {
            "task": [str(t) for t in a.task_ids],
            "worker": [str(w) for w in a.worker_ids],
            "true_class": classes,
            arviz_dim("label"): classes,
            "answer": np.arange(a.n_answers),
        }
        if a.feature_names is not None:
            coords["feature"] = [str(f) for f in a.feature_names]
        return coords

    def _posterior_arrays(self, derived: bool = True) -> dict:
        if self.has_draws:
            post = {k: np.asarray(v) for k, v in self.samples.items()}
        else:
            post = {k: np.asarray(v)[None, None] for k, v in self.params.items()}
        if derived:
            for which in ("worker", "task"):
                for name, v in self._stats(which).items():
                    post.setdefault(name, v if self.has_draws else v[None, None])
        return post

    def _posterior_dataset(self, derived: bool = False):
        """Return the posterior as an xarray Dataset with named dims (cheap: no other group)."""
        # arviz_base's from_dict (what az.from_dict is): the convergence check after every
        # fit needs only this, not the whole of arviz (~1.5 s to import)
        from arviz_base import from_dict

        post = self._posterior_arrays(derived=derived)
        dims = self._arviz_dims()
        return from_dict({"posterior": post}, coords=self._arviz_coords(),
                            dims={k: v for k, v in dims.items() if k in post}
                            )["posterior"].to_dataset()

    def _predictive_draws(self, max_draws: int):
        """Parameter draws ``(chain, draw, ...)`` for the posterior predictive.

        Evenly thinned to at most ``max_draws`` in all; MAP: the point repeated (the plug-in
        predictive).
        """
        if self.has_draws:
            chains, draws = next(iter(self.samples.values())).shape[:2]
            keep = max(1, min(draws, max_draws // chains))
            idx = np.unique(np.linspace(0, draws - 1, keep).round().astype(int))
            return {k: np.asarray(v)[:, idx] for k, v in self.samples.items()}, idx
        n = min(max_draws, MAP_PREDICTIVE_DRAWS)
        return ({k: np.broadcast_to(np.asarray(v), (1, n) + np.shape(v))
                 for k, v in self.params.items()}, np.arange(n))

    def posterior_predictive(self, max_draws: int = MAX_PREDICTIVE_DRAWS, seed=None):
        """Replicated answers ``(chain, draw, answer)`` (class codes) on the observed design.

        Drawn by the model's own NumPyro program (generating, labels removed) through
        :class:`numpyro.infer.Predictive`, one replicate per posterior draw (evenly thinned to
        at most ``max_draws`` in all); a MAP fit repeats its point estimate
        (:data:`MAP_PREDICTIVE_DRAWS` replicates: the plug-in predictive). The true labels of
        the replicates are drawn from the model's prior ``p(z | params)``: new items on the
        same design (who answered what).

        Returns
        -------
        y : int array (chain, draw, answer)
        draw_index : int array
            The posterior draws the replicates come from.
        """
        if not self.params:
            raise ValueError(f"{self.model.name} has no generative model to replicate from")
        draws, idx = self._predictive_draws(max_draws)
        shape = next(iter(draws.values())).shape[:2]
        flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in draws.items()}
        n_flat = shape[0] * shape[1]
        seed = (self.seed or 0) if seed is None else seed
        key = jax.random.PRNGKey(int(seed) + 1)
        # chunks keep the (chunk, N, K, L) emission tables within ~256 MB
        d = self.data
        per_draw = max(d.n_answers * d.n_classes * d.n_classes * 4, 1)
        chunk = int(max(1, min(n_flat, 2 ** 28 // per_draw)))
        out = []
        for start in range(0, n_flat, chunk):
            part = {k: jnp.asarray(v[start:start + chunk]) for k, v in flat.items()}
            if start + chunk > n_flat:  # pad the last chunk: one compilation for all
                pad = start + chunk - n_flat
                part = {k: jnp.concatenate([v, jnp.repeat(v[-1:], pad, 0)]) for k, v in
                        part.items()}
            y = _replicate_answers(self.model, part, d.without_labels(),
                                   jax.random.fold_in(key, start))
            out.append(np.asarray(y)[: min(chunk, n_flat - start)])
        y = np.concatenate(out).reshape(shape + (d.n_answers,))
        small = np.int8 if d.n_classes <= 127 else np.int32
        return y.astype(small), idx

    def to_arviz(self, posterior_predictive: bool = True):
        """Return the fit as an ArviZ (1.x) DataTree that ``arviz`` functions accept as is.

        Groups

        * ``posterior``: the draws (NUTS, SVI), or the MAP as one draw (``chain`` 1,
          ``draw`` 1; ``attrs["point_estimate"]`` says so), with the model's derived
          per-worker / per-task quantities (``accuracy``, ``difficulty``, ...);
        * ``sample_stats`` (NUTS): ``diverging``, ``energy``, ``n_steps``,
          ``acceptance_rate``;
        * ``log_likelihood`` (NUTS, SVI): ``answers`` per task — the pointwise terms of
          ``az.loo`` (leave one *task* out, all its answers);
        * ``posterior_predictive``: ``y``, replicated answers drawn by the model's own NumPyro
          program (see :meth:`posterior_predictive`);
        * ``observed_data``: ``y``, the answers (class codes, with the class name, task id and
          worker id of each answer as coordinates on ``answer``);
        * ``constant_data``: ``task_of_answer``, ``worker_of_answer`` (codes of the design).

        Dims carry the user's ids: ``task``, ``worker``, ``true_class`` and ``answer_class``
        (the class names), ``answer``. No dim is named like one ArviZ creates (the models'
        ``label`` dim is ``answer_class`` here: ``az.summary`` stacks along ``label``).

        A MAP fit has no draws: ``az.summary`` shows the point (its sd, HDI and r_hat are
        NaN), and whatever needs draws (``az.loo``, ``az.compare``, ``plot_khat``) raises
        ``LOO needs posterior draws: fit with method='nuts' or 'svi'``; ``plot_energy``
        needs NUTS (so does ``sample_stats`` for SVI).

        Parameters
        ----------
        posterior_predictive : bool
            Include the ``posterior_predictive`` group (it costs one simulation per kept
            draw).
        """
        import arviz as az
        import numpyro  # noqa: F401  (import order: numpyro before arviz)

        import crowdzoo

        if not self.params:
            raise ValueError(
                f"{self.model.name} has no parameters (a non-probabilistic baseline): it has "
                f"no ArviZ posterior; use task_posterior()"
            )
        a = self.annotations
        post = self._posterior_arrays()
        dims = {k: v for k, v in self._arviz_dims().items() if k in post}
        classes = np.asarray([str(c) for c in a.classes])
        answer_coords = {
            "answer": np.arange(a.n_answers),
            "answer_task": ("answer", np.asarray([str(t) for t in a.task_ids])[a.task]),
            "answer_worker": ("answer", np.asarray([str(w) for w in a.worker_ids])[a.worker]),
            "answer_label": ("answer", classes[np.asarray(a.label)]),
        }
        groups = {
            "posterior": post,
            "observed_data": {"y": np.asarray(a.label, dtype=np.int32)},
            "constant_data": {"task_of_answer": np.asarray(a.task, dtype=np.int32),
                              "worker_of_answer": np.asarray(a.worker, dtype=np.int32)},
        }
        dims.update(y=["answer"], task_of_answer=["answer"], worker_of_answer=["answer"])
        if self.has_draws and self.model.proper_likelihood:
            groups["log_likelihood"] = {"answers": self.log_likelihood()}
            dims["answers"] = ["task"]
        if self.sample_stats:
            groups["sample_stats"] = {
                {"num_steps": "n_steps", "accept_prob": "acceptance_rate"}.get(k, k): v
                for k, v in self.sample_stats.items()
            }
        dt = az.from_dict(groups, coords=self._arviz_coords(), dims=dims)
        version = {"creation_library": "crowdzoo",
                   "creation_library_version": crowdzoo.__version__,
                   "inference_library": "numpyro",
                   "inference_library_version": numpyro.__version__,
                   "arviz_version": az.__version__,
                   "model": self.model.name, "method": self.method}
        children = {}
        for name, node in dt.children.items():
            ds = node.to_dataset()
            if name in ("observed_data", "constant_data"):
                ds = ds.assign_coords({k: v for k, v in answer_coords.items() if k != "answer"})
            ds.attrs.update(version)
            children[name] = ds
        if not self.has_draws:
            children["posterior"].attrs["point_estimate"] = (
                f"{self.method.upper()}: one point, not posterior draws (chain 1, draw 1)")
        if posterior_predictive:
            y, idx = self.posterior_predictive()
            pp = az.from_dict({"posterior_predictive": {"y": y}}, dims={"y": ["answer"]},
                              coords={"answer": np.arange(a.n_answers), "draw": idx}
                              )["posterior_predictive"].to_dataset()
            pp = pp.assign_coords({k: v for k, v in answer_coords.items() if k != "answer"})
            pp.attrs.update(version, latent="the true labels of the replicates are drawn "
                            "from p(z | params): new items on the observed design")
            if not self.has_draws:
                pp.attrs["point_estimate"] = (f"plug-in predictive: {y.shape[1]} replicates "
                                              f"at the {self.method.upper()} point")
            order = ["posterior", "posterior_predictive", "log_likelihood", "sample_stats",
                     "observed_data", "constant_data"]
            children["posterior_predictive"] = pp
            children = {k: children[k] for k in order if k in children}
        tree = CrowdTree.from_dict(children)
        tree.attrs.update(version)
        if not self.model.proper_likelihood:
            tree.attrs["pseudo_likelihood"] = 1
        return tree

    def summary(self):
        """ArviZ summary (mean, sd, HDI, r_hat, ESS) of the parameters; a text report for MAP.

        The summary is ``az.summary`` of the sampled parameters (derived quantities such as
        ``accuracy`` are in :meth:`workers` / :meth:`tasks` and in :meth:`to_arviz`). When most
        of the crowd's answers come from workers below chance under the fit
        (:func:`crowdzoo.inference.chance.chance_note`), the MAP report ends with that note
        and the table carries it in ``attrs["note"]`` and says it in a warning.
        """
        from .chance import chance_note

        note = chance_note(self, self.annotations.gold_series() if self.annotations.has_gold
                           else None)
        if self.has_draws:
            import arviz as az
            import numpyro  # noqa: F401

            table = az.summary(self._posterior_dataset())
            if note:
                table.attrs["note"] = note
                warnings.warn(f"{self.model.name}: {note}", UserWarning, stacklevel=2)
            return table
        lines = [f"{self.model.name} fitted by {self.method} ({self.diagnostics.get('algorithm')})"]
        for k, v in self.diagnostics.items():
            lines.append(f"  {k}: {v}")
        if note:
            lines.append(f"  note: {note}")
        return "\n".join(lines)

    def convergence(self) -> pd.DataFrame:
        """Convergence table (NUTS, SVI): per parameter the worst r_hat, smallest ESS.

        One row per sampled parameter: ``r_hat`` (largest over its elements; NaN for SVI,
        whose draws are independent), ``ess_bulk``, ``ess_tail`` (smallest), ``worst`` (the
        element with the largest r_hat) and ``ok``; worst first. ``table.attrs`` holds the
        overall ``max_r_hat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``,
        ``converged`` and ``problems`` (what :class:`ConvergenceWarning` said). A MAP fit
        has no draws: its table is empty and ``attrs`` holds the MAP's own diagnostics
        (iterations, ``converged``).
        """
        if not self.has_draws:
            table = pd.DataFrame(columns=["r_hat", "ess_bulk", "ess_tail", "worst", "ok"])
            table.attrs.update(self.diagnostics)
            table.attrs.setdefault("converged", True)
            table.attrs["problems"] = [] if table.attrs["converged"] else [
                "the MAP stopped at its iteration cap"]
            return table
        from .diagnostics import convergence_table

        if self.__dict__.get("_convergence") is None:
            table = convergence_table(self)
            for k, v in self.diagnostics.items():
                table.attrs.setdefault(k, v)
            self._convergence = table
        return self._convergence.copy()

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
        if getattr(self.data, "feature_scale", None) is not None:
            # the training standardization, in float64 with the same statistics (data layer)
            from ..data.features import feature_scaling, standardize_features

            features = standardize_features(features, *feature_scaling(self.annotations.features))
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
