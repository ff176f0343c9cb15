"""NUTS and SVI drivers that compile once per model and data shape, and show progress.

NumPyro's ``MCMC`` and ``SVI.run`` build new closures on every call, so every fit (every
notebook cell, every SBC replication) compiled the sampler again. Here the compiled pieces
are cached per model and settings, and the data are an argument, so a second fit of
same-shaped data reuses them:

* NUTS: numpyro's own kernel (:func:`numpyro.infer.hmc.hmc`, ``algo="NUTS"``, with its
  step-size and diagonal mass-matrix adaptation during warmup), advanced ``CHUNK`` iterations
  at a time by one compiled ``lax.scan`` (a masked tail makes any count one program), so a
  progress bar moves between chunks. Chains run in parallel over JAX devices (``pmap``) or in
  sequence (the same program per chain), and chain ``c`` always uses the ``c``-th split of
  the seed: the same seed gives the same draws either way.
* SVI: numpyro's ``SVI`` with an AutoNormal / AutoDelta guide started at the MAP, advanced in
  chunks the same way; the guide is set up abstractly (:func:`_set_up_guide`), not by
  NumPyro's eager run of the model (one compile per operation).

References
----------
1. M. D. Hoffman, A. Gelman. The No-U-Turn Sampler. JMLR 15:1593-1623, 2014.
2. D. Phan, N. Pradhan, M. Jankowiak. Composable Effects for Flexible and Accelerated
   Probabilistic Programming in NumPyro. arXiv:1912.11554, 2019.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .progress import progress_bar

__all__ = ["CHUNK", "NutsRun", "run_nuts", "run_svi"]

#: iterations per compiled chunk (the progress bar moves between chunks)
CHUNK = 50


class NutsRun(NamedTuple):
    """Draws (constrained, ``(chain, draw, ...)``) and per-draw sampler statistics."""

    samples: dict
    stats: dict


# --- NUTS --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _nuts_fns(model, num_warmup: int, target_accept_prob: float, max_tree_depth: int):
    """Compiled ``init`` and ``advance`` of one model and sampler setting (data an argument)."""
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import potential_energy, unconstrain_fn

    def potential_fn_gen(data):
        return functools.partial(potential_energy, model, (data,), {})

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")

    def init(key, data, params):
        u0 = unconstrain_fn(model, (data,), {}, params)
        u0 = jax.tree.map(lambda a: jnp.where(jnp.isfinite(a), a, 0.0), u0)
        return init_kernel(u0, num_warmup, target_accept_prob=target_accept_prob,
                           max_tree_depth=max_tree_depth, model_args=(data,), rng_key=key)

    def advance(state, data, n):
        """``n <= CHUNK`` NUTS iterations (the rest of the chunk is masked out)."""

        def body(s, i):
            new = sample_kernel(s, model_args=(data,))
            s = jax.tree.map(lambda a, b: jnp.where(i < n, a, b), new, s)
            return s, (s.z, s.diverging, s.num_steps, s.accept_prob, s.energy)

        return jax.lax.scan(body, state, jnp.arange(CHUNK))

    return {
        "init": jax.jit(init),
        "advance": jax.jit(advance),
        "pinit": jax.pmap(init, in_axes=(0, None, None)),
        "padvance": jax.pmap(advance, in_axes=(0, None, None)),
    }


@functools.lru_cache(maxsize=64)
def _constrain_fn(model):
    from numpyro.infer.util import constrain_fn

    @jax.jit
    def constrain(data, z):
        return jax.vmap(lambda u: constrain_fn(model, (data,), {}, u))(z)

    return constrain


def run_nuts(model, data, params0, key, *, num_warmup: int, num_samples: int, num_chains: int,
             target_accept_prob: float, max_tree_depth: int, chain_method: str,
             progress: bool) -> NutsRun:
    """NUTS from ``params0`` (constrained), ``num_chains`` chains; see the module docstring."""
    fns = _nuts_fns(model, int(num_warmup), float(target_accept_prob), int(max_tree_depth))
    params0 = {k: jnp.asarray(v) for k, v in params0.items()}
    keys = jax.random.split(key, num_chains)
    total = num_warmup + num_samples
    fields = ("z", "diverging", "num_steps", "accept_prob", "energy")
    parallel = chain_method == "parallel"
    bar = progress_bar(total * (1 if parallel else num_chains),
                       f"NUTS {model.name} ({num_chains} chains, {chain_method})", progress)

    def sweep(state, advance):
        out = []
        done = 0
        while done < total:
            n = min(CHUNK, total - done)
            state, chunk = advance(state, data, n)
            if done + n > num_warmup:  # keep the sampling iterations of this chunk
                lo = max(num_warmup - done, 0)
                out.append(jax.tree.map(lambda a, lo=lo, n=n: _take(a, lo, n, parallel), chunk))
            done += n
            bar.update(n)
        return out

    try:
        if parallel:
            state = fns["pinit"](keys, data, params0)
            pieces = sweep(state, fns["padvance"])
            per = [_cat([p[i] for p in pieces], axis=1) for i in range(len(fields))]
        else:
            per_chain = []
            for c in range(num_chains):
                state = fns["init"](keys[c], data, params0)
                pieces = sweep(state, fns["advance"])
                per_chain.append([_cat([p[i] for p in pieces], axis=0)
                                  for i in range(len(fields))])
            per = [jax.tree.map(lambda *xs: jnp.stack(xs), *[pc[i] for pc in per_chain])
                   for i in range(len(fields))]
    finally:
        bar.close()
    z, diverging, num_steps, accept_prob, energy = per
    flat_z = jax.tree.map(lambda a: a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:]), z)
    constrained = _constrain_fn(model)(data, flat_z)
    samples = {k: np.asarray(v).reshape((num_chains, num_samples) + v.shape[1:])
               for k, v in constrained.items()}
    stats = {"diverging": np.asarray(diverging), "num_steps": np.asarray(num_steps),
             "accept_prob": np.asarray(accept_prob), "energy": np.asarray(energy)}
    return NutsRun(samples, stats)


def _cat(pieces, axis: int):
    """Concatenate a list of pytrees of arrays along ``axis``."""
    return jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=axis), *pieces)


def _take(a, lo: int, n: int, parallel: bool):
    """Return iterations ``lo..n`` of a chunk output (axis 0, or axis 1 under pmap)."""
    return a[:, lo:n] if parallel else a[lo:n]


# --- SVI ---------------------------------------------------------------------------------
def _set_up_guide(guide, data) -> None:
    """Set an autoguide up on ``data`` abstractly: nothing is computed or compiled.

    NumPyro sets an autoguide up by running the model, its potential energy and gradient
    eagerly, one compiled XLA program per operation: a hundred or more per model, 3-7 s of
    CPU for a tiny crowd, which was half of a small SVI fit. Here
    ``guide._setup_prototype`` runs under ``jax.eval_shape`` instead. What the guide keeps
    is the sites' structure (names, supports, shapes, plates: static) and arrays whose
    values this SVI never reads (the start comes from ``init_params``, the scales from
    ``init_scale``); they become zeros of their shapes. Each site's distribution is kept as
    traced (the guide reads only its support and shapes, which are static; its parameters
    are never read). A support that depends on a traced value falls back to NumPyro's
    eager set-up.
    """
    import numpyro

    def setup():
        with numpyro.handlers.seed(rng_seed=0):
            guide._setup_prototype(data)

    jax.eval_shape(setup)

    def traced(tree) -> bool:
        return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(tree))

    def concrete(x):
        if not isinstance(x, jax.core.Tracer):
            return x
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return None  # the set-up's random key (a site's kwargs)
        return np.zeros(x.shape, x.dtype)

    sites = guide.prototype_trace.values()
    if any(traced(vars(s["fn"].support)) for s in sites if s["type"] == "sample"):
        guide.prototype_trace = None  # the eager set-up (NumPyro's own)
        with numpyro.handlers.seed(rng_seed=0):
            guide._setup_prototype(data)
        return
    # in the model's order, as the eager set-up leaves them (draws take one key per site in
    # this order; the abstract run returns them sorted)
    guide._init_locs = {k: concrete(guide._init_locs[k]) for k in guide.prototype_trace
                        if k in guide._init_locs}
    for site in sites:
        for key in ("value", "args", "kwargs", "intermediates"):
            if key in site:
                site[key] = jax.tree.map(concrete, site[key])


@functools.lru_cache(maxsize=32)
def _svi_fns(model, shapes, guide_kind: str, learning_rate: float, num_particles: int,
             init_scale: float):
    """SVI pieces for one model, data shape and setting (``shapes`` keys the guide's shapes)."""
    import optax
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoDelta, AutoNormal
    from numpyro.infer.initialization import init_to_uniform

    # the guide's start is the MAP (``init`` passes it); its own init_loc_fn only sets up the
    # prototype, and init_to_uniform does that without drawing from the prior (a Dirichlet
    # draw compiles JAX's gamma sampler, seconds per shape)
    if guide_kind == "normal":
        guide = AutoNormal(model, init_loc_fn=init_to_uniform(), init_scale=init_scale)
    else:
        guide = AutoDelta(model, init_loc_fn=init_to_uniform())
    svi = SVI(model, guide, optax.adam(learning_rate), Trace_ELBO(num_particles=num_particles))

    def init(key, data, params):
        from numpyro.infer.util import unconstrain_fn

        if guide_kind != "normal":  # AutoDelta's loc lives on the site's support: the MAP
            return svi.init(key, data, init_params={f"{k}_{guide.prefix}_loc": v
                                                    for k, v in params.items()
                                                    if k in guide.prototype_trace})
        u0 = unconstrain_fn(model, (data,), {}, params)
        u0 = jax.tree.map(lambda a: jnp.where(jnp.isfinite(a), a, 0.0), u0)
        return svi.init(key, data, init_params={f"{k}_{guide.prefix}_loc": v
                                                for k, v in u0.items()})

    def advance(state, data, n):
        def body(s, i):
            new, loss = svi.update(s, data)
            s = jax.tree.map(lambda a, b: jnp.where(i < n, a, b), new, s)
            return s, loss

        return jax.lax.scan(body, state, jnp.arange(CHUNK))

    def draw(key, params, data, n):
        return guide.sample_posterior(key, params, data, sample_shape=(n,))

    return svi, guide, jax.jit(init), jax.jit(advance), jax.jit(draw, static_argnums=3)


def run_svi(model, data, params0, key, *, guide: str, num_steps: int, learning_rate: float,
            num_particles: int, num_draws: int, init_scale: float, progress: bool):
    """SVI from the MAP; returns ``(draws (1, S, ...), ELBO losses (num_steps,))``."""
    shapes = (data.n_tasks, data.n_workers, data.n_classes, data.n_answers,
              None if data.features is None else tuple(data.features.shape))
    svi, g, init, advance, draw = _svi_fns(model, shapes, guide, float(learning_rate),
                                     int(num_particles), float(init_scale))
    k_init, k_draw = jax.random.split(key)
    params0 = {k: jnp.asarray(v) for k, v in params0.items()}
    if g.prototype_trace is None:  # once per cached guide
        _set_up_guide(g, data)
    state = init(k_init, data, params0)
    losses = []
    done = 0
    bar = progress_bar(num_steps, f"SVI {model.name}", progress)
    try:
        while done < num_steps:
            n = min(CHUNK, num_steps - done)
            state, chunk = advance(state, data, n)
            losses.append(np.asarray(chunk)[:n])
            done += n
            bar.update(n)
    finally:
        bar.close()
    params = svi.get_params(state)
    draws = draw(k_draw, params, data, int(num_draws))  # one program (eager: one per op)
    return draws, np.concatenate(losses)
