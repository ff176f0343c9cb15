"""Model criticism for the whole zoo: SBC, posterior predictive checks, LOO, calibration.

One import for the three checks a Bayesian analysis of annotations needs:

* **Is the inference right?** Simulation-based calibration (:func:`run_sbc`, Talts et al.
  2018): ranks of prior-drawn true values among posterior draws are uniform when the
  posterior is computed correctly (:mod:`crowdzoo.inference.sbc`).
* **Does the model fit the data?** Posterior predictive checks (:func:`ppc`): replicated
  answers vs the observed ones, per item, per worker and overall
  (:mod:`crowdzoo.inference.ppc`).
* **Which model predicts best, and are its probabilities honest?** PSIS-LOO over tasks
  (:func:`loo`, :func:`compare_models`) and calibration on gold
  (:func:`expected_calibration_error`, :func:`gold_scores`) (:mod:`crowdzoo.inference.compare`).

Plots are in :mod:`crowdzoo.inference.criticism_plots`.

Examples
--------
>>> import crowdzoo
>>> from crowdzoo.inference import criticism
>>> fit = crowdzoo.fit("dawid_skene", crowdzoo.data.load_demo())
>>> criticism.ppc(fit, n_draws=20).summary()["n_replicates"]
20
"""

from __future__ import annotations

from .compare import (
    PARETO_K_BAD,
    CompareResult,
    calibration_curve,
    compare_models,
    expected_calibration_error,
    gold_scores,
    log_loss,
    loo,
    pareto_k_summary,
)
from .ppc import PPCResult, answer_statistics, posterior_predictive, ppc, ppp_value
from .sbc import (
    SBCResult,
    chi2_uniformity,
    needs_features,
    rank_statistics,
    run_sbc,
    sbc_quantities,
    simulate_batch,
)

__all__ = [
    "PARETO_K_BAD",
    "CompareResult",
    "PPCResult",
    "SBCResult",
    "answer_statistics",
    "calibration_curve",
    "chi2_uniformity",
    "compare_models",
    "expected_calibration_error",
    "gold_scores",
    "log_loss",
    "loo",
    "needs_features",
    "pareto_k_summary",
    "posterior_predictive",
    "ppc",
    "ppp_value",
    "rank_statistics",
    "run_sbc",
    "sbc_quantities",
    "simulate_batch",
]
