"""synthetic_data: the shipped table is the generator's output, and it follows the facts."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from neural_net_lab.data_generation import FEATURE_COLUMNS, generate_phone_prices
from tests.conftest import PROJECT_ROOT, run_kedro


def test_shipped_csv_is_the_generators_default_output(project_copy):
    run_kedro(project_copy, "synthetic_data")
    written = (project_copy / "data/01_raw/phone_prices_synthetic.csv").read_bytes()
    assert written == (PROJECT_ROOT / "data/01_raw/phone_prices.csv").read_bytes()


def test_table_follows_the_real_tables_rules():
    table = generate_phone_prices(n_rows=20_000, seed=5)
    assert list(table.columns) == [*FEATURE_COLUMNS, "price_range"]
    assert table.price_range.value_counts().to_dict() == {c: 5000 for c in range(4)}
    assert (table.fc <= table.pc).all() and (table.px_height <= table.px_width).all()
    assert (table.sc_w <= table.sc_h).all() and (table.four_g <= table.three_g).all()
    assert table.ram.between(256, 3998).all() and table.battery_power.between(501, 1998).all()
    correlation = table.corr()["price_range"].drop("price_range")
    assert correlation.idxmax() == "ram" and correlation["ram"] > 0.85
    assert correlation.drop(["ram", "battery_power", "px_width", "px_height"]).abs().max() < 0.05


def test_difficulty_matches_the_real_table():
    table = generate_phone_prices()
    train, test = table.iloc[:1600], table.iloc[1600:]
    mean, std = train[FEATURE_COLUMNS].mean(), train[FEATURE_COLUMNS].std()
    baseline = LogisticRegression(max_iter=2000).fit(
        (train[FEATURE_COLUMNS] - mean) / std, train.price_range
    )
    # The facts sheet: logistic regression scores 0.93-0.975 on the real table.
    assert 0.92 <= baseline.score((test[FEATURE_COLUMNS] - mean) / std, test.price_range) <= 0.99


def test_same_seed_same_rows_other_seed_other_rows():
    pd.testing.assert_frame_equal(
        generate_phone_prices(500, seed=1), generate_phone_prices(500, seed=1)
    )
    assert not generate_phone_prices(500, seed=1).equals(generate_phone_prices(500, seed=2))


def test_bad_row_count_is_named():
    with pytest.raises(ValueError, match="n_rows must be an integer"):
        generate_phone_prices(n_rows=2)
