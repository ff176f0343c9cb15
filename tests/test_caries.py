"""The caries check of Han, Adiguzel & Carpenter (2024), affordable version.

Five dentists rated 3,869 X-rays (``../shared/data/caries``; skipped when absent). The vote
histogram (X-rays with 0..5 positive votes) is the test statistic of a posterior predictive
check with each replicate's true labels drawn from ``pi`` (Han et al.'s ``GQ.stan``); ppp is
that of the histogram's chi-square distance from its replicated mean.

What this test checks: Dawid-Skene is rejected (ppp < 0.01) — by its MAP plug-in, which for
a model with 11 global parameters fitted to 3,869 items is its posterior up to sampling
noise (``benchmarks/caries.py``: NUTS gives the same replicated histogram); the IRT 1PL is
not rejected (ppp >= 0.05) — by SVI (mean-field normal guide, 2,000 steps from the MAP), since
its 3,869 item difficulties need a posterior, not a point (the MAP plug-in shrinks every
difficulty to the prior mean and is rejected). What ``benchmarks/caries.py`` checks on top:
the same claims from full NUTS posteriors for Dawid-Skene, the 1PL and the 2PL, with r_hat
(results in ``benchmarks/results/caries.md``).
"""

from __future__ import annotations

import warnings

import pytest
from conftest import require_dataset
from crowdzoo.inference.ppc import ppc

import crowdzoo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def caries():
    return require_dataset("caries")


def _ppp(fit):
    check = ppc(fit, n_draws=200, latent="prior", seed=0)
    return check.summary()["histogram_ppp"], check.vote_histogram()


def test_dawid_skene_is_rejected(caries):
    fit = crowdzoo.fit("dawid_skene", caries, method="map", progress=False)
    ppp, hist = _ppp(fit)
    assert ppp < 0.01, hist
    # Han et al.'s Dawid-Skene replicates 1835 / 1157 / 313 / 290 / 216 / 59 (their NUTS)
    assert abs(hist["replicated_mean"].iloc[2] - 313) < 15, hist
    assert list(hist["observed"]) == [1880, 1065, 404, 247, 173, 100]


def test_irt_1pl_is_not_rejected(caries):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", crowdzoo.ConvergenceWarning)
        fit = crowdzoo.fit("irt_1pl", caries, method="svi", num_steps=2000, num_draws=200,
                           seed=0, progress=False)
    ppp, hist = _ppp(fit)
    assert ppp >= 0.05, hist
