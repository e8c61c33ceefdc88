"""Fold ensembles: members with their own scalers, averaged; cross_validate's kept networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.engine.cv import cross_validate
from neural_net_lab.engine.ensemble import build_ensemble, load_ensemble
from neural_net_lab.engine.model import load_mlp

MODEL = ModelParams(input_dim=20, hidden_dims=[16, 8], n_classes=4)
TRAINING = TrainingParams(
    seed=5, epochs=3, batch_size=32, optimizer={"name": "Adam", "lr": 0.01}, progress=False
)


@pytest.fixture(scope="module")
def kept(fold_table):
    return cross_validate(*fold_table, MODEL, TRAINING, seeds_per_fold=2, keep_networks=True)


def test_the_ensemble_is_the_mean_of_its_members_each_with_its_own_scaler(fold_table, kept):
    features, _, folds = fold_table
    ensemble = build_ensemble([(m.mean, m.scale, m.state_dict) for m in kept.members], MODEL)
    by_hand = []
    for member in kept.members:
        # Each member's own fold scaler, refitted here from its fold's training rows.
        scaler = StandardScaler().fit(features[folds[member.fold][0]])
        scaled = torch.from_numpy(scaler.transform(features).astype(np.float32))
        network = load_mlp(member.state_dict, MODEL).eval()
        with torch.no_grad():
            by_hand.append(torch.softmax(network(scaled), dim=1).double().numpy())
    assert ensemble.probabilities(features) == pytest.approx(np.mean(by_hand, axis=0), abs=1e-12)
    # The scalers really differ, so one shared scaler would not give the same numbers.
    assert not np.allclose(kept.members[0].mean, kept.members[2].mean)


def test_a_saved_ensemble_loads_back_with_weights_only(fold_table, kept, tmp_path):
    features = fold_table[0]
    ensemble = build_ensemble([(m.mean, m.scale, m.state_dict) for m in kept.members], MODEL)
    torch.save(ensemble.state_dict(), tmp_path / "ensemble.pt")
    loaded = load_ensemble(torch.load(tmp_path / "ensemble.pt", weights_only=True), MODEL)
    assert len(loaded) == 6
    assert np.array_equal(loaded.probabilities(features), ensemble.probabilities(features))
    with pytest.raises(ValueError, match="does not fit the network"):
        load_ensemble(ensemble.state_dict(), MODEL.model_copy(update={"hidden_dims": [16]}))


def test_seed_zero_of_each_fold_is_the_plain_cross_validation(fold_table, kept):
    plain = cross_validate(*fold_table, MODEL, TRAINING)
    assert kept.val_accuracy == plain.val_accuracy
    assert kept.histories == plain.histories
    assert [(m.fold, m.seed) for m in kept.members] == [
        (0, 5),
        (0, 8),
        (1, 6),
        (1, 9),
        (2, 7),
        (2, 10),
    ]
    assert [m.val_accuracy for m in kept.members[::2]] == plain.val_accuracy
    assert plain.members == []  # networks only when asked for


def test_kept_networks_are_the_same_stacked_or_one_after_another(fold_table, kept):
    alone = cross_validate(
        *fold_table, MODEL, TRAINING, seeds_per_fold=2, keep_networks=True, stacked=False
    )
    for a, b in zip(kept.members, alone.members, strict=True):
        assert (a.fold, a.seed) == (b.fold, b.seed)
        for key in a.state_dict:
            torch.testing.assert_close(a.state_dict[key], b.state_dict[key], rtol=1e-5, atol=1e-6)
