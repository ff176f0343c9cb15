"""EM-like MAP: the posterior mode of the parameters with the true labels summed out.

Two pure, jitted kernels, each a ``lax.while_loop`` that keeps the log posterior of every
iteration:

* :func:`run_em` — closed-form EM for models that declare ``em_update`` (Dawid-Skene,
  one-coin, ...). The E-step is the exact label posterior from :func:`marginalize`, the
  M-step the model's own. The log posterior is monotone.
* :func:`run_squarem` — the same EM accelerated by SQUAREM (extrapolation along two EM steps,
  kept only when it does not lower the log posterior); the default of the
  learning-from-crowds models, whose classifier step makes plain EM crawl.
* :func:`run_lbfgs` — for models without one: L-BFGS (optax) on the negative log posterior
  in the unconstrained space, *without* the Jacobian of the transform, so both kernels find
  the same (constrained-space) mode.

No pandas inside; the runner (:mod:`crowdzoo.inference.runner`) is the facade.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro
from jax.flatten_util import ravel_pytree
from numpyro.distributions.transforms import biject_to
from numpyro.infer.util import log_density

__all__ = ["MapResult", "interior_point", "run_em", "run_lbfgs", "run_squarem", "log_prior",
           "log_posterior", "param_supports"]


class MapResult(NamedTuple):
    """Output of a MAP kernel.

    Attributes
    ----------
    params : dict
        The parameters at the mode (constrained space).
    history : (max_iter,) array
        Log posterior per iteration (NaN past ``n_iter``).
    n_iter : int array
        Iterations run.
    converged : bool array
        Whether the tolerance was met before the cap.
    """

    params: dict
    history: jax.Array
    n_iter: jax.Array
    converged: jax.Array


def log_prior(model, params, data) -> jax.Array:
    """``log p(params)``: the density of the model's prior statements at ``params``."""
    lp, _ = log_density(model.sample_params, (data,), {}, params)
    return lp


def log_posterior(model, params, data) -> jax.Array:
    """Unnormalized ``log p(params | y)`` with the true labels marginalized exactly."""
    return model.log_likelihood(params, data).log_lik + log_prior(model, params, data)


def _max_change(a, b) -> jax.Array:
    """Largest absolute difference between two parameter pytrees."""
    return jnp.max(jnp.stack([jnp.max(jnp.abs(x - y)) for x, y in
                              zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)]))


def _em_loop(model, params0, data, tol, max_iter: int, param_tol, squarem: bool) -> MapResult:
    """The EM loop of :func:`run_em` / :func:`run_squarem` (``squarem`` static)."""
    n = jnp.maximum(data.n_answers, 1)

    def evaluate(params):
        m = model.log_likelihood(params, data)
        return m.log_lik + log_prior(model, params, data), jax.nn.softmax(m.logits, axis=-1)

    def em_step(params):
        lp, resp = evaluate(params)
        return lp, model.em_update(params, resp, data)

    if squarem:
        transforms = {k: biject_to(s) for k, s in param_supports(model, data).items()}

        def to_u(params):
            return {k: transforms[k].inv(v) if k in transforms else v for k, v in params.items()}

        def to_params(u):
            return {k: transforms[k](v) if k in transforms else v for k, v in u.items()}

    def accelerate(p0, p1):
        """SQUAREM: extrapolate along two EM steps; keep it only if not worse than 2 EM steps."""
        _, p2 = em_step(p1)
        u0, u1, u2 = to_u(p0), to_u(p1), to_u(p2)
        r = jax.tree.map(lambda a, b: b - a, u0, u1)
        v = jax.tree.map(lambda a, b, c: c - 2 * b + a, u0, u1, u2)
        rn = jnp.sqrt(sum(jnp.sum(x ** 2) for x in jax.tree.leaves(r)))
        vn = jnp.sqrt(sum(jnp.sum(x ** 2) for x in jax.tree.leaves(v)))
        a = jnp.minimum(-rn / jnp.maximum(vn, 1e-30), -1.0)
        ux = jax.tree.map(lambda x0, x1, x2: x0 - 2 * a * x1 + a ** 2 * x2, u0, r, v)
        _, p3 = em_step(to_params(ux))
        lp2, _ = evaluate(p2)
        lp3, _ = evaluate(p3)
        ok = jnp.isfinite(lp3) & (lp3 >= lp2) & jnp.all(jnp.stack(
            [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(p3)]))
        return jax.tree.map(lambda x3, x2: jnp.where(ok, x3, x2), p3, p2)

    def cond(state):
        _, it, _, _, done = state
        return (it < max_iter) & ~done

    def body(state):
        params, it, prev, hist, _ = state
        lp, new = em_step(params)
        hist = hist.at[it].set(lp)
        done = (jnp.abs(lp - prev) / n < tol) & (_max_change(new, params) < param_tol)
        if squarem:
            new = accelerate(params, new)
        # keep the evaluated parameters once converged: history and params then agree
        params = jax.tree.map(lambda a, b: jnp.where(done, a, b), params, new)
        return params, it + 1, lp, hist, done

    hist0 = jnp.full((max_iter,), jnp.nan)
    state = (params0, jnp.asarray(0), jnp.asarray(-jnp.inf), hist0, jnp.asarray(False))
    params, it, _, hist, done = jax.lax.while_loop(cond, body, state)
    return MapResult(params, hist, it, done)


@partial(jax.jit, static_argnames=("model", "max_iter"))
def run_em(model, params0, data, tol, max_iter: int, param_tol=1e-5) -> MapResult:
    """Closed-form EM until converged or ``max_iter`` iterations.

    Converged means both ``|Δ log posterior| / N < tol`` and the largest change of any
    parameter ``< param_tol``: in float32 the log posterior of many answers stops resolving
    small changes long before a slowly converging EM reaches its fixed point.
    """
    return _em_loop(model, params0, data, tol, max_iter, param_tol, squarem=False)


@partial(jax.jit, static_argnames=("model", "max_iter"))
def run_squarem(model, params0, data, tol, max_iter: int, param_tol=1e-5) -> MapResult:
    """EM accelerated by SQUAREM (Varadhan & Roland 2008), monotone by construction.

    Each iteration takes two EM steps ``theta1 = F(theta0)``, ``theta2 = F(theta1)``, extrapolates
    along them in the unconstrained space (``u' = u0 - 2 a r + a^2 v`` with ``r = u1 - u0``,
    ``v = u2 - 2 u1 + u0``, ``a = -|r| / |v|`` capped at -1), takes one more EM step from the
    extrapolated point, and keeps it only if its log posterior is at least that of ``theta2``
    (otherwise ``theta2``, a plain EM step). It stops by :func:`run_em`'s rule applied to the
    first EM step of the iteration, so it ends at the same fixed point, in fewer iterations
    when EM crawls (one iteration costs about four E-steps).
    """
    return _em_loop(model, params0, data, tol, max_iter, param_tol, squarem=True)


def param_supports(model, data) -> dict:
    """Support (constraint) of every parameter site of ``model.sample_params``."""
    with numpyro.handlers.trace() as tr, numpyro.handlers.seed(rng_seed=0):
        model.sample_params(data)
    return {
        name: site["fn"].support
        for name, site in tr.items()
        if site["type"] == "sample" and not site["is_observed"]
    }


def interior_point(model, params, data, bound: float = 8.0, mix: float = 1e-3) -> dict:
    """``params`` moved off the boundary of their supports: a start for NUTS / SVI.

    A MAP often sits on the boundary of a constrained support (a confusion-matrix entry of
    ~1e-12 for an answer a worker never gave, under a Dirichlet(1) prior), which is minus
    infinity in NUTS's unconstrained space: started there, every transition diverges and the
    chains never move (all draws equal; PSIS-LOO then fails with "All tail values are the
    same"). Simplex-valued sites are mixed with the uniform distribution (weight ``mix``:
    every probability at least ``mix / K``); other constrained sites are clipped to
    ``[-bound, bound]`` in the unconstrained space; unconstrained (real) sites are kept.
    """
    from numpyro.distributions import constraints

    out = {}
    for name, support in param_supports(model, data).items():
        value = jnp.asarray(params[name])
        base = support
        while isinstance(base, constraints.independent):
            base = base.base_constraint
        if base is constraints.real:
            out[name] = value
        elif base is constraints.simplex:
            k = value.shape[-1]
            value = jnp.clip(value, 0.0, 1.0)
            value = value / value.sum(-1, keepdims=True)
            out[name] = (1.0 - mix) * value + mix / k
        else:
            transform = biject_to(support)
            out[name] = transform(jnp.clip(transform.inv(value), -bound, bound))
    return out


@partial(jax.jit, static_argnames=("model", "max_iter"))
def run_lbfgs(model, params0, data, tol, max_iter: int) -> MapResult:
    """L-BFGS on ``-log posterior`` over unconstrained parameters (no Jacobian term)."""
    import optax

    supports = param_supports(model, data)
    transforms = {k: biject_to(s) for k, s in supports.items()}
    u0 = {k: transforms[k].inv(params0[k]) for k in supports}
    x0, unravel = ravel_pytree(u0)
    n = jnp.maximum(data.n_answers, 1)

    def constrain(x):
        u = unravel(x)
        return {k: transforms[k](u[k]) for k in u}

    def objective(x):
        return -log_posterior(model, constrain(x), data) / n

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)

    def cond(state):
        _, _, it, _, _, done = state
        return (it < max_iter) & ~done

    def body(state):
        x, opt_state, it, prev, hist, _ = state
        value, grad = value_and_grad(x, state=opt_state)
        updates, opt_state = opt.update(grad, opt_state, x, value=value, grad=grad,
                                        value_fn=objective)
        x = optax.apply_updates(x, updates)
        hist = hist.at[it].set(-value * n)
        done = (jnp.abs(prev - value) < tol) & (jnp.linalg.norm(grad) < jnp.sqrt(tol))
        return x, opt_state, it + 1, value, hist, done

    hist0 = jnp.full((max_iter,), jnp.nan)
    state = (x0, opt.init(x0), jnp.asarray(0), jnp.asarray(jnp.inf), hist0, jnp.asarray(False))
    x, _, it, _, hist, done = jax.lax.while_loop(cond, body, state)
    return MapResult(constrain(x), hist, it, done)

