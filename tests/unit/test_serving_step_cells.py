"""``DeploymentStepModel`` fills its grid in blocks (decode rows of 32 batch sizes, prompt-step cells of
16 decode contexts for 16 batch sizes); a time at a grid point must be the cost model's own number
for that point alone, whatever was filled with it.

Source: ``dep.step`` of the planned deployment, called for the one point. Tolerance: none (at a grid
point every interpolation weight is 0 or 1, so the adapter returns the filled number itself).
"""

import numpy as np
import pytest

from siliconsim.hardware.catalog import load_chip
from siliconsim.models.catalog import load_model
from siliconsim.perf.step import Work
from siliconsim.serving.deploy import serve_system
from siliconsim.serving.step_model import GRID


@pytest.mark.parametrize("model_id, chip_id, chips", [("llama-3.1-70b", "h100-sxm", 8), ("llama-3.1-70b", "cs-3", 4),
                                                      ("llama-3.1-8b", "groq-lpu", None)])
def test_grid_point_times_are_the_cost_models_numbers_for_that_point_alone(model_id, chip_id, chips):
    model = serve_system(load_model(model_id), load_chip(chip_id), chips=chips, context_tokens=20000.0).step_model
    rng = np.random.default_rng(7)
    points = [(GRID[rng.integers(1, 100)], GRID[rng.integers(0, 100)], float(b), GRID[rng.integers(0, 110)] if b else 0.0)
              for b in rng.integers(0, 60, 24)] + [(0, 0.0, float(b), GRID[rng.integers(0, 110)]) for b in (1, 33, 50)]
    points += [(GRID[70], GRID[65], 12.5, GRID[80]), (0, 0.0, 12.5, GRID[90])]  # a batch that is not whole
    for p, pc, b, dc in points:
        alone = model._dep.step(Work(np.array([p]), np.array([pc]), np.array([b]), np.array([dc]))).latency_s
        assert model.step_time_s(p, pc, b, dc) == float(np.asarray(alone).ravel()[0]), (p, pc, b, dc)
    assert model.cost_model_calls < len(points)  # blocks: most points were filled with an earlier one
