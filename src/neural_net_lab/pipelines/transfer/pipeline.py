"""transfer: reuse the trained phone-price network on a small new market.

The new market's table is validated, split and standardized with the SOURCE scaler (the
pretrained first layer expects inputs on the source's scale); the saved network is checked
and stripped of its head; then each strategy, a namespaced instance of one template, trains
on growing subsets of the new market's training rows, as an MLflow child run.
"""

from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from neural_net_lab.table import standardize

from .market import draw_learning_curve, split_new_market, validate_new_market
from .nodes import run_strategy, score_linear_baseline, summarize_learning_curve
from .params import STRATEGIES
from .surgery import prepare_source_model

SHARED_INPUTS = {
    "new_market_schema",
    "new_market_train_set",
    "new_market_test_set",
    "new_market_curve_subsets",
    "pretrained_layers",
}


def strategy_pipeline(strategy: str) -> Pipeline:
    """One strategy: the template under the namespace ``transfer.<strategy>``.

    It reads the whole ``transfer`` block (one typed block, checked before any node runs);
    ``strategy`` picks its entry under ``transfer.strategies``.
    """
    run = update_wrapper(partial(run_strategy, strategy=strategy), run_strategy)
    template = Pipeline(
        [
            Node(
                run,
                inputs=[
                    "new_market_train_set",
                    "new_market_test_set",
                    "new_market_curve_subsets",
                    "pretrained_layers",
                    "params:model",
                    "params:training",
                    "params:transfer",
                    "new_market_schema",
                ],
                outputs=["model", "result"],
                name="run_strategy",
            )
        ]
    )
    return Pipeline(
        template,
        namespace=f"transfer.{strategy}",
        inputs=SHARED_INPUTS,
        parameters={"params:model", "params:training", "params:transfer"},
    )


def create_pipeline(**kwargs) -> Pipeline:
    data = Pipeline(
        [
            Node(
                validate_new_market,
                inputs=["phone_prices_new_market", "table_schema", "params:transfer"],
                outputs=["validated_new_market", "new_market_schema"],
                name="validate_new_market",
            ),
            Node(
                split_new_market,
                inputs=["validated_new_market", "new_market_schema", "params:transfer"],
                outputs=["new_market_train_split", "new_market_test_split"],
                name="split_new_market",
            ),
            Node(
                standardize,
                inputs=["new_market_train_split", "scaler", "new_market_schema"],
                outputs="new_market_train_set",
                name="standardize_new_market_train",
            ),
            Node(
                standardize,
                inputs=["new_market_test_split", "scaler", "new_market_schema"],
                outputs="new_market_test_set",
                name="standardize_new_market_test",
            ),
            Node(
                draw_learning_curve,
                inputs=["new_market_train_set", "new_market_schema", "params:transfer"],
                outputs="new_market_curve_subsets",
                name="draw_learning_curve",
            ),
            Node(
                prepare_source_model,
                inputs=["phone_price_model", "params:model", "table_schema"],
                outputs="pretrained_layers",
                name="prepare_source_model",
            ),
        ]
    )
    report = Pipeline(
        [
            Node(
                score_linear_baseline,
                inputs=[
                    "new_market_train_set",
                    "new_market_test_set",
                    "new_market_curve_subsets",
                    "new_market_schema",
                    "params:transfer",
                ],
                outputs="transfer.logistic_regression.result",
                name="score_linear_baseline",
                namespace="transfer",
            ),
            Node(
                summarize_learning_curve,
                inputs=[f"transfer.{name}.result" for name in (*STRATEGIES, "logistic_regression")],
                outputs=[
                    "transfer_learning_curve",
                    "transfer_learning_curve_markdown",
                    "transfer_learning_curve_plot",
                ],
                name="summarize_learning_curve",
                # Groups the report with the strategies whose `transfer.*.result` it reads.
                namespace="transfer",
            ),
        ]
    )
    return Pipeline(
        [data, *(strategy_pipeline(name) for name in STRATEGIES), report], tags="transfer"
    )
