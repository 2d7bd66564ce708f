"""The example plugin of the tutorial (docs/new-method.md) keeps working."""

from __future__ import annotations

import numpy as np

from recourse_bench import registry
from recourse_bench.testing import check_method, toy_problem

from .conftest import ROOT


def test_the_example_plugin_passes_the_kit_and_costs_less_than_its_neighbour():
    registry.load_plugin_file(ROOT / "examples" / "shrunk_neighbour.py")
    method = registry.get("method", "shrunk-neighbour")()
    assert all(r.ok for r in check_method(method))
    problem = toy_problem(0)
    fitted = method.fit(problem.model, problem.splits)
    shrunk = fitted.generate(problem.factuals)
    neighbour = fitted.neighbour_.generate(problem.factuals)
    found = ~np.isnan(shrunk).any(axis=1)
    assert found.mean() > 0.5 and (problem.model.predict(shrunk[found]) == 1).all()
    cost = np.abs(shrunk - problem.factuals).sum(axis=1)[found]
    assert (cost <= np.abs(neighbour - problem.factuals).sum(axis=1)[found] + 1e-9).all()


def test_the_tutorials_first_method_passes_the_kit(tmp_path):
    import re

    text = (ROOT / "docs" / "new-method.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(import numpy.*?)```", text, re.S).group(1)
    path = tmp_path / "tutorial_method.py"
    path.write_text(code.replace('"my-method"', '"tutorial-method"'), encoding="utf-8")
    registry.load_plugin_file(path)
    assert all(r.ok for r in check_method(registry.get("method", "tutorial-method")()))
