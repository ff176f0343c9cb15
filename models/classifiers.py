"""Classifiers ``p(z | x, w)`` for the learning-from-crowds models, in plain JAX.

A classifier turns the task features ``x_t`` into the log prior of the true label,
``log_prior[t, k] = log p(z_t = k | x_t, w)`` (T, K), which the shared
:func:`~crowdzoo.models.core.marginalize` takes directly. Its weights are ordinary NumPyro
sample sites with Normal priors, so MAP is ridge-regularized and NUTS / SVI give posterior
predictive probabilities for new items.

* :class:`Logistic` -- logistic regression for two classes (one logit: ``w . x + b`` is the
  log odds of the second class, as in Raykar et al.), softmax regression with one weight
  vector per class for K > 2.
* :class:`MLP` -- one hidden ``tanh`` layer, then the same output layer.

Why plain JAX rather than flax through ``numpyro.contrib.module``: the weights are then
plain sample sites with named plates (``feature``, ``hidden``, ``output``), so the shared
runner (MAP by EM or L-BFGS, SVI, NUTS), ArviZ dims and :meth:`Fit.predict_proba` treat
them like any other parameter; there is no extra dependency, and both networks are a few
lines.

Features are standardized with the mean and standard deviation of the *training* features
(``standardize=True``, the default; the real datasets ship unscaled features). The data layer
does it in float64 before the float32 cast (:mod:`crowdzoo.data.features`: ``x + 1.7e9`` or
``x * 1e20`` survive), and ``Fit.predict_proba`` applies the same float64 transform, with the
same statistics, to new items. With ``standardize=False`` the classifier sees the raw
features (in float32).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

__all__ = ["Classifier", "Logistic", "MLP", "get_classifier", "standardize"]


def standardize(train: jax.Array, x: jax.Array) -> jax.Array:
    """``(x - mean(train)) / sd(train)`` column-wise; constant columns are only centred."""
    mean = train.mean(0)
    sd = train.std(0)
    sd = jnp.where(sd > 1e-8, sd, 1.0)
    return (x - mean) / sd


def n_outputs(n_classes: int) -> int:
    """One logit for two classes, one per class otherwise."""
    return 1 if n_classes == 2 else n_classes


def logits_to_log_prob(logits: jax.Array, n_classes: int) -> jax.Array:
    """``(T, n_out)`` logits -> ``(T, K)`` log probabilities."""
    if n_classes == 2:
        s = logits[..., 0]
        return jnp.stack([jax.nn.log_sigmoid(-s), jax.nn.log_sigmoid(s)], axis=-1)
    return jax.nn.log_softmax(logits, axis=-1)


class Classifier:
    """Base: hashable by its settings (a static argument of jitted kernels)."""

    kind = ""
    standardize = True

    def dims(self) -> dict[str, tuple[str, ...]]:
        """ArviZ dims of the weight sites."""
        raise NotImplementedError

    def prepare(self, train: jax.Array, x: jax.Array) -> jax.Array:
        """Return the classifier's input from raw features: ``x`` standardized like ``train``."""
        return standardize(train, x) if self.standardize else x

    def inputs(self, data, x: jax.Array | None = None) -> jax.Array:
        """Return the classifier's input for rows ``x`` of ``data``'s features (default: all).

        ``x`` is in the representation of ``data.features``: standardized in float64 by
        the data layer when ``data.feature_scale`` is set (then ``standardize=False``
        undoes it: ``x * scale + center``), raw otherwise (simulated data: standardized
        here with the statistics of ``data.features``).
        """
        x = data.features if x is None else x
        if getattr(data, "feature_scale", None) is None:
            return self.prepare(data.features, x)
        if self.standardize:
            return x
        return x * data.feature_scale + data.feature_center

    def sample(self, n_features: int, n_classes: int) -> dict:
        """NumPyro sample statements of the weights (Normal priors)."""
        raise NotImplementedError

    def logits(self, params: dict, x: jax.Array) -> jax.Array:
        """``(T, n_out)`` output of the network for prepared inputs ``x``."""
        raise NotImplementedError

    def log_prob(self, params: dict, x: jax.Array, n_classes: int) -> jax.Array:
        """``log p(z = k | x, w)``, ``(T, K)``."""
        return logits_to_log_prob(self.logits(params, x), n_classes)

    def fit(self, x, resp, n_steps=None) -> dict:
        """MAP of the weights for fixed soft targets ``resp`` (T, K) and prepared inputs ``x``."""
        raise NotImplementedError

    #: steps of :meth:`fit` used by :meth:`fit_predict` (enough to converge on the benchmarks)
    train_steps = 1000

    def fit_predict(self, train, resp, new=None, n_steps: int | None = None):
        """Train on fixed (soft) labels, then predict: the "aggregate, then learn" baseline.

        Parameters
        ----------
        train : (T, D) array
            Features of the labelled items (also the standardization statistics).
        resp : (T, K) array
            Targets: one-hot labels, or soft labels such as a label posterior.
        new : (M, D) array, optional
            Features to predict; defaults to ``train``.
        n_steps : int, optional
            Optimizer steps (Newton / Boehning for :class:`Logistic`, Adam for :class:`MLP`);
            defaults to ``train_steps``.

        Returns
        -------
        numpy.ndarray (M, K)
            ``p(z = k | x)`` of the classifier at the MAP of its weights.
        """
        import numpy as np

        from ..data.annotations import _listing

        def rows(mask):
            return _listing(np.flatnonzero(mask), "row")

        train, resp = np.asarray(train, float), np.asarray(resp, float)
        new = train if new is None else np.asarray(new, float)
        if train.ndim != 2 or len(train) == 0:
            raise ValueError(f"train must be a non-empty (n_items, n_features) array, got shape "
                             f"{train.shape}")
        if resp.ndim != 2 or resp.shape[0] != train.shape[0] or resp.shape[1] < 2:
            raise ValueError(f"resp must be (n_items, n_classes) = ({train.shape[0]}, K >= 2), "
                             f"got shape {resp.shape}")
        if new.ndim != 2 or new.shape[1] != train.shape[1]:
            raise ValueError(f"new items have shape {new.shape}; expected "
                             f"(n, {train.shape[1]}) like the training features")
        for name, arr in (("train", train), ("new", new)):
            bad = ~np.isfinite(arr).all(1)
            if bad.any():
                raise ValueError(f"{name} features have NaN/inf values in {rows(bad)}")
        bad = ~np.isfinite(resp).all(1) | (resp < 0).any(1) | (np.abs(resp.sum(1) - 1) > 1e-4)
        if bad.any():
            raise ValueError(f"resp rows must be probabilities (non-negative, summing to 1); "
                             f"not so in {rows(bad)}")
        if self.standardize:  # in float64, with the training statistics, then cast
            from ..data.features import feature_scaling, standardize_features

            center, scale = feature_scaling(train)
            train = standardize_features(train, center, scale)
            new = standardize_features(new, center, scale)
        train, resp = jnp.asarray(train, jnp.float32), jnp.asarray(resp, jnp.float32)
        new = jnp.asarray(new, jnp.float32)
        params = self.fit(train, resp, n_steps or self.train_steps)
        return np.asarray(jnp.exp(self.log_prob(params, new, resp.shape[1])))

    def _key(self):
        return (type(self), tuple(sorted(vars(self).items())))

    def __eq__(self, other) -> bool:
        return isinstance(other, Classifier) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({inner})"


class Logistic(Classifier):
    """Logistic (K = 2) or softmax (K > 2) regression with Normal priors.

    Parameters
    ----------
    prior_scale : float
        Standard deviation of the Normal prior of each weight (on standardized features).
    bias_scale : float
        Standard deviation of the Normal prior of each bias.
    standardize : bool
        Standardize the features with the training mean and standard deviation.
    """

    kind = "logistic"

    def __init__(self, prior_scale: float = 1.0, bias_scale: float = 3.0, standardize: bool = True):
        self.prior_scale = float(prior_scale)
        self.bias_scale = float(bias_scale)
        self.standardize = bool(standardize)

    def dims(self):
        """``weights`` (feature, output), ``bias`` (output)."""
        return {"weights": ("feature", "output"), "bias": ("output",)}

    def sample(self, n_features, n_classes):
        """``weights[d, o] ~ Normal(0, prior_scale)``, ``bias[o] ~ Normal(0, bias_scale)``."""
        n_out = n_outputs(n_classes)
        with numpyro.plate("feature", n_features, dim=-2), numpyro.plate("output", n_out, dim=-1):
            w = numpyro.sample("weights", dist.Normal(0.0, self.prior_scale))
        with numpyro.plate("output", n_out, dim=-1):
            b = numpyro.sample("bias", dist.Normal(0.0, self.bias_scale))
        return {"weights": w, "bias": b}

    def logits(self, params, x):
        """``x @ weights + bias``."""
        return x @ params["weights"] + params["bias"]

    # --- the M-step for the weights (EM: "original EM" of Xu et al.) ----------------------
    def _design(self, x):
        return jnp.concatenate([jnp.ones((x.shape[0], 1), x.dtype), x], axis=1)

    def _stack(self, params):
        return jnp.concatenate([params["bias"][None, :], params["weights"]], axis=0)

    def _precision(self, n_features):
        return jnp.concatenate([jnp.full((1,), self.bias_scale ** -2.0),
                                jnp.full((n_features,), self.prior_scale ** -2.0)])

    def expected_log_posterior(self, params, x, resp):
        """``Q(w) = sum_t sum_k resp[t, k] log p(z_t = k | x_t, w) + log p(w)``."""
        K = resp.shape[-1]
        lp = (resp * self.log_prob(params, x, K)).sum()
        prec = self._precision(x.shape[1])
        theta = self._stack(params)
        return lp - 0.5 * (prec[:, None] * theta ** 2).sum()

    def gradient(self, params, x, resp):
        """Hand-written ``dQ/d[bias; weights]``, shape ``(1 + D, n_out)``.

        Binary: ``X^T (resp_1 - p) - P theta``; softmax: ``X^T (resp - p) - P theta``.
        """
        K = resp.shape[-1]
        X = self._design(x)
        theta = self._stack(params)
        p = jnp.exp(self.log_prob(params, x, K))
        r = (resp[:, 1] - p[:, 1])[:, None] if K == 2 else resp - p
        return X.T @ r - self._precision(x.shape[1])[:, None] * theta

    def m_step(self, params, x, resp, n_steps: int = 2):
        """Increase ``Q(w)``: Newton-Raphson (K = 2) or Boehning's bound (K > 2).

        Binary: ``n_steps`` Newton steps with the exact Hessian
        ``-X^T diag(p (1 - p)) X - P`` (Raykar et al., section 2.2). Multi-class: the
        Hessian is bounded by ``-(1/2)(I - 11^T/K) (x) X^T X - P`` (Boehning 1992), a fixed
        matrix, so each step is a minorize-maximize step that never decreases ``Q``; it is
        applied in the joint eigenbasis of the two Kronecker factors (one ``eigh`` of the
        ``(1+D)`` Gram matrix, no ``(D K)^2`` matrix).
        """
        K = resp.shape[-1]
        X = self._design(x)
        prec = self._precision(x.shape[1])
        if params is None:
            params = {"weights": jnp.zeros((x.shape[1], n_outputs(K)), x.dtype),
                      "bias": jnp.zeros((n_outputs(K),), x.dtype)}

        def unstack(theta):
            return {"bias": theta[0], "weights": theta[1:]}

        theta = self._stack(params)
        if K == 2:
            def newton(theta, _):
                prm = unstack(theta)
                p = jax.nn.sigmoid(self.logits(prm, x)[:, 0])
                g = self.gradient(prm, x, resp)[:, 0]
                H = (X * (p * (1 - p))[:, None]).T @ X + jnp.diag(prec)
                return theta + jnp.linalg.solve(H, g)[:, None], None

            theta, _ = jax.lax.scan(newton, theta, None, length=n_steps)
            return unstack(theta)
        # Boehning: B = A (x) S + I (x) P with A = (I - 11^T/K)/2, S = X^T X, P = diag(prec)
        ip = prec ** -0.5
        S = (X * ip[None, :]).T @ (X * ip[None, :])  # P^{-1/2} S P^{-1/2}
        s, V = jnp.linalg.eigh(S)
        a, U = jnp.linalg.eigh(0.5 * (jnp.eye(K) - jnp.ones((K, K)) / K))

        def mm(theta, _):
            g = self.gradient(unstack(theta), x, resp) * ip[:, None]
            h = V.T @ g @ U / (s[:, None] * a[None, :] + 1.0)
            return theta + ip[:, None] * (V @ h @ U.T), None

        theta, _ = jax.lax.scan(mm, theta, None, length=n_steps)
        return unstack(theta)

    def fit(self, x, resp, n_steps: int = 50):
        """MAP of the weights for fixed soft targets ``resp`` (a classifier on soft labels)."""
        return self.m_step(None, x, resp, n_steps=n_steps)


class MLP(Classifier):
    """One hidden ``tanh`` layer of ``hidden`` units, then a logistic/softmax output.

    Weights have Normal priors with standard deviation ``prior_scale / sqrt(fan_in)``.

    Parameters
    ----------
    hidden : int
        Number of hidden units.
    prior_scale : float
        Prior scale of the weights (times ``1 / sqrt(fan_in)``).
    bias_scale : float
        Prior scale of the biases.
    standardize : bool
        Standardize the features with the training mean and standard deviation.
    init_steps : int
        Adam steps on the soft majority vote used to start the MAP.
    seed : int
        Seed of the random initial weights.
    """

    kind = "mlp"
    train_steps = 2000

    def __init__(self, hidden: int = 32, prior_scale: float = 1.0, bias_scale: float = 3.0,
                 standardize: bool = True, init_steps: int = 300, seed: int = 0):
        self.hidden = int(hidden)
        self.prior_scale = float(prior_scale)
        self.bias_scale = float(bias_scale)
        self.standardize = bool(standardize)
        self.init_steps = int(init_steps)
        self.seed = int(seed)

    def dims(self):
        """Hidden layer (feature, hidden), output layer (hidden, output)."""
        return {"hidden_weights": ("feature", "hidden"), "hidden_bias": ("hidden",),
                "weights": ("hidden", "output"), "bias": ("output",)}

    def sample(self, n_features, n_classes):
        """Sample normal priors on both layers (plates ``feature``, ``hidden``, ``output``)."""
        n_out, H = n_outputs(n_classes), self.hidden
        s1, s2 = self.prior_scale / n_features ** 0.5, self.prior_scale / H ** 0.5
        with numpyro.plate("feature", n_features, dim=-2), numpyro.plate("hidden", H, dim=-1):
            w1 = numpyro.sample("hidden_weights", dist.Normal(0.0, s1))
        with numpyro.plate("hidden", H, dim=-1):
            b1 = numpyro.sample("hidden_bias", dist.Normal(0.0, self.bias_scale))
        with numpyro.plate("hidden", H, dim=-2), numpyro.plate("output", n_out, dim=-1):
            w2 = numpyro.sample("weights", dist.Normal(0.0, s2))
        with numpyro.plate("output", n_out, dim=-1):
            b2 = numpyro.sample("bias", dist.Normal(0.0, self.bias_scale))
        return {"hidden_weights": w1, "hidden_bias": b1, "weights": w2, "bias": b2}

    def logits(self, params, x):
        """``tanh(x W1 + b1) W2 + b2``."""
        h = jnp.tanh(x @ params["hidden_weights"] + params["hidden_bias"])
        return h @ params["weights"] + params["bias"]

    def log_prior(self, params, n_features):
        """Log density of the weights' priors (up to a constant)."""
        H = self.hidden
        s1, s2 = self.prior_scale / n_features ** 0.5, self.prior_scale / H ** 0.5
        return -0.5 * ((params["hidden_weights"] / s1) ** 2).sum() - 0.5 * (
            (params["weights"] / s2) ** 2).sum() - 0.5 * (
            (params["hidden_bias"] ** 2).sum() + (params["bias"] ** 2).sum()) / self.bias_scale ** 2

    def fit(self, x, resp, n_steps: int | None = None):
        """MAP of the weights for fixed soft targets (Adam from a seeded random start)."""
        import optax

        K = resp.shape[-1]
        D, H, n_out = x.shape[1], self.hidden, n_outputs(K)
        k1, k2 = jax.random.split(jax.random.PRNGKey(self.seed))
        params = {"hidden_weights": jax.random.normal(k1, (D, H)) / D ** 0.5,
                  "hidden_bias": jnp.zeros(H),
                  "weights": jax.random.normal(k2, (H, n_out)) * 0.1 / H ** 0.5,
                  "bias": jnp.zeros(n_out)}
        opt = optax.adam(0.01)

        def loss(p):
            return -((resp * self.log_prob(p, x, K)).sum() + self.log_prior(p, D)) / x.shape[0]

        def step(carry, _):
            p, s = carry
            g = jax.grad(loss)(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None,
                                      length=n_steps or self.init_steps)
        return params


def get_classifier(classifier) -> Classifier:
    """Return a classifier from ``"logistic"``, ``"mlp"`` or a :class:`Classifier` instance."""
    if isinstance(classifier, Classifier):
        return classifier
    if classifier == "logistic":
        return Logistic()
    if classifier == "mlp":
        return MLP()
    raise ValueError(f"classifier must be 'logistic', 'mlp' or a Classifier, got {classifier!r}")
