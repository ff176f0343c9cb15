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
  the seed: the same seed gives the same draws either way. What the chains share (the start
  in the unconstrained space, its energy and gradient and, with ``mass_matrix="laplace"``,
  the diagonal of the inverse Hessian there as the mass matrix adaptation starts from) is
  one program
  (:func:`nuts_start`), so each chain's init compiles no potential of its own.
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

__all__ = ["CHUNK", "LAPLACE_MAX_DIM", "NutsRun", "NutsStart", "nuts_start", "run_nuts", "run_svi"]

#: iterations per compiled chunk (the progress bar moves between chunks)
CHUNK = 50


class NutsRun(NamedTuple):
    """Draws, per-draw sampler statistics, and what the sampler settled on.

    ``samples`` are constrained, ``(chain, draw, ...)``; ``info`` holds the mass matrix used,
    the warmup length, each chain's final step size and its leapfrog steps in warmup.
    """

    samples: dict
    stats: dict
    info: dict


# --- NUTS --------------------------------------------------------------------------------
#: largest number of unconstrained parameters for which ``mass_matrix="laplace"`` computes the
#: Hessian (D x D floats, D Hessian-vector products); above it NUTS adapts the mass matrix
LAPLACE_MAX_DIM = 4000
#: budget of (Hessian-vector products at once) x answers x classes floats: the
#: forward-over-reverse pass holds a few such arrays; within it all products are one vmap
_HVP_FLOATS = 1 << 24


class NutsStart(NamedTuple):
    """Where every chain starts, shared by all of them.

    The unconstrained point, its potential energy and gradient, and the diagonal inverse
    mass matrix of the Laplace approximation there (None: NUTS adapts one).
    """

    z: dict
    potential_energy: jax.Array
    z_grad: dict
    inverse_mass_matrix: jax.Array | None


@functools.lru_cache(maxsize=64)
def _start_fn(model, laplace: bool, hvp_batch: int):
    """Compiled start of one model: ``(data, params) -> (z, energy, gradient[, metric, ok])``.

    One program for what every chain shares: the start in the unconstrained space, the
    potential energy and its gradient there (NumPyro's ``init_kernel`` would otherwise compile
    them into each chain's init) and, with ``laplace``, the Hessian of the potential energy
    at the start (Hessian-vector products, all at once when ``hvp_batch`` covers them, else
    in batches of ``hvp_batch`` so that memory stays bounded) and the diagonal of its
    inverse: the marginal variances of the Laplace approximation, the diagonal inverse mass
    matrix NUTS would otherwise learn in warmup.
    ``ok`` says whether the Hessian was positive definite (a mode) and the variances finite.
    """
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import potential_energy, unconstrain_fn

    def start(data, params):
        pe_fn = functools.partial(potential_energy, model, (data,), {})
        z = unconstrain_fn(model, (data,), {}, params)
        z = jax.tree.map(lambda a: jnp.where(jnp.isfinite(a), a, 0.0), z)
        pe, grad = jax.value_and_grad(pe_fn)(z)
        if not laplace:
            return z, pe, grad
        flat, unravel = ravel_pytree(z)
        grad_flat = jax.grad(lambda x: pe_fn(unravel(x)))

        def hvp(v):
            return jax.jvp(grad_flat, (flat,), (v,))[1]

        eye = jnp.eye(flat.size, dtype=flat.dtype)
        if hvp_batch >= flat.size:  # all at once (one vmap: quicker to trace and compile)
            hess = jax.vmap(hvp)(eye)
        else:
            hess = jax.lax.map(hvp, eye, batch_size=hvp_batch)
        hess = 0.5 * (hess + hess.T)
        chol = jnp.linalg.cholesky(hess)  # NaN unless positive definite
        inv_chol = jax.scipy.linalg.solve_triangular(chol, eye, lower=True)
        variances = (inv_chol**2).sum(0)  # diag(H^-1) = column sums of (L^-1)^2
        ok = jnp.all(jnp.isfinite(variances) & (variances > 0))
        return z, pe, grad, variances, ok

    return jax.jit(start)


def nuts_start(model, data, params0, *, laplace: bool) -> tuple[NutsStart, str]:
    """Compute the chains' common start; with ``laplace``, the Laplace metric where it can be had.

    Returns the start and the mass-matrix setting it allows: ``"laplace"``, or ``"adapt"``
    with the reason appended (``"adapt (...)"``) when the Laplace metric was asked for but
    the model has more than :data:`LAPLACE_MAX_DIM` parameters or the Hessian at the start
    is not positive definite.
    """
    params0 = {k: jnp.asarray(v) for k, v in params0.items()}
    used = "adapt"
    if laplace:
        from numpyro.infer.util import unconstrain_fn

        shapes = jax.eval_shape(lambda d, p: unconstrain_fn(model, (d,), {}, p), data, params0)
        dim = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(shapes))
        if dim > LAPLACE_MAX_DIM:
            laplace = False
            used = f"adapt ({dim} parameters, more than {LAPLACE_MAX_DIM} for laplace)"
    if not laplace:
        z, pe, grad = _start_fn(model, False, 1)(data, params0)
        return NutsStart(z, pe, grad, None), used
    per_hvp = max(data.n_answers * data.n_classes, 1)
    batch = int(max(1, _HVP_FLOATS // per_hvp))
    batch = batch if batch < dim else LAPLACE_MAX_DIM  # "all at once" (one key per setting)
    z, pe, grad, variances, ok = _start_fn(model, True, batch)(data, params0)
    if not bool(ok):
        return NutsStart(z, pe, grad, None), ("adapt (the Hessian at the start is not "
                                              "positive definite)")
    return NutsStart(z, pe, grad, variances), "laplace"


@functools.lru_cache(maxsize=64)
def _nuts_fns(model, num_warmup: int, target_accept_prob: float, max_tree_depth: int):
    """Compiled ``init`` and ``advance`` of one model and sampler setting (data an argument).

    ``init`` takes the shared :class:`NutsStart` (so it compiles no potential energy of its
    own); its inverse mass matrix, when given, is where the windowed adaptation starts.
    """
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import ParamInfo, potential_energy

    def potential_fn_gen(data):
        return functools.partial(potential_energy, model, (data,), {})

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_fn_gen, algo="NUTS")

    def init(key, data, start):
        return init_kernel(ParamInfo(start.z, start.potential_energy, start.z_grad), num_warmup,
                           inverse_mass_matrix=start.inverse_mass_matrix,
                           target_accept_prob=target_accept_prob,
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
             progress: bool, mass_matrix: str = "adapt",
             fallback_warmup: int | None = None) -> NutsRun:
    """NUTS from ``params0`` (constrained), ``num_chains`` chains; see the module docstring.

    ``mass_matrix``: ``"adapt"`` (NumPyro's windowed adaptation of a diagonal mass matrix,
    from the identity) or ``"laplace"`` (the same adaptation started from the diagonal of the
    inverse Hessian at ``params0``, so a short warmup suffices; falls back to ``"adapt"`` where
    :func:`nuts_start` says so; then ``fallback_warmup``, when given, replaces the short
    warmup that suits the Laplace metric). ``NutsRun.info`` says which was used, the warmup
    length, the final step size of each chain and the leapfrog steps (gradient evaluations)
    each chain spent in warmup.
    """
    start, used = nuts_start(model, data, params0, laplace=mass_matrix == "laplace")
    if mass_matrix == "laplace" and used != "laplace" and fallback_warmup is not None:
        num_warmup = fallback_warmup
    # the Laplace variances start NumPyro's windowed adaptation (instead of the identity):
    # kept fixed, they mixed worse where the posterior is far from Gaussian (weak workers:
    # pi's r_hat 1.023 at 4 x 500 on a 1,000-task crowd); refined, the warmup still skips
    # the long trees an identity metric needs at first
    fns = _nuts_fns(model, int(num_warmup), float(target_accept_prob), int(max_tree_depth))
    keys = jax.random.split(key, num_chains)
    total = num_warmup + num_samples
    fields = ("z", "diverging", "num_steps", "accept_prob", "energy")
    parallel = chain_method == "parallel"
    bar = progress_bar(total * (1 if parallel else num_chains),
                       f"NUTS {model.name} ({num_chains} chains, {chain_method})", progress)

    def sweep(state, advance):
        out = []
        warm_steps = 0
        done = 0
        while done < total:
            n = min(CHUNK, total - done)
            state, chunk = advance(state, data, n)
            # to the host once (slicing device arrays compiles a program per slice)
            chunk = jax.tree.map(lambda a, n=n: _take(np.asarray(a), 0, n, parallel), chunk)
            lo = min(max(num_warmup - done, 0), n)
            warm_steps = warm_steps + _take(chunk[2], 0, lo, parallel).sum(axis=-1)
            if lo < n:  # keep the sampling iterations of this chunk
                out.append(jax.tree.map(lambda a, lo=lo, n=n: _take(a, lo, n, parallel), chunk))
            done += n
            bar.update(n)
        step_size = np.asarray(state.adapt_state.step_size)
        return out, warm_steps, step_size

    try:
        if parallel:
            state = fns["pinit"](keys, data, start)
            pieces, warm_steps, step_size = sweep(state, fns["padvance"])
            per = [_cat([p[i] for p in pieces], axis=1) for i in range(len(fields))]
        else:
            per_chain, warm, steps = [], [], []
            for c in range(num_chains):
                state = fns["init"](keys[c], data, start)
                pieces, w, h = sweep(state, fns["advance"])
                per_chain.append([_cat([p[i] for p in pieces], axis=0)
                                  for i in range(len(fields))])
                warm.append(w)
                steps.append(h)
            per = [jax.tree.map(lambda *xs: np.stack(xs), *[pc[i] for pc in per_chain])
                   for i in range(len(fields))]
            warm_steps, step_size = np.stack(warm), np.stack(steps)
    finally:
        bar.close()
    z, diverging, num_steps, accept_prob, energy = per
    flat_z = jax.tree.map(lambda a: a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:]), z)
    constrained = _constrain_fn(model)(data, flat_z)
    samples = {k: np.asarray(v).reshape((num_chains, num_samples) + v.shape[1:])
               for k, v in constrained.items()}
    stats = {"diverging": np.asarray(diverging), "num_steps": np.asarray(num_steps),
             "accept_prob": np.asarray(accept_prob), "energy": np.asarray(energy)}
    info = {"mass_matrix": used, "num_warmup": int(num_warmup),
            "step_size": np.asarray(step_size, np.float64).reshape(-1),
            "warmup_steps": np.asarray(warm_steps, np.int64).reshape(-1)}
    return NutsRun(samples, stats, info)


def _cat(pieces, axis: int):
    """Concatenate a list of pytrees of (host) arrays along ``axis``."""
    return jax.tree.map(lambda *xs: np.concatenate(xs, axis=axis), *pieces)


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
