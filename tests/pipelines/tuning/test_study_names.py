"""Which study a run adds its trials to, without a Kedro session or a cluster: the named one
on its own data; for other data a sibling named after that data, with no setting to change;
a refusal for another search space or other fixed parameters on the same data; and a study
written before data fingerprints were recorded still resuming."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import optuna
import pytest

from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.pipelines.tuning import study as studies
from neural_net_lab.pipelines.tuning.config import TuningParams
from neural_net_lab.pipelines.tuning.nodes import prepare_folds
from tests.behaviour import tuning_blocks
from tests.conftest import PROJECT_ROOT

from .conftest import tiny_blocks

# A tiny study's journal (tuning_blocks, 2 trials) written before data fingerprints.
STUDY_BEFORE = PROJECT_ROOT / "tests/data/study_before_reorganisation.journal"
ONLY_WIDTHS = {"model.hidden_dims": {"type": "categorical", "choices": [[8], [16, 8]]}}


def _prints(split, blocks):
    tuning = TuningParams.model_validate(blocks["tuning"])
    model = ModelParams.model_validate(blocks["model"])
    training = TrainingParams.model_validate(blocks["training"])
    cv_data, network = prepare_folds(split["train_split"], split["schema"], tuning, model, training)
    data = {k: cv_data[k] for k in ("features", "labels", "folds")}
    return (
        tuning,
        studies.fingerprint(data, tuning, network, training),
        studies.data_fingerprint(data, tuning),
    )


def _open(storage, split, blocks, *, create=True):
    """The study run_study would open for this table and these blocks."""
    tuning, print_, data_print = _prints(split, blocks)
    return studies.load_study(storage, tuning, print_, create=create, data_print=data_print)


def _add_trial(study):
    study.tell(study.ask(), 0.5)


@pytest.fixture
def storage(tmp_path):
    return studies.open_storage({"path": str(tmp_path / "study.journal")})


def test_other_data_gets_a_study_of_its_own_and_each_table_resumes_its_own(
    storage, model_inputs, clinic, caplog
):
    phones = _open(storage, model_inputs, tiny_blocks())
    _add_trial(phones)
    assert phones.study_name == "test"
    assert set(phones.user_attrs) == {studies.FINGERPRINT, studies.DATA_FINGERPRINT}

    with caplog.at_level(logging.INFO, logger=studies.__name__):
        other = _open(storage, clinic, tiny_blocks())
    _, _, data_print = _prints(clinic, tiny_blocks())
    assert other.study_name == f"test-{data_print[:8]}" and not other.trials
    (line,) = [r.getMessage() for r in caplog.records if "other rows" in r.getMessage()]
    assert "'test'" in line and repr(other.study_name) in line
    _add_trial(other)

    # Each table resumes its own study, n_trials: 0 (no creation) included.
    assert _open(storage, clinic, tiny_blocks()).study_name == other.study_name
    assert len(_open(storage, clinic, tiny_blocks(), create=False).trials) == 1
    again = _open(storage, model_inputs, tiny_blocks(), create=False)
    assert again.study_name == "test" and len(again.trials) == 1
    assert set(optuna.get_all_study_names(storage)) == {"test", other.study_name}

    # Other folds of the same rows are other data too.
    folds = _open(storage, model_inputs, tiny_blocks(folds=3))
    assert folds.study_name.startswith("test-") and folds.study_name != other.study_name


def test_another_search_space_or_fixed_setting_on_the_same_data_is_refused(
    storage, model_inputs, clinic
):
    _add_trial(_open(storage, model_inputs, tiny_blocks()))
    sibling = _open(storage, clinic, tiny_blocks())
    _add_trial(sibling)
    same_rows = r"was made on the same rows and folds with another search space or other fixed"
    with pytest.raises(ValueError, match=rf"study 'test' {same_rows}.*Set a new tuning\.study"):
        _open(storage, model_inputs, tiny_blocks(search_space=ONLY_WIDTHS))
    epochs = tiny_blocks()
    epochs["training"]["epochs"] = 3
    with pytest.raises(ValueError, match=rf"study 'test' {same_rows}"):
        _open(storage, model_inputs, epochs)
    # The sibling keeps its settings the same way.
    with pytest.raises(ValueError, match=rf"study '{sibling.study_name}' {same_rows}"):
        _open(storage, clinic, tiny_blocks(search_space=ONLY_WIDTHS))
    # A new study name starts afresh.
    fresh = _open(storage, model_inputs, tiny_blocks(study_name="widths", search_space=ONLY_WIDTHS))
    assert fresh.study_name == "widths" and not fresh.trials


def test_a_study_written_before_data_fingerprints_resumes_and_records_its_data(
    tmp_path, model_inputs, clinic
):
    """The journal of tests/data (2 trials on the shipped table, tests.behaviour's blocks)
    holds the combined fingerprint only: it is the same now that the labels are hashed as
    class codes, so the study resumes and learns its data fingerprint. Other data, which the
    old study cannot tell from other settings, goes to a sibling and leaves it untouched."""
    journal = tmp_path / "before.journal"
    shutil.copy(STUDY_BEFORE, journal)
    storage = studies.open_storage({"path": str(journal)})
    assert set(optuna.load_study(study_name="test", storage=storage).user_attrs) == {
        studies.FINGERPRINT
    }

    other = _open(storage, clinic, tuning_blocks())
    assert other.study_name.startswith("test-") and not other.trials
    untouched = optuna.load_study(study_name="test", storage=storage)
    assert set(untouched.user_attrs) == {studies.FINGERPRINT}

    resumed = _open(storage, model_inputs, tuning_blocks(), create=False)
    assert resumed.study_name == "test" and len(resumed.trials) == 2
    assert resumed.user_attrs[studies.FINGERPRINT] == "c1197524c1d6d191"
    assert resumed.user_attrs[studies.DATA_FINGERPRINT] == _prints(model_inputs, tuning_blocks())[2]


def test_labels_are_fingerprinted_as_class_codes(model_inputs):
    """The bytes of an array of strings are pointers: the study's labels must be codes."""
    tuning, _, data_print = _prints(model_inputs, tiny_blocks())
    cv_data, _ = prepare_folds(
        model_inputs["train_split"],
        model_inputs["schema"],
        tuning,
        ModelParams.model_validate(tiny_blocks()["model"]),
        TrainingParams.model_validate(tiny_blocks()["training"]),
    )
    assert cv_data["labels"].dtype == np.int64
    words = {**cv_data, "labels": cv_data["labels"].astype(str).astype(object)}
    with pytest.raises(TypeError, match="class codes"):
        studies.data_fingerprint(words, tuning)
    as_int32 = {**cv_data, "labels": cv_data["labels"].astype(np.int32)}
    assert studies.data_fingerprint(as_int32, tuning) == data_print
