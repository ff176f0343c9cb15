"""Data layer: the Annotations container, loaders, simulators and the bundled demo crowd.

``crowdzoo.data.learning_from_crowds`` (imported on demand) draws the crowds of Xu et al.'s
mixture and digits experiments; ``crowdzoo.data.texts`` turns a ``texts.csv`` into word counts
(the task features of ``biased_worker_words``).
"""

from .annotations import Annotations, AnnotationsError
from .columnar import read_csv_arrow, read_parquet
from .features import ConstantFeatureWarning
from .loaders import list_datasets, load_dataset, load_split, read_csv
from .simulate import (
    SimulatedCrowd,
    load_demo,
    load_demo_truth,
    make_demo,
    random_design,
    simulate,
)

__all__ = [
    "Annotations",
    "AnnotationsError",
    "ConstantFeatureWarning",
    "SimulatedCrowd",
    "list_datasets",
    "load_dataset",
    "load_demo",
    "load_demo_truth",
    "load_split",
    "make_demo",
    "random_design",
    "read_csv",
    "read_csv_arrow",
    "read_parquet",
    "simulate",
]
