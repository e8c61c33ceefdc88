"""The first node: the raw table checked against the configuration and its schema derived.

Every disagreement between the parameters and the data is found here, before anything is
trained or saved: a listed feature or class that is absent, a label column listed as a
feature, a class too small to stratify, a width in ``model`` that the table does not give,
a text column with too many values, missing values while imputation is off. Each error names
the parameter, the column and the rows.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from pandas.api import types

from neural_net_lab.engine.config import ColumnsParams, ModelParams

from .encoding import fit_categories, fit_imputation, inputs_of, rows_where
from .schema import DataProcessingParams, DataValidationError, TableSchema
from .split import stratified_split

logger = logging.getLogger(__name__)

ID_NAME = "id"  # an id column is recognised by this name, in any case


def validate_table(
    raw: pd.DataFrame, columns: ColumnsParams, params: DataProcessingParams, model: ModelParams
) -> tuple[pd.DataFrame, TableSchema]:
    """The first node: ``derive_schema``, and the ``model`` block's declared widths checked
    against the table's."""
    validated, schema = derive_schema(raw, columns, params)
    schema.network(model)
    return validated, schema


def derive_schema(
    raw: pd.DataFrame, columns: ColumnsParams, params: DataProcessingParams
) -> tuple[pd.DataFrame, TableSchema]:
    """The table's features and label as read (ids and unused columns dropped), and its
    schema: features, classes and widths derived, categories and fill values learned on the
    training split that ``split_data`` will cut. Raises on the first rule the data breaks."""
    source = params.table_name
    if raw.empty:
        raise DataValidationError(f"{source}: the table has no rows")
    target = columns.target
    if target not in raw.columns:
        raise DataValidationError(
            f"{source}: no label column '{target}' (columns.target); its columns are "
            f"{list(raw.columns)}"
        )
    id_column = find_id_column(raw, columns)
    features = _features(raw, columns, id_column, source)
    classes = _classes(raw[target], columns, params, source)
    text = [c for c in features if not _is_numeric(raw[c])]
    _check_gaps(raw, [target] if params.impute else [*features, target], source)
    _check_text(raw, text, params, source)

    # Numbers as float64, text as str (a missing cell stays missing, for imputation), the
    # label as given: the network's codes and inputs come later, from the schema.
    validated = pd.DataFrame(
        {
            column: (
                raw[column].map(str, na_action="ignore") if column in text else raw[column]
            ).astype(object if column in text else "float64")
            for column in features
        }
    )
    validated[target] = raw[target].to_numpy()
    validated = validated.reset_index(drop=True)

    # The split that split_data cuts next (same function, same arguments): categories and
    # fill values are learned on its training rows only, and the widths follow from them.
    train, _ = stratified_split(
        validated, target, params.random_state, train_size=params.train_share
    )
    imputation = fit_imputation(train, features, text) if params.impute else None
    categories = fit_categories(train, text, imputation)
    schema = TableSchema(
        name=params.table_name,
        target=target,
        id=id_column or columns.id or ID_NAME,
        features=features,
        categories=categories,
        imputation=imputation,
        classes=classes,
        inputs=inputs_of(features, categories, source),
    )
    counts = validated[target].value_counts().reindex(classes, fill_value=0)
    logger.info(
        "Validated %d rows of %r: %d feature column(s) (%d text, one-hot), %d inputs, "
        "class counts %s",
        len(validated),
        source,
        len(features),
        len(text),
        schema.input_dim,
        counts.to_dict(),
    )
    return validated, schema


def find_id_column(frame: pd.DataFrame, columns: ColumnsParams) -> str | None:
    """``columns.id`` when the table has it, else a column named ``id`` in any case."""
    if columns.id is not None:
        return columns.id if columns.id in frame.columns else None
    named = [c for c in frame.columns if str(c).lower() == ID_NAME]
    return named[0] if named else None


def _features(
    raw: pd.DataFrame, columns: ColumnsParams, id_column: str | None, source: str
) -> list[str]:
    if columns.features is None:
        return [str(c) for c in raw.columns if c not in {columns.target, id_column}]
    features = list(columns.features)
    if columns.target in features:
        raise DataValidationError(
            f"{source}: columns.features lists the label column '{columns.target}' "
            "(columns.target); a label cannot be a feature"
        )
    if id_column is not None and id_column in features:
        raise DataValidationError(
            f"{source}: columns.features lists the id column '{id_column}'; an id is no feature"
        )
    repeated = sorted({c for c in features if features.count(c) > 1})
    if repeated:
        raise DataValidationError(f"{source}: columns.features lists {repeated} more than once")
    missing = [c for c in features if c not in raw.columns]
    if missing:
        raise DataValidationError(
            f"{source}: columns.features lists column(s) {missing} that the table does not "
            f"have; its columns are {list(raw.columns)}"
        )
    extra = [c for c in raw.columns if c not in {*features, columns.target, id_column}]
    if extra:
        logger.warning("%s: ignoring column(s) %s (not in columns.features)", source, extra)
    return features


def _classes(
    labels: pd.Series, columns: ColumnsParams, params: DataProcessingParams, source: str
) -> list[Any]:
    """The classes: as listed (checked against the labels), or the labels that occur, sorted."""
    target = columns.target
    missing = labels.isna()
    if missing.any():
        raise DataValidationError(
            f"{source}: column '{target}': {int(missing.sum())} row(s) without a label "
            f"(rows {rows_where(missing)})"
        )
    occurring = [_plain(v) for v in pd.unique(labels)]
    if columns.classes is None:
        classes = sorted(occurring, key=lambda v: (str(type(v)), v))
    else:
        classes = list(columns.classes)
        absent = [c for c in classes if not (labels == c).any()]
        if absent:
            raise DataValidationError(
                f"{source}: columns.classes lists class(es) {absent} that do not occur in "
                f"column '{target}', whose labels are {sorted(map(str, occurring))}"
            )
    known = labels.isin(classes)
    if not known.all():
        examples = labels[~known].astype(str).unique()[:5].tolist()
        raise DataValidationError(
            f"{source}: column '{target}': {int((~known).sum())} row(s) with labels outside "
            f"columns.classes {classes} (e.g. {examples})"
        )
    if len(classes) < 2:
        raise DataValidationError(
            f"{source}: column '{target}' holds one class only ({classes}): nothing to classify"
        )
    counts = labels.value_counts().reindex(classes, fill_value=0)
    too_few = {_plain(k): int(n) for k, n in counts.items() if n < params.min_rows_per_class}
    if too_few:
        raise DataValidationError(
            f"{source}: column '{target}': class(es) {too_few} have fewer than "
            f"{params.min_rows_per_class} rows (data_processing.min_rows_per_class), "
            "too few to stratify"
        )
    return classes


def _is_numeric(values: pd.Series) -> bool:
    return types.is_numeric_dtype(values) or types.is_bool_dtype(values)


def _check_gaps(raw: pd.DataFrame, checked: list[str], source: str) -> None:
    problems = [
        f"column '{column}': {int(gaps.sum())} row(s) with missing values (rows {rows_where(gaps)})"
        for column in checked
        if (gaps := raw[column].isna()).any()
    ]
    if problems:
        raise DataValidationError(
            f"{source}: " + "; ".join(problems) + ". Fill them, drop the rows, or set "
            "data_processing.impute: true (median for numbers, most frequent for text, "
            "learned on the training split)"
        )


def _check_text(
    raw: pd.DataFrame, text: list[str], params: DataProcessingParams, source: str
) -> None:
    for column in text:
        values = raw[column].dropna()
        distinct = values.nunique()
        if distinct > params.max_categories:
            numbers = int(pd.to_numeric(values, errors="coerce").notna().sum())
            hint = (
                f"; {numbers} of its {len(values)} values are numbers, so it may be a numeric "
                "column with a few bad cells"
                if numbers
                else ""
            )
            raise DataValidationError(
                f"{source}: text column '{column}' has {distinct} distinct values, more than "
                f"data_processing.max_categories ({params.max_categories}) one-hot inputs"
                f"{hint}. Drop it (list the columns to use in columns.features) or raise "
                "data_processing.max_categories"
            )


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON and YAML write."""
    return value.item() if hasattr(value, "item") else value
