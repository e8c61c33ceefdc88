"""Shared PyTorch code: every pipeline builds, trains and tracks networks through this package."""

from .data import accuracy, predict_logits, to_tensors
from .manual_grad import ManualMLPGradient
from .model import build_mlp, load_mlp
from .optim import build_optimizer
from .seeding import seed_everything
from .stacked import Member, StackingUnsupported, train_stacked
from .training import train

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
    "train_stacked",
]
