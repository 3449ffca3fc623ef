"""Every notebook in notebooks/ runs top to bottom on the Python API."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted(Path("notebooks").glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [str(o.get("data", {}).get("text/html", "")) for o in outputs]
    figures = [h for h in html if "Plotly.newPlot" in h]
    if figures:  # plotted: the figures work in exported HTML without a network
        assert any("plotly.js v" in h for h in html), "plotly.js is embedded once"
        assert not any(re.search(r"src=[\"']https?://cdn\.plot\.ly/plotly", h) for h in html)
