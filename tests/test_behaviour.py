"""The numbers stay put: the same seeds give the same reports, files and MLflow params and
metrics as recorded in tests/data/behaviour.json (``python -m tests.behaviour`` records it).

Recorded before the package was reorganised into named modules; a change that means to alter
results records again and says why in its commit.
"""

from __future__ import annotations

import json

from .behaviour import RECORD, differences, record, run_lesson, run_tuning
from .mlflow_params import EXPECTED, logged_params


def test_every_output_and_mlflow_run_matches_the_record(project_copy):
    """Also: every run's params hold those recorded before the blocks were typed
    (tests/data/mlflow_params.json), same keys and values, and no block is logged whole.

    A pipeline that later reads more blocks logs more params, so extra keys are allowed there
    as long as they are settings, not blocks (``training`` next to ``training.epochs``).
    """
    run_lesson(project_copy)
    logged = logged_params()
    run_tuning(project_copy)
    changed = differences(json.loads(RECORD.read_text()), record(project_copy))
    assert not changed, "\n".join(line[:400] for line in changed[:30])

    before_typing = json.loads(EXPECTED.read_text())
    assert set(logged) == set(before_typing)
    for run, runs in before_typing.items():
        assert len(logged[run]) == len(runs), run
        for before, now in zip(runs, logged[run], strict=True):
            assert before.items() <= now.items(), run
            blocks = {key for key in now if any(k.startswith(f"{key}.") for k in now)}
            assert not blocks, (run, blocks)
