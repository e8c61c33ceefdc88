"""The PyTorch engine: typed parameter blocks and their errors, the network and its layout,
optimizers, training (one network or many stacked; hand-derived gradients, autograd as the
reference), cross-validation, ensembles and MLflow logging. Every pipeline builds, trains and
tracks networks through it; it imports third-party libraries only, nothing else of the
package."""

from .data import accuracy, predict_logits, to_tensors
from .manual_grad import ManualMLPGradient
from .model import build_mlp, load_mlp
from .optim import build_optimizer
from .seeding import seed_everything
from .stack import StackingUnsupported
from .training import Member, train

__all__ = [
    "ManualMLPGradient",
    "Member",
    "StackingUnsupported",
    "accuracy",
    "build_mlp",
    "build_optimizer",
    "load_mlp",
    "predict_logits",
    "seed_everything",
    "to_tensors",
    "train",
]
