"""Fold ensembles: members with their own scalers, averaged; cross_validate's kept networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from neural_net_lab.engine.cv import cross_validate
from neural_net_lab.engine.ensemble import build_ensemble, load_ensemble
from neural_net_lab.engine.model import load_mlp


@pytest.fixture(scope="module")
def training(small_training):
    """Seed 5: the members' seeds asserted below count from it."""
    return small_training.model_copy(update={"seed": 5})


@pytest.fixture(scope="module")
def kept(fold_table, small_model, training):
    return cross_validate(*fold_table, small_model, training, seeds_per_fold=2, keep_networks=True)


def test_the_ensemble_is_the_mean_of_its_members_each_with_its_own_scaler(
    fold_table, kept, small_model
):
    features, _, folds = fold_table
    ensemble = build_ensemble([(m.mean, m.scale, m.state_dict) for m in kept.members], small_model)
    by_hand = []
    for member in kept.members:
        # Each member's own fold scaler, refitted here from its fold's training rows.
        scaler = StandardScaler().fit(features[folds[member.fold][0]])
        scaled = torch.from_numpy(scaler.transform(features).astype(np.float32))
        network = load_mlp(member.state_dict, small_model).eval()
        with torch.no_grad():
            by_hand.append(torch.softmax(network(scaled), dim=1).double().numpy())
    assert ensemble.probabilities(features) == pytest.approx(np.mean(by_hand, axis=0), abs=1e-12)
    # The scalers really differ, so one shared scaler would not give the same numbers.
    assert not np.allclose(kept.members[0].mean, kept.members[2].mean)


def test_a_saved_ensemble_loads_back_with_weights_only(fold_table, kept, tmp_path, small_model):
    features = fold_table[0]
    ensemble = build_ensemble([(m.mean, m.scale, m.state_dict) for m in kept.members], small_model)
    torch.save(ensemble.state_dict(), tmp_path / "ensemble.pt")
    loaded = load_ensemble(torch.load(tmp_path / "ensemble.pt", weights_only=True), small_model)
    assert len(loaded) == 6
    assert np.array_equal(loaded.probabilities(features), ensemble.probabilities(features))
    with pytest.raises(ValueError, match="does not fit the network"):
        load_ensemble(
            ensemble.state_dict(), small_model.model_copy(update={"hidden_dims": [16, 8]})
        )


def test_seed_zero_of_each_fold_is_the_plain_cross_validation(
    fold_table, kept, small_model, training
):
    plain = cross_validate(*fold_table, small_model, training)
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


def test_kept_networks_are_the_same_stacked_or_one_after_another(
    fold_table, kept, small_model, training
):
    alone = cross_validate(
        *fold_table, small_model, training, seeds_per_fold=2, keep_networks=True, stacked=False
    )
    for a, b in zip(kept.members, alone.members, strict=True):
        assert (a.fold, a.seed) == (b.fold, b.seed)
        for key in a.state_dict:
            torch.testing.assert_close(a.state_dict[key], b.state_dict[key], rtol=1e-5, atol=1e-6)
