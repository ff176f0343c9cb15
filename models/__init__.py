"""The zoo: one module per paper's generative model, and the registry that names them.

Every model is a NumPyro program built on :mod:`crowdzoo.models.core` (per-task prior
logits, per-answer emission log-probabilities, one exact marginalization).
"""

from __future__ import annotations

import warnings as _warnings

with _warnings.catch_warnings():
    # numpyro imports tqdm.auto, which warns "IProgress not found" in a Jupyter kernel without
    # ipywidgets (it then draws text progress bars, which is what we want): say nothing
    _warnings.filterwarnings("ignore", message="IProgress not found")
    import numpyro  # noqa: F401

from .base import Baseline, CrowdModel
from .biased_worker import BiasedWorker
from .biased_worker_words import BiasedWorkerWords
from .class_conditional import ClassConditionalDawidSkene
from .community import Community
from .core import CrowdData, crowd_data, marginalize
from .dawid_skene import DawidSkene
from .difficulty import DifficultyAdaptive, DifficultyFixed
from .glad import GLAD
from .hierarchical_dawid_skene import HierarchicalDawidSkene
from .honest_worker import HonestWorker
from .irt import IRT1PL, IRT2PL, IRT3PL
from .item_difficulty import ItemDifficulty
from .logistic_random_effects import LogisticRandomEffects
from .mace import MACE
from .majority_vote import MajorityVote
from .multinomial import Multinomial
from .one_coin import OneCoin
from .raykar import Raykar
from .yan import Yan

__all__ = [
    "BASELINES",
    "Baseline",
    "BiasedWorker",
    "BiasedWorkerWords",
    "ClassConditionalDawidSkene",
    "Community",
    "CrowdData",
    "CrowdModel",
    "DawidSkene",
    "GLAD",
    "HierarchicalDawidSkene",
    "HonestWorker",
    "IRT1PL",
    "IRT2PL",
    "IRT3PL",
    "ItemDifficulty",
    "LogisticRandomEffects",
    "MACE",
    "MajorityVote",
    "Multinomial",
    "OneCoin",
    "Raykar",
    "DifficultyAdaptive",
    "DifficultyFixed",
    "Yan",
    "REGISTRY",
    "crowd_data",
    "get_model",
    "list_models",
    "marginalize",
    "register",
]

#: name -> generative model class (instantiated with its defaults by :func:`get_model`)
REGISTRY: dict[str, type[CrowdModel]] = {}
#: name -> baseline aggregator (not a generative model: MAP only, no simulation, no LOO)
BASELINES: dict[str, type[Baseline]] = {"majority_vote": MajorityVote}


def register(cls: type[CrowdModel]) -> type[CrowdModel]:
    """Add a model class to the registry under ``cls.name`` (usable as a decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if not issubclass(cls, CrowdModel):
        raise TypeError(f"{cls.__name__} is not a CrowdModel")
    REGISTRY[cls.name] = cls
    return cls


for _cls in (OneCoin, DawidSkene, Raykar, GLAD, HonestWorker, BiasedWorker, Community,
             Yan, DifficultyAdaptive, DifficultyFixed, MACE):
    register(_cls)
for _cls in (ClassConditionalDawidSkene, Multinomial, HierarchicalDawidSkene, ItemDifficulty,
             LogisticRandomEffects, IRT1PL, IRT2PL, IRT3PL, BiasedWorkerWords):
    register(_cls)


def get_model(model) -> CrowdModel | Baseline:
    """Return a model instance from a registry name, a model class or a model instance.

    Baselines (``"majority_vote"``) resolve too; they are not generative models.
    """
    if isinstance(model, (CrowdModel, Baseline)):
        return model
    if isinstance(model, type) and issubclass(model, (CrowdModel, Baseline)):
        return model()
    if isinstance(model, str):
        cls = REGISTRY.get(model) or BASELINES.get(model)
        if cls is None:
            known = ", ".join(sorted(REGISTRY) + sorted(BASELINES))
            raise ValueError(f"unknown model {model!r}; registered models: {known}")
        return cls()
    raise TypeError(f"model must be a registry name or a CrowdModel, got {type(model).__name__}")


def list_models() -> list[dict[str, str]]:
    """Name, title, methods and reference of every registered model and baseline."""
    rows = [{"name": n, "title": c.title, "methods": ",".join(c.methods), "reference": c.reference,
             "kind": "model"} for n, c in sorted(REGISTRY.items())]
    rows += [{"name": n, "title": c.title, "methods": ",".join(c.methods),
              "reference": c.reference, "kind": "baseline"} for n, c in sorted(BASELINES.items())]
    return rows
