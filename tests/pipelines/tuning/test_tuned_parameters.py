"""tuned_parameters.yml through its dataset: the file as tuning has always written it, loaded
typed, and a bad file stopped with its path and key (directly and through the project's
catalog, where the entry is saved atomically)."""

from __future__ import annotations

import pytest
import yaml
from kedro.io import DatasetError

from neural_net_lab.datasets import AtomicDataset, DamagedInputError
from neural_net_lab.datasets.tuned_parameters import TunedParametersDataset, TunedParams
from neural_net_lab.pipelines.tuning.search_space import configure
from tests.test_atomic_saves import project_catalog


@pytest.fixture
def tuned(small_model, small_training) -> TunedParams:
    model, training = configure(small_model, small_training, {"model.dropout": 0.25})
    return TunedParams(
        model=model,
        training=training,
        final="ensemble",
        ensemble_seeds=2,
        trial=7,
        cv_accuracy=0.9,
        cv_std=None,
        fold_accuracy=[0.875, 0.925],
    )


def test_the_file_holds_every_model_setting_and_the_given_training_settings(tmp_path, tuned):
    path = tmp_path / "tuned_parameters.yml"
    dataset = TunedParametersDataset(filepath=str(path))
    dataset.save(tuned)
    # The shape `kedro run --env tuned` and users read: the model block whole, the training
    # block without its unset optional settings, the scores and the choice beside them.
    assert yaml.safe_load(path.read_text()) == {
        "model": {**tuned.model.model_dump(), "dropout": 0.25},
        "training": tuned.training.model_dump(exclude_none=True),
        "final": "ensemble",
        "ensemble_seeds": 2,
        "trial": 7,
        "cv_accuracy": 0.9,
        "cv_std": None,
        "fold_accuracy": [0.875, 0.925],
    }
    assert "augmentation" not in yaml.safe_load(path.read_text())["training"]
    loaded = dataset.load()
    assert isinstance(loaded, TunedParams) and loaded == tuned


def test_a_file_written_before_fold_ensembles_serves_its_refit(tmp_path, tuned):
    path = tmp_path / "tuned_parameters.yml"
    path.write_text(yaml.safe_dump(tuned.blocks()))
    assert TunedParametersDataset(filepath=str(path)).load().final == "refit"


def test_a_bad_file_names_its_path_and_key(tmp_path, tuned):
    path = tmp_path / "tuned_parameters.yml"
    data = {**tuned.blocks(), "final": "ensemble"}
    data["model"]["hidden_dims"] = [0]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DatasetError, match=rf"{path}: model\.hidden_dims\[0\]: must be >= 1"):
        TunedParametersDataset(filepath=str(path)).load()


def test_the_catalog_entry_is_typed_saved_atomically_and_names_the_bad_key(
    project_copy, monkeypatch, tuned
):
    monkeypatch.chdir(project_copy)
    dataset = project_catalog(project_copy).get("tuned_parameters")
    assert isinstance(dataset, AtomicDataset)
    assert str(dataset._filepath) == "data/06_models/tuned_parameters.yml"
    dataset.save(tuned)
    assert project_catalog(project_copy).load("tuned_parameters") == tuned
    text = (project_copy / "data/06_models/tuned_parameters.yml").read_text()
    (project_copy / "data/06_models/tuned_parameters.yml").write_text(
        text.replace("final: ensemble", "final: stacked")
    )
    with pytest.raises(
        DamagedInputError,
        match=r"final: must be one of 'ensemble' or 'refit'.*"
        r"kedro run --pipelines tuning",
    ):
        project_catalog(project_copy).load("tuned_parameters")
