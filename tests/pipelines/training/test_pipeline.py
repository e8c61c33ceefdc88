"""training: validation carve, the training node, and its MLflow history."""

from __future__ import annotations

import shutil

import pytest

from neural_net_lab.engine.config import TrainingParams
from neural_net_lab.engine.errors import ParameterError
from neural_net_lab.pipelines.training.nodes import history_to_mlflow, split_validation, train_model
from neural_net_lab.variants import variant_names
from tests.conftest import PROJECT_ROOT


def test_validation_share_is_stratified_and_zero_turns_it_off(
    model_inputs, table_schema, small_model, small_training
):
    train_set = model_inputs["train_set"]
    fit_set, validation_set = split_validation(train_set, table_schema, small_training, small_model)
    assert (len(fit_set), len(validation_set)) == (1440, 160)
    assert validation_set.price_range.value_counts().unique().tolist() == [40]
    no_validation = small_training.model_copy(update={"validation_share": 0})
    fit_all, none = split_validation(train_set, table_schema, no_validation, small_model)
    assert len(fit_all) == 1600 and len(none) == 0


def test_a_width_the_table_does_not_give_stops_the_first_training_node(
    model_inputs, table_schema, small_model, small_training
):
    wrong = small_model.model_copy(update={"n_classes": 5})
    with pytest.raises(ParameterError, match=r"^model\.n_classes: is 5 but .* gives 4"):
        split_validation(model_inputs["train_set"], table_schema, small_training, wrong)


def test_bad_validation_share_is_named(small_training):
    with pytest.raises(ParameterError, match=r"^training.validation_share: must be < 1, got 1$"):
        TrainingParams.model_validate({**small_training.dump(), "validation_share": 1})


def test_train_model_history_has_one_value_per_epoch(
    model_inputs, table_schema, small_model, small_training
):
    tables = model_inputs["fit_set"], model_inputs["validation_set"]
    three_epochs = small_training.model_copy(update={"epochs": 3})
    _, history = train_model(*tables, small_model, three_epochs, table_schema)
    assert {len(history[k]) for k in ("train_loss", "val_loss", "val_accuracy")} == {3}
    metrics = history_to_mlflow(history)
    assert set(metrics) == {"train_loss", "val_loss", "val_accuracy"}
    assert [m["step"] for m in metrics["val_loss"]] == [0, 1, 2]
    assert metrics["train_loss"][2]["value"] == history["train_loss"][2]


def test_training_without_validation(model_inputs, table_schema, small_model, small_training):
    no_validation = small_training.model_copy(update={"validation_share": 0})
    fit_all, none = split_validation(
        model_inputs["train_set"], table_schema, no_validation, small_model
    )
    _, history = train_model(fit_all, none, small_model, small_training, table_schema)
    assert set(history) == {"train_loss", "seconds"}


def _conf(project, env, text):
    (project / "conf" / env).mkdir(parents=True, exist_ok=True)
    (project / "conf" / env / "parameters_demo.yml").write_text(text)


def test_variant_names_reads_the_blocks_of_the_projects_parameters(tmp_path, monkeypatch):
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    project = tmp_path / "project"
    base = "demo:\n  b: {name: b}\n  a: {name: a}\ndemo_report: {x: 1}\nother: {c: {}}\n"
    _conf(project, "base", base)
    _conf(project, "local", "")
    # File order, the experiment's own keys only; the shipped names are not consulted.
    assert variant_names("demo", ("shipped",), project) == ["b", "a"]
    assert variant_names("missing", ("shipped",), project) == []
    # conf/local (or $KEDRO_ENV) is read over base; Kedro replaces a top-level key whole.
    _conf(project, "local", "demo:\n  c: {name: c}\n")
    assert variant_names("demo", ("shipped",), project) == ["c"]
    _conf(project, "staging", "demo:\n  d: {name: d}\n  a: {name: a}\n")
    monkeypatch.setenv("KEDRO_ENV", "staging")
    assert variant_names("demo", ("shipped",), project) == ["d", "a"]


def test_variant_names_finds_the_project_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    monkeypatch.chdir(tmp_path)  # no Kedro project here or above: the shipped names
    assert variant_names("demo", ("x", "y"), None) == ["x", "y"]
    project = tmp_path / "project"
    _conf(project, "base", "demo:\n  z: {name: z}\n")
    _conf(project, "local", "")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", project / "pyproject.toml")
    monkeypatch.chdir(project / "conf")  # a folder inside the project
    assert variant_names("demo", ("x", "y")) == ["z"]
