"""Cross-validation in the engine: each fold is a plain training, folds stop together."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from neural_net_lab.engine import Member, seed_everything, train
from neural_net_lab.engine.config import ModelParams, OptimizerParams, TrainingParams
from neural_net_lab.engine.cv import cross_validate
from neural_net_lab.engine.model import mlp_from_params


@pytest.fixture(scope="module")
def training(small_training):
    """Three epochs: a stop after the second is then a stop before the end."""
    return small_training.model_copy(update={"epochs": 3})


def _plain_training(features, labels, fold, seed, *, model: ModelParams, training: TrainingParams):
    train_idx, val_idx = fold
    scaler = StandardScaler().fit(features[train_idx])

    def tensors(rows):
        x = torch.from_numpy(scaler.transform(features[rows]).astype(np.float32))
        return x, torch.from_numpy(labels[rows].astype(np.int64))

    generator = seed_everything(seed)
    network = mlp_from_params(model)
    member = Member(network, *tensors(train_idx), generator, tensors(val_idx))
    return train([member], training)[0]


@pytest.mark.parametrize("gradients", ["manual", "autograd"])
def test_each_fold_equals_a_plain_training_of_that_fold(
    fold_table, gradients, small_model, training
):
    """Folds trained together, each with its own scaler and seed, give the plain histories
    (with dropout). Bitwise on the development CPU; asserted to float rounding, as another
    BLAS may order a sum differently."""
    features, labels, folds = fold_table
    model = small_model.model_copy(update={"dropout": 0.2})
    training = training.model_copy(update={"gradients": gradients})
    result = cross_validate(features, labels, folds, model, training)
    for f, fold in enumerate(folds):
        plain = _plain_training(
            features, labels, fold, training.seed + f, model=model, training=training
        )
        assert result.histories[f].keys() == plain.keys()
        for key, values in plain.items():
            assert result.histories[f][key] == pytest.approx(values, rel=1e-5), (f, key)
    assert result.val_accuracy == [h["val_accuracy"][-1] for h in result.histories]
    assert result.val_log_loss == [h["val_loss"][-1] for h in result.histories]
    assert result.mean_accuracy == pytest.approx(np.mean(result.val_accuracy))
    assert (result.epochs_run, result.stopped) == (3, False)


def test_on_epoch_sees_the_fold_mean_and_can_stop_every_fold(fold_table, small_model, training):
    features, labels, folds = fold_table
    seen = []

    def on_epoch(epoch, mean_accuracy):
        seen.append((epoch, mean_accuracy))
        return epoch == 1

    result = cross_validate(features, labels, folds, small_model, training, on_epoch=on_epoch)
    assert [e for e, _ in seen] == [0, 1]
    for epoch, mean in seen:
        assert mean == pytest.approx(np.mean([h["val_accuracy"][epoch] for h in result.histories]))
    assert (result.epochs_run, result.stopped) == (2, True)
    assert all(len(h["train_loss"]) == 2 for h in result.histories)


def test_a_diverging_loss_is_an_error_naming_the_fold(fold_table, small_model, training):
    features, labels, folds = fold_table
    diverging = training.model_copy(update={"optimizer": OptimizerParams(name="SGD", lr=1e12)})
    with pytest.raises(FloatingPointError, match=r"fold 0: the training loss is (nan|inf)"):
        cross_validate(features, labels, folds, small_model, diverging)


def test_one_fold_is_refused(fold_table, small_model, training):
    features, labels, folds = fold_table
    with pytest.raises(ValueError, match="at least 2 folds, got 1"):
        cross_validate(features, labels, folds[:1], small_model, training)
