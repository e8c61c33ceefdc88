"""Neural Net Lab: a phone-price neural network built, trained, compared, tuned and served with
Kedro, PyTorch, MLflow and Optuna.

Folders: ``pipelines/`` (one Kedro pipeline each), ``engine/`` (the PyTorch code every
pipeline trains through), ``table/`` (the table's schema, checks, encoding and split),
``datasets/`` (the catalog's own datasets), ``serving/`` (the served MLflow model) and
``data_generation/`` (generators of the shipped tables). Shared modules here, each named for
what it holds: variants, linear_baseline, reporting, writers, hooks, settings, config_loader,
run_config, pipeline_registry, tracking_store, mlflow_params.

Code that several pipelines use lives in those modules or in the engine, never in a pipeline's
folder; tests/test_import_graph.py holds the import rules."""

__version__ = "0.1"
