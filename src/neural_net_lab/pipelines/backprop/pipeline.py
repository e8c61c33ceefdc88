"""backprop: gradients by hand, by autograd and by central finite differences, side by side.

The lesson's sigmoid network (every number in parameters_backprop.yml) gets a hand-derived
backward pass, an autograd pass with one SGD step, and the gradient-accumulation demonstration;
the MLP of ``params:model``, with the widths of the table (``table_schema``), gets the same
three-way check on rows of ``train_set``.
``train_set`` comes from the data_processing pipeline's own nodes, so that a fresh checkout
runs ``kedro run --pipelines backprop`` on its own (as ``optimizers`` does).
"""

from kedro.pipeline import Node, Pipeline

from neural_net_lab.pipelines.data_processing.pipeline import create_pipeline as data_processing
from neural_net_lab.table import network_for_table

from .nodes import (
    autograd_sgd_step,
    compare_gradients,
    demonstrate_gradient_accumulation,
    finite_difference_gradients,
    hand_derived_gradients,
    initialize_mlp,
    mlp_autograd_gradients,
    mlp_finite_difference_gradients,
    mlp_hand_derived_gradients,
    select_check_rows,
)
from .report import mlp_report, network_report, write_report

_MLP_INPUTS = ["backprop_mlp_weights", "backprop_mlp_model", "backprop_mlp_batch"]


def create_pipeline(**kwargs) -> Pipeline:
    lesson_network = Pipeline(
        [
            Node(
                hand_derived_gradients,
                "params:backprop",
                "backprop_manual",
                name="hand_derived_gradients",
            ),
            Node(
                autograd_sgd_step, "params:backprop", "backprop_autograd", name="autograd_sgd_step"
            ),
            Node(
                finite_difference_gradients,
                "params:backprop",
                "backprop_finite_difference",
                name="finite_difference_gradients",
            ),
            Node(
                demonstrate_gradient_accumulation,
                ["params:backprop", "backprop_autograd"],
                "backprop_accumulation",
                name="demonstrate_gradient_accumulation",
            ),
            Node(
                compare_gradients,
                ["backprop_manual", "backprop_autograd", "backprop_finite_difference"],
                "backprop_comparison",
                name="compare_gradients",
            ),
            Node(
                network_report,
                {
                    "backprop": "params:backprop",
                    "manual": "backprop_manual",
                    "autograd": "backprop_autograd",
                    "finite_difference": "backprop_finite_difference",
                    "comparison": "backprop_comparison",
                    "accumulation": "backprop_accumulation",
                },
                "backprop_network_report",
                name="network_report",
            ),
        ],
        tags="lesson_network",
    )
    phone_price_mlp = Pipeline(
        [
            Node(
                network_for_table,
                ["params:model", "table_schema"],
                "backprop_mlp_model",
                name="network_for_table",
            ),
            Node(
                select_check_rows,
                ["train_set", "table_schema", "params:backprop.mlp_check"],
                "backprop_mlp_batch",
                name="select_check_rows",
            ),
            Node(
                initialize_mlp,
                ["backprop_mlp_model", "params:backprop.mlp_check"],
                "backprop_mlp_weights",
                name="initialize_mlp",
            ),
            Node(
                mlp_hand_derived_gradients,
                _MLP_INPUTS,
                "backprop_mlp_manual",
                name="mlp_hand_derived_gradients",
            ),
            Node(
                mlp_autograd_gradients,
                _MLP_INPUTS,
                "backprop_mlp_autograd",
                name="mlp_autograd_gradients",
            ),
            Node(
                mlp_finite_difference_gradients,
                [*_MLP_INPUTS, "params:backprop.finite_difference"],
                "backprop_mlp_finite_difference",
                name="mlp_finite_difference_gradients",
            ),
            Node(
                compare_gradients,
                ["backprop_mlp_manual", "backprop_mlp_autograd", "backprop_mlp_finite_difference"],
                "backprop_mlp_comparison",
                name="mlp_compare_gradients",
            ),
            Node(
                mlp_report,
                [
                    "backprop_mlp_model",
                    "backprop_mlp_batch",
                    "params:backprop.mlp_check",
                    "backprop_mlp_manual",
                    "backprop_mlp_comparison",
                ],
                "backprop_mlp_report",
                name="mlp_report",
            ),
        ],
        tags="phone_price_mlp",
    )
    report = Pipeline(
        [
            Node(
                write_report,
                ["backprop_network_report", "backprop_mlp_report"],
                ["backprop_report", "backprop_metrics"],
                name="write_backprop_report",
            ),
        ]
    )
    return data_processing() + Pipeline([lesson_network, phone_price_mlp, report], tags="backprop")
