"""The typed ``backprop`` block: the lesson's network and the table's MLP check."""

from __future__ import annotations

from typing import Annotated, ClassVar, NewType

from pydantic import Field, StrictInt, model_validator

from neural_net_lab.engine.config import Block, Number, PositiveFloat, PositiveInt
from neural_net_lab.engine.errors import setting_error

Vector = Annotated[list[Number], Field(min_length=1)]


class ExampleParams(Block):
    input: Vector
    target: Vector


class LayerParams(Block):
    """One layer in PyTorch's [out, in] layout: row r of ``weight`` feeds output r."""

    weight: Annotated[list[Vector], Field(min_length=1)]
    bias: Vector


class SgdParams(Block):
    lr: PositiveFloat


class AccumulationParams(Block):
    passes: Annotated[StrictInt, Field(ge=2)]  # backward passes without zero_grad()


class FiniteDifferenceParams(Block):
    step: PositiveFloat


class MlpCheckParams(Block):
    rows: PositiveInt
    seed: StrictInt


class BackpropParams(Block):
    """``backprop`` in parameters_backprop.yml; the layers' shapes must chain from
    ``example.input`` to ``example.target``."""

    block_path: ClassVar[str] = "backprop"

    example: ExampleParams
    network: dict[str, LayerParams] = Field(min_length=1)
    sgd: SgdParams
    gradient_accumulation: AccumulationParams
    finite_difference: FiniteDifferenceParams
    mlp_check: MlpCheckParams

    @model_validator(mode="after")
    def _shapes_chain(self) -> BackpropParams:
        width, source = len(self.example.input), "example.input"
        for name, layer in self.network.items():
            at = ("network", name)
            if not name.isidentifier():
                raise setting_error("BackpropParams", at, "must be named like layer1", name)
            if len({len(row) for row in layer.weight}) != 1:
                rule = "must be a matrix: its rows have different lengths"
                raise setting_error("BackpropParams", (*at, "weight"), rule, layer.weight)
            outputs, inputs = len(layer.weight), len(layer.weight[0])
            if inputs != width:
                rule = (
                    f"has shape [{outputs}, {inputs}] ([out, in]) but its input is the {width} "
                    f"value(s) of backprop.{source}: it needs {width} column(s)"
                )
                raise setting_error("BackpropParams", (*at, "weight"), rule, layer.weight)
            if len(layer.bias) != outputs:
                rule = f"has {len(layer.bias)} entries for the weight's {outputs} rows (outputs)"
                raise setting_error("BackpropParams", (*at, "bias"), rule, layer.bias)
            width, source = outputs, f"network.{name}"
        if len(self.example.target) != width:
            rule = (
                f"has {len(self.example.target)} entries but backprop.{source} has {width} outputs"
            )
            raise setting_error("BackpropParams", ("example", "target"), rule, self.example.target)
        return self


# The nodes that read a block inside ``backprop`` (``params:backprop.mlp_check``) get it
# already typed from the whole block. Kedro cannot validate a block and a block inside it
# (it fails to set the inner one), so their arguments are typed with these aliases, which
# Kedro does not validate again.
MlpCheck = NewType("MlpCheck", MlpCheckParams)
FiniteDifference = NewType("FiniteDifference", FiniteDifferenceParams)
