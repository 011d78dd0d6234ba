"""gpudist: exact batched N-D Euclidean distance transforms and distance-based losses for PyTorch.

Main entry points: `edt`, `signed_distance`, `one_hot_to_dist`, `labels_to_dist`.
"""

from . import losses
from . import metrics
from .backends import available_backends
from .distance import CONVENTIONS, edt, labels_to_dist, one_hot_to_dist, signed_distance

__version__ = "0.1.0"

__all__ = [
    "CONVENTIONS",
    "available_backends",
    "edt",
    "labels_to_dist",
    "one_hot_to_dist",
    "signed_distance",
]
