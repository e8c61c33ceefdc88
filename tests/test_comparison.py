"""neural_net_lab.comparison against values worked out by hand and printed in tables.

The t quantiles (9 degrees of freedom) come from a printed Student t table:
t_{0.90} = 1.383, t_{0.95} = 1.833, t_{0.975} = 2.262, t_{0.995} = 3.250.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from neural_net_lab.comparison import (
    CONFIDENCE,
    NO_DIFFERENCE,
    accuracy_interval,
    corrected_interval,
    corrected_t_test,
    mcnemar_exact,
    verdict,
    wilson_interval,
)

T_90, T_95, T_975, T_995 = 1.383, 1.833, 2.262, 3.250
# The table's three decimals: its quantiles are exact to ±0.0005.
TABLE = 0.0005

# r = 2 repeats of k = 5 folds: J = 10, each fold trains on 4/5 and tests on 1/5 of the rows.
RATIO = 1 / 4
# Deviations from the mean, summing to 0; their squares sum to 34e-4.
DEVIATIONS = [0.02, -0.01, 0.03, -0.02, 0.00, 0.01, -0.03, 0.02, -0.01, -0.01]
SAMPLE_VARIANCE = 34e-4 / 9  # sum of squares / (J - 1)
CORRECTED_SE = math.sqrt((1 / 10 + 1 / 4) * SAMPLE_VARIANCE)  # 0.011499
PLAIN_SE = math.sqrt(SAMPLE_VARIANCE / 10)  # 0.006146


def _differences(mean: float) -> list[float]:
    return [mean + d for d in DEVIATIONS]


def test_the_hand_worked_example_has_the_numbers_it_claims():
    assert sum(DEVIATIONS) == pytest.approx(0, abs=1e-15)
    assert sum(d * d for d in DEVIATIONS) == pytest.approx(34e-4)
    assert CORRECTED_SE == pytest.approx(0.011499, abs=1e-6)


def test_corrected_t_test_matches_the_hand_worked_example():
    result = corrected_t_test(_differences(0.02), RATIO)

    t = 0.02 / CORRECTED_SE  # 1.739
    assert result["mean_difference"] == pytest.approx(0.02)
    assert result["t"] == pytest.approx(t)
    assert (result["df"], result["folds"], result["test_train_ratio"]) == (9, 10, 0.25)
    # t lies between the table's 0.95 and 0.90 quantiles: two-sided p between 0.10 and 0.20.
    assert T_90 < t < T_95
    assert 0.10 < result["p_value"] < 0.20
    # The interval 0.02 ± 2.262 · 0.011499 = [-0.0060, 0.0460] holds 0.
    assert result["ci_low"] == pytest.approx(0.02 - T_975 * CORRECTED_SE, abs=TABLE * CORRECTED_SE)
    assert result["ci_high"] == pytest.approx(0.02 + T_975 * CORRECTED_SE, abs=TABLE * CORRECTED_SE)
    assert result["verdict"] == NO_DIFFERENCE


def test_the_uncorrected_t_test_is_overconfident_on_the_same_folds():
    differences = _differences(0.02)
    plain = stats.ttest_1samp(differences, 0.0)

    # The plain t = 0.02 / 0.006146 = 3.254 passes the table's 0.995 quantile: p < 0.01,
    # a "significant" win that the overlap of the training sets does not support.
    assert plain.statistic == pytest.approx(0.02 / PLAIN_SE)
    assert plain.statistic > T_995
    assert plain.pvalue < 0.01
    assert corrected_t_test(differences, RATIO)["p_value"] > 10 * plain.pvalue


def test_corrected_t_test_at_the_table_quantile_gives_p_of_0_05():
    # A mean set so that t is exactly the table's t_{0.975, 9}: p = 0.05 and the interval
    # touches 0, up to the table's rounding.
    mean = T_975 * CORRECTED_SE
    result = corrected_t_test(_differences(mean), RATIO)

    assert result["t"] == pytest.approx(T_975)
    assert result["p_value"] == pytest.approx(0.05, abs=2e-4)
    assert result["ci_low"] == pytest.approx(0, abs=TABLE * CORRECTED_SE)


@pytest.mark.parametrize("sign, expected", [(1, "beats"), (-1, "trails")])
def test_corrected_t_test_verdict_follows_a_clear_win_or_loss(sign, expected):
    # t = ±4: far past the table's 0.995 quantile.
    result = corrected_t_test(_differences(sign * 4 * CORRECTED_SE), RATIO)
    assert result["verdict"] == expected
    assert result["p_value"] < 0.01


@pytest.mark.parametrize("seed", range(200))
def test_corrected_t_test_interval_and_p_value_agree(seed):
    generator = np.random.default_rng(seed)
    differences = generator.normal(generator.uniform(-0.03, 0.03), 0.02, size=10)
    result = corrected_t_test(differences, RATIO)
    significant = result["p_value"] < 1 - CONFIDENCE
    assert (result["verdict"] != NO_DIFFERENCE) == significant


def test_a_models_own_interval_is_the_same_correction():
    # One model's fold accuracies: the mean and the interval the paired test would give for
    # their differences from 0.
    accuracy = [0.90, 0.95, 0.925, 0.90, 0.95]
    interval = corrected_interval(accuracy, 0.25)
    mean, s2 = 0.925, sum((a - 0.925) ** 2 for a in accuracy) / 4  # 6.25e-4
    half = 2.776 * ((1 / 5 + 0.25) * s2) ** 0.5  # t_{0.975, 4} = 2.776 (printed table)
    assert interval["mean"] == pytest.approx(mean)
    assert (interval["ci_low"], interval["ci_high"]) == pytest.approx(
        (mean - half, mean + half), abs=1e-4
    )
    paired = corrected_t_test(accuracy, 0.25)
    assert (paired["ci_low"], paired["ci_high"]) == (interval["ci_low"], interval["ci_high"])


def test_an_accuracy_interval_stays_within_0_and_1():
    # Two folds: t with 1 df is 12.71, and the corrected interval of 0.5 and 0.9 would run
    # from about -1.3 to 2.7.
    wide = corrected_interval([0.5, 0.9], 1.0)
    assert wide["ci_low"] < 0 and wide["ci_high"] > 1
    cut = accuracy_interval([0.5, 0.9], 1.0)
    assert (cut["mean"], cut["ci_low"], cut["ci_high"]) == (pytest.approx(0.7), 0.0, 1.0)
    assert accuracy_interval([0.90, 0.95, 0.925, 0.90, 0.95], 0.25) == corrected_interval(
        [0.90, 0.95, 0.925, 0.90, 0.95], 0.25
    )


def test_identical_models_show_no_difference():
    result = corrected_t_test([0.0] * 10, RATIO)
    assert (result["p_value"], result["t"]) == (1.0, 0.0)
    assert (result["ci_low"], result["ci_high"]) == (0.0, 0.0)
    assert result["verdict"] == NO_DIFFERENCE


@pytest.mark.parametrize("constant, expected", [(0.1, "beats"), (-0.1, "trails")])
def test_a_constant_nonzero_difference_is_certain(constant, expected):
    result = corrected_t_test([constant] * 10, RATIO)
    assert result["p_value"] == 0.0
    assert result["t"] is None  # infinite: JSON has no value for it
    assert result["ci_low"] == result["ci_high"] == result["mean_difference"] == constant
    assert result["verdict"] == expected


def test_corrected_t_test_refuses_what_it_cannot_test():
    with pytest.raises(ValueError, match="at least 2 differences, got 1"):
        corrected_t_test([0.1], RATIO)
    with pytest.raises(ValueError, match="test_train_ratio .* must be > 0, got 0"):
        corrected_t_test(DEVIATIONS, 0)


def test_wilson_interval_matches_known_values():
    result = wilson_interval(390, 400)
    assert (round(result["ci_low"], 4), round(result["ci_high"], 4)) == (0.9546, 0.9864)
    assert (result["accuracy"], result["correct"], result["rows"]) == (0.975, 390, 400)
    # Newcombe (1998), Statistics in Medicine 17, table I: 81/263, Wilson score interval.
    newcombe = wilson_interval(81, 263)
    assert (round(newcombe["ci_low"], 4), round(newcombe["ci_high"], 4)) == (0.2553, 0.3662)


def test_wilson_interval_needs_rows():
    with pytest.raises(ValueError, match="total > 0"):
        wilson_interval(0, 0)


def _scored(a_only: int, b_only: int, both: int = 30, neither: int = 8):
    a = [True] * a_only + [False] * b_only + [True] * both + [False] * neither
    b = [False] * a_only + [True] * b_only + [True] * both + [False] * neither
    return np.array(a), np.array(b)


def test_mcnemar_exact_matches_the_binomial_tail():
    result = mcnemar_exact(*_scored(10, 2))
    # 2 · P(X ≤ 2 | n = 12, p = 1/2) = 2 · (1 + 12 + 66) / 2**12
    assert result["p_value"] == pytest.approx(2 * 79 / 4096)
    assert result["p_value"] == pytest.approx(0.03857, abs=1e-5)
    assert (result["a_only"], result["b_only"], result["rows"]) == (10, 2, 50)
    assert result["difference"] == pytest.approx((10 - 2) / 50)
    assert result["verdict"] == "beats"

    swapped = mcnemar_exact(*reversed(_scored(10, 2)))
    assert swapped["p_value"] == result["p_value"]
    assert swapped["difference"] == pytest.approx(-0.16)
    assert swapped["verdict"] == "trails"


def test_mcnemar_exact_short_of_significance():
    # 2 · P(X ≤ 2 | n = 9, p = 1/2) = 2 · (1 + 9 + 36) / 2**9 = 0.1797
    result = mcnemar_exact(*_scored(7, 2))
    assert result["p_value"] == pytest.approx(2 * 46 / 512)
    assert result["verdict"] == NO_DIFFERENCE


def test_mcnemar_exact_without_discordant_rows():
    result = mcnemar_exact(*_scored(0, 0))
    assert (result["p_value"], result["difference"]) == (1.0, 0.0)
    assert result["verdict"] == NO_DIFFERENCE


def test_mcnemar_exact_refuses_mismatched_or_non_bool_rows():
    with pytest.raises(ValueError, match="differ in length: 3 and 2 rows"):
        mcnemar_exact([True, False, True], [True, False])
    with pytest.raises(ValueError, match="b_correct must be a 1-D array of bools"):
        mcnemar_exact([True, False], [1, 0])


def test_verdict_reads_a_against_b():
    assert verdict(0.01, 0.05) == "beats"
    assert verdict(-0.05, -0.01) == "trails"
    assert verdict(-0.01, 0.05) == NO_DIFFERENCE == "no detectable difference at 95%"
    assert verdict(-0.01, 0.05, confidence=0.99) == "no detectable difference at 99%"


def test_results_are_plain_json():
    results = [
        corrected_t_test(_differences(0.02), RATIO),
        corrected_t_test([0.0] * 10, RATIO),
        corrected_t_test([0.1] * 10, RATIO),
        corrected_interval([0.9, 0.95, 0.925, 0.9, 0.95], 0.25),
        wilson_interval(np.int64(390), np.int64(400)),
        mcnemar_exact(*_scored(10, 2)),
    ]
    for result in results:
        assert all(type(v) in (float, int, str, type(None)) for v in result.values()), result
        assert json.loads(json.dumps(result, allow_nan=False)) == result
