"""Fixtures shared by the engine's cross-validation tests."""

from __future__ import annotations

import pytest
from sklearn.model_selection import StratifiedKFold

from tests.conftest import FEATURES


@pytest.fixture(scope="module")
def fold_table(raw_phones, columns):
    """400 unscaled rows of the shipped table and 3 stratified folds over them."""
    rows = raw_phones.sample(400, random_state=0)
    features = rows[FEATURES].to_numpy(dtype=float)
    labels = rows[columns["target"]].to_numpy()
    folds = list(StratifiedKFold(3, shuffle=True, random_state=1).split(features, labels))
    return features, labels, folds
