"""How a bad parameter is reported: one line per bad value, named by its full path.

Kedro reports a failed block as "Parameter 'training': ..." followed by our message, which
names each bad value by its full path and rule (``training.optimizer.lr: must be > 0, got
-1``): the path comes from the block's ``block_path`` and pydantic's error location. What
belongs here is the wording and the path; the rules themselves live with the blocks
(``engine.config``, each pipeline's ``params.py``).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, ClassVar, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

B = TypeVar("B", bound="PathErrors")


class ParameterError(ValueError):
    """One or more parameters break their block's rules; the message names each by path."""


# pydantic's error types → the rule in words ({...} are filled from the error's context).
_RULES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "missing": "is required",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a block of settings",
    "model_type": "must be a block of settings",
    "model_attributes_type": "must be a block of settings",
    "literal_error": "must be one of {expected}",
    "too_short": "must hold at least {min_length} item(s)",
    "too_long": "must hold at most {max_length} item(s)",
    "string_too_short": "must not be empty",
}


def _path(root: str, loc: tuple[str | int, ...]) -> str:
    text = root
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class that holds the setting at ``loc`` (to list its known keys)."""
    parts = iter(("root", *loc) if "root" in model.model_fields else loc)  # a RootModel
    for part in parts:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        hints, found = [field.annotation] if field else [], None
        while hints and found is None:
            hint = hints.pop()
            if get_origin(hint) in (dict, list):
                next(parts, None)  # the key or index of the item inside the container
            if inspect.isclass(hint) and issubclass(hint, BaseModel):
                found = hint
            hints += get_args(hint)
        if found is None:
            return None
        model = found
    return model


def describe(error: ValidationError, root: str, model: type[BaseModel]) -> str:
    """One line per bad value: its full parameter path, the rule and the value given."""
    lines = []
    for item in error.errors(include_url=False):
        loc, kind, ctx = item["loc"], item["type"], item.get("ctx") or {}
        if kind == "extra_forbidden":
            owner = _model_at(model, loc[:-1])
            rule = "unknown setting (a typo?)"
            if owner is not None and owner.model_fields:
                rule += f"; known: {sorted(owner.model_fields)}"
        elif kind in _RULES:
            bounds = {
                k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in ctx.items()
            }  # "> 0", not "> 0.0"
            rule = _RULES[kind].format(**bounds)
        else:
            rule = item["msg"].removeprefix("Value error, ")
        shown = "" if kind == "missing" else f", got {_shown(item['input'])}"
        lines.append(f"{_path(root, loc)}: {rule}{shown}")
    return lines[0] if len(lines) == 1 else "\n  " + "\n  ".join(lines)


def setting_error(model: str, loc: tuple[str | int, ...], rule: str, value: Any) -> ValidationError:
    """A validation error at ``loc`` inside a block, raised from a validator that sees the
    whole block (pydantic prefixes the block's own location)."""
    detail = PydanticCustomError("setting", rule)  # type: ignore[call-overload]
    return ValidationError.from_exception_data(
        model, [InitErrorDetails(type=detail, loc=loc, input=value)]
    )


class PathErrors:
    """Validation errors that name each value by its full parameter path.

    ``block_path`` is where the block sits in the parameters (``training``); ``at(path)``
    gives the same model for a block elsewhere (``optimizers.sgd.training``). Kedro calls
    ``model_validate``, so the path is added there; nested blocks report through it.
    """

    block_path: ClassVar[str] = ""
    # Set on the classes made by ``at``: the model they stand for.
    located: ClassVar[type | None] = None

    @classmethod
    def model_validate(cls: type[B], obj: Any, *args: Any, **kwargs: Any) -> B:
        # An ``at`` class validates as the model it stands for, so that its instances are
        # plain ``TrainingParams`` (picklable, equal to others) and only errors differ.
        model = cls.located or cls
        try:
            return super(PathErrors, model).model_validate(obj, *args, **kwargs)  # type: ignore[misc]
        except ValidationError as error:
            raise ParameterError(describe(error, cls.block_path, model)) from error

    @classmethod
    @functools.cache
    def at(cls: type[B], path: str) -> type[B]:
        """This model for a block at ``path`` (errors name it), e.g. a variant's overrides."""
        namespace = {"__module__": cls.__module__, "block_path": path, "located": cls}
        return type(cls.__name__, (cls,), namespace)

    def dump(self) -> Any:
        """The settings as given in the parameters (defaults not given are left out)."""
        return self.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
