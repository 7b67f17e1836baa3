"""Every notebook in notebooks/ runs top to bottom (small sizes: TFLOSS_SMALL=1).

Run under Keras 3 only: a notebook starts its own kernel, so running it again
from the tf_keras pass would test nothing new (a notebook that needs tf_keras
sets TF_USE_LEGACY_KERAS itself, before importing TensorFlow).
"""

import os
import pathlib

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.keras3
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(str(path), as_version=4)
    first = "".join(nb.cells[0].source)
    assert "colab.research.google.com" in first, "a notebook opens with its Colab badge"
    os.environ["TFLOSS_SMALL"] = "1"
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
