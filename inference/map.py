"""EM-like MAP: the posterior mode of the parameters with the true labels summed out.

One driver, :func:`run_map` (a jitted ``lax.while_loop`` with one convergence rule and one
history of the log posterior), runs any :class:`MapKernel` — a pair of pure ``init`` /
``step`` functions, as optax's transformations and blackjax's kernels are built:

* :func:`em_kernel` — closed-form EM for models that declare ``has_em`` (Dawid-Skene,
  one-coin, GLAD's gradient M-step, ...). The E-step is the exact label posterior from
  :func:`marginalize`, the M-step the model's own. The log posterior is monotone.
  With ``squarem=True`` it is SQUAREM-accelerated (the default of the learning-from-crowds
  models, whose classifier step makes plain EM crawl).
* :func:`lbfgs_kernel` — for models without one: L-BFGS (optax) on the negative log
  posterior in the unconstrained space, *without* the Jacobian of the transform, so both
  kernels find the same (constrained-space) mode.

:func:`run_em`, :func:`run_squarem` and :func:`run_lbfgs` are the three named entry points.

No pandas inside; the runner (:mod:`crowdzoo.inference.runner`) is the facade.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro
from numpyro.distributions.transforms import biject_to
from numpyro.infer.util import log_density

__all__ = ["MapFit", "MapKernel", "MapResult", "em_kernel", "interior_point", "lbfgs_kernel",
           "log_posterior", "log_prior", "map_program", "param_supports", "run_em", "run_lbfgs",
           "run_map",
           "run_map_jit", "run_squarem"]


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


class MapKernel(NamedTuple):
    """A MAP algorithm as a pair of pure functions (optax / blackjax style).

    ``init(params0) -> state``; ``step(state) -> (state, log_posterior, params, new_params)``
    where ``log_posterior`` is evaluated at ``params`` (the point the step started from) and
    ``new_params`` is where the step moved to. ``params_of(state)`` reads the point back.
    """

    init: callable
    step: callable
    params_of: callable


def _transforms(model, data):
    return {k: biject_to(s) for k, s in param_supports(model, data).items()}


def em_kernel(model, data, squarem: bool = False) -> MapKernel:
    """Closed-form EM (``model.em_update``), optionally SQUAREM-accelerated.

    The E-step is the exact label posterior from :func:`marginalize`; the M-step the model's
    own. SQUAREM (Varadhan & Roland 2008) takes two EM steps ``theta1 = F(theta0)``,
    ``theta2 = F(theta1)``, extrapolates along them in the unconstrained space
    (``u' = u0 - 2 a r + a^2 v`` with ``r = u1 - u0``, ``v = u2 - 2 u1 + u0``,
    ``a = -|r| / |v|`` capped at -1), takes one more EM step from there, and keeps it only if
    its log posterior is at least that of ``theta2`` (else ``theta2``): monotone by
    construction, the same fixed point in fewer iterations when EM crawls.
    """

    def evaluate(params):
        m = model.log_likelihood(params, data)
        return m.log_lik + log_prior(model, params, data), jax.nn.softmax(m.logits, axis=-1)

    def em_step(params):
        lp, resp = evaluate(params)
        return lp, model.em_update(params, resp, data)

    if squarem:
        transforms = _transforms(model, data)

        def to_u(params):
            return {k: transforms[k].inv(v) if k in transforms else v for k, v in params.items()}

        def to_params(u):
            return {k: transforms[k](v) if k in transforms else v for k, v in u.items()}

    def accelerate(p0, p1):
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

    def step(params):
        lp, new = em_step(params)
        moved = accelerate(params, new) if squarem else new
        # convergence is judged on the plain EM step, the point moves to the accelerated one
        return moved, lp, params, new

    return MapKernel(lambda p: p, step, lambda p: p)


def lbfgs_kernel(model, data) -> MapKernel:
    """L-BFGS (optax) on ``-log posterior`` over unconstrained parameters, no Jacobian term.

    Without the Jacobian of the transform the mode is the constrained-space mode, the same
    point closed-form EM finds. The objective is divided by the number of answers.
    """
    import optax

    transforms = _transforms(model, data)
    n = jnp.maximum(data.n_answers, 1)
    opt = optax.lbfgs()

    def constrain(u):
        return {k: transforms[k](v) for k, v in u.items()}

    def objective(u):
        return -log_posterior(model, constrain(u), data) / n

    value_and_grad = optax.value_and_grad_from_state(objective)

    def init(params0):
        u0 = {k: transforms[k].inv(params0[k]) for k in transforms}
        return u0, opt.init(u0)

    def step(state):
        u, opt_state = state
        value, grad = value_and_grad(u, state=opt_state)
        updates, opt_state = opt.update(grad, opt_state, u, value=value, grad=grad,
                                        value_fn=objective)
        new = optax.apply_updates(u, updates)
        return (new, opt_state), -value * n, constrain(u), constrain(new)

    return MapKernel(init, step, lambda state: constrain(state[0]))


#: the progress bar of the MAP fit in flight (set by :func:`map_progress`), or None
_PROGRESS = [None]
#: iterations between two progress reports from inside the compiled loop
PROGRESS_EVERY = 10


def _report(it, lp) -> None:
    """Host callback: move the bar of the MAP fit in flight (nothing when there is none)."""
    bar = _PROGRESS[0]
    if bar is None:
        return
    import numpy as np

    it, lp = int(np.max(it)), float(np.max(lp))
    # under vmap (the gold start) the callback runs for every element and every iteration:
    # report each PROGRESS_EVERY-th iteration once
    if it % PROGRESS_EVERY or it <= bar.n:
        return
    bar.update(it - bar.n)
    bar.set_postfix_str(f"log posterior {lp:.6g}")


class map_progress:  # noqa: N801  (a context manager used like a function)
    """Show a bar for the MAP fits run inside this context (``with map_progress(bar): ...``)."""

    def __init__(self, bar):
        self.bar = bar

    def __enter__(self):
        _PROGRESS[0] = self.bar if hasattr(self.bar, "n") else None  # a real tqdm bar only
        return self.bar

    def __exit__(self, *exc):
        _PROGRESS[0] = None
        self.bar.close()


def run_map(kernel: MapKernel, params0, n_answers, tol, max_iter: int, param_tol) -> MapResult:
    """Iterate ``kernel`` until converged or ``max_iter`` iterations (the one MAP driver).

    Converged means both ``|delta log posterior| / N < tol`` and the largest change of any
    (constrained) parameter ``< param_tol``: in float32 the log posterior of many answers
    stops resolving small changes long before a slowly converging algorithm reaches its
    fixed point. The log posterior of every iteration is kept (NaN past ``n_iter``). Once
    converged, the point the last step started from is returned, so history and parameters
    agree.
    """
    n = jnp.maximum(n_answers, 1)

    def cond(carry):
        _, it, _, _, done = carry
        return (it < max_iter) & ~done

    def body(carry):
        state, it, prev, hist, _ = carry
        new_state, lp, params, new_params = kernel.step(state)
        hist = hist.at[it].set(lp)
        done = (jnp.abs(lp - prev) / n < tol) & (_max_change(new_params, params) < param_tol)
        state = jax.tree.map(lambda a, b: jnp.where(done, a, b), state, new_state)
        # a progress report every PROGRESS_EVERY iterations (a no-op without a bar)
        jax.lax.cond((it + 1) % PROGRESS_EVERY == 0,
                     lambda: jax.debug.callback(_report, it + 1, lp), lambda: None)
        return state, it + 1, lp, hist, done

    hist0 = jnp.full((max_iter,), jnp.nan)
    carry = (kernel.init(params0), jnp.asarray(0), jnp.asarray(-jnp.inf), hist0,
             jnp.asarray(False))
    state, it, _, hist, done = jax.lax.while_loop(cond, body, carry)
    return MapResult(kernel.params_of(state), hist, it, done)


@partial(jax.jit, static_argnames=("model", "max_iter", "algorithm"))
def run_map_jit(model, params0, data, tol, max_iter: int, param_tol, algorithm: str) -> MapResult:
    """:func:`run_map` with the kernel named by ``algorithm`` ("em", "squarem", "lbfgs"), jitted."""
    if algorithm == "lbfgs":
        kernel = lbfgs_kernel(model, data)
    else:
        kernel = em_kernel(model, data, squarem=algorithm == "squarem")
    return run_map(kernel, params0, data.n_answers, tol, max_iter, param_tol)


class MapFit(NamedTuple):
    """Output of :func:`map_program`: the MAP and the label posterior at it.

    Attributes
    ----------
    result : MapResult
        Parameters, history, iterations, convergence.
    logits : (T, K)
        Posterior logits of the true labels at the returned parameters.
    per_task : (T,)
        Per-task log-likelihood at the returned parameters.
    """

    result: MapResult
    logits: jax.Array
    per_task: jax.Array


@partial(jax.jit, static_argnames=("model", "max_iter", "algorithm", "try_gold"))
def map_program(model, params0, data, tol, max_iter: int, param_tol, algorithm: str,
                try_gold: bool = False) -> MapFit:
    """Build the whole MAP fit as one compiled program (a cold fit compiles once).

    ``params0=None`` starts from ``model.init_params(data)`` (inside the program). With
    ``try_gold`` (an EM model and gold labels) a second start — one M-step from the gold tasks
    alone, uniform elsewhere: where the gold points — runs alongside (vectorized) and the
    start with the higher final log posterior wins, so a few gold tasks break the symmetry
    between a labelling and its mirror image. The label posterior at the result is returned
    too.
    """
    if params0 is None:
        params0 = model.init_params(data)
    params0 = jax.tree.map(jnp.asarray, params0)
    if algorithm == "lbfgs":
        kernel = lbfgs_kernel(model, data)
    else:
        kernel = em_kernel(model, data, squarem=algorithm == "squarem")

    def one(p0):
        return run_map(kernel, p0, data.n_answers, tol, max_iter, param_tol)

    if try_gold:
        K = data.n_classes
        resp = jnp.where(data.gold[:, None] >= 0, jax.nn.one_hot(data.gold, K), 1.0 / K)
        from_gold = model.em_update(params0, resp, data)
        from_gold = jax.tree.map(lambda a, b: jnp.asarray(a, jnp.result_type(b)), from_gold,
                                 params0)
        both = jax.vmap(one)(jax.tree.map(lambda a, b: jnp.stack([a, b]), params0, from_gold))
        last = jax.vmap(lambda h, n: h[jnp.maximum(n - 1, 0)])(both.history, both.n_iter)
        pick = jnp.argmax(jnp.where(jnp.isfinite(last), last, -jnp.inf))
        res = jax.tree.map(lambda a: a[pick], both)
    else:
        res = one(params0)
    m = model.log_likelihood(res.params, data)
    return MapFit(res, m.logits, m.per_task)


def run_em(model, params0, data, tol, max_iter: int, param_tol=1e-5) -> MapResult:
    """Closed-form EM until converged or ``max_iter`` iterations (see :func:`run_map`)."""
    return run_map_jit(model, params0, data, tol, max_iter, param_tol, "em")


def run_squarem(model, params0, data, tol, max_iter: int, param_tol=1e-5) -> MapResult:
    """EM accelerated by SQUAREM (see :func:`em_kernel`), monotone by construction."""
    return run_map_jit(model, params0, data, tol, max_iter, param_tol, "squarem")


def run_lbfgs(model, params0, data, tol, max_iter: int, param_tol=1e-5) -> MapResult:
    """L-BFGS on the exact marginal posterior (see :func:`lbfgs_kernel`)."""
    return run_map_jit(model, params0, data, tol, max_iter, param_tol, "lbfgs")


def param_supports(model, data) -> dict:
    """Support (constraint) of every parameter site of ``model.sample_params``."""
    supports: dict = {}

    def trace_supports():
        with numpyro.handlers.trace() as tr, numpyro.handlers.seed(rng_seed=0):
            model.sample_params(data)
        supports.update({
            name: site["fn"].support
            for name, site in tr.items()
            if site["type"] == "sample" and not site["is_observed"]
        })

    # abstract evaluation: the prior is traced, not sampled (drawing a Dirichlet for real
    # compiles JAX's gamma sampler, seconds per shape, for values nobody reads)
    jax.eval_shape(trace_supports)
    return supports


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
