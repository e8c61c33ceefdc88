"""The exploration notebook runs top to bottom against a project that has been run."""

from __future__ import annotations

import shutil

import nbformat
from nbclient import NotebookClient

from .conftest import FAST_TRAINING, PROJECT_ROOT, run_kedro


def test_exploration_notebook_executes(project_copy):
    run_kedro(project_copy, params=FAST_TRAINING)
    notebook_dir = project_copy / "notebooks"
    notebook_dir.mkdir()
    shutil.copy(PROJECT_ROOT / "notebooks/exploration.ipynb", notebook_dir)
    notebook = nbformat.read(notebook_dir / "exploration.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(notebook_dir)}}).execute()  # fmt: skip

    text = "\n".join(
        output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
    )  # fmt: skip
    assert "(2000, 21)" in text
    assert "test_accuracy" in text and "No metrics yet" not in text
    images = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert len(images) >= 3  # the exploration figure and the two reporting plots
