"""The shape of the code (issue 25): layers point one way, rooms stay small, the row schema has one home, and
adding a pipeline, a dataset source or an experiment is one module and one registry line."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT
from pipelines import DATASETS, EXPERIMENTS, PIPELINES, DatasetEntry, PipelineEntry, experiment

SOURCES = sorted(p for p in [*ROOT.glob("pipelines/**/*.py"), ROOT / "runner.py", *ROOT.glob("bench/*.py")])


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, str | None]]:
    """(imported module, the function it is imported in or None at module level) of every import in ``path``."""
    tree, name = ast.parse(path.read_text()), module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []

    def visit(node, where):
        for child in ast.iter_child_nodes(node):
            inside = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else where
            if isinstance(child, ast.Import):
                out.extend((a.name, where) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(up + ([child.module] if child.module else []))
                out.extend((f"{base}.{a.name}" if f"{base}.{a.name}" in NAMES else base, where) for a in child.names)
            visit(child, inside)
    visit(tree, None)
    return out


NAMES = {module_name(p) for p in SOURCES}


def test_nothing_on_the_run_side_imports_the_report_and_there_is_no_cycle():
    edges = {}
    for path in SOURCES:
        name = module_name(path)
        for target, where in imports(path):
            if not target.startswith("pipelines"):
                continue
            if target.startswith("pipelines.report") and not name.startswith("pipelines.report"):
                assert name == "runner" and where == "write_report", f"{name} imports {target} (in {where})"
            edges.setdefault(name, set()).add(next((n for n in sorted(NAMES, key=len, reverse=True)
                                                    if target == n or target.startswith(n + ".")), target))
    seen, stack, on_stack = set(), [], set()

    def walk(node):  # depth-first search for a cycle
        seen.add(node)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt == node or nxt not in NAMES:
                continue
            assert nxt not in on_stack, "import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt])
            if nxt not in seen:
                walk(nxt)
        stack.pop()
        on_stack.discard(node)
    for node in sorted(NAMES):
        if node not in seen:
            walk(node)


def test_no_module_over_450_lines_and_no_function_over_60():
    for path in SOURCES:
        text = path.read_text()
        assert text.count("\n") <= 450, f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "parse_args":
                length = node.end_lineno - node.lineno + 1
                assert length <= 60, f"{path.relative_to(ROOT)}: {node.name} has {length} lines"


def test_the_results_columns_documented_are_the_row_schema():
    from pipelines.store import column_docs
    text = (ROOT / "docs" / "results.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| `")]
    assert table == [f"| `{name}` | {doc} |" for name, doc in column_docs()]


# --- adding is one module and one line -----------------------------------------------------------------------------

TOY_NETWORK = '''
from torch import nn
from pipelines.learned.common import LearnedPipeline
from pipelines.learned.trainer import TrainConfig


def tiny(num_classes=10, in_channels=1, image_size=28):
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(8 * 16, num_classes))


SMOKE = TrainConfig(model="toy_net:tiny", epochs=2, batch_size=64, lr=0.05, momentum=0.9, n_train=400, n_test=200)


class TinyNet(LearnedPipeline):
    name = "toy_net"
    presets = {"smoke": SMOKE, "cpu": SMOKE, "paper": SMOKE}
'''

TOY_SOURCE = '''
from conftest import bars
from pipelines.datasets import Dataset


def load(data_dir=None):
    (x, y), (xt, yt) = bars(300, seed=11), bars(100, seed=12)
    return Dataset(x, y, xt, yt, name="toy-bars", source="generated in the test", class_names=tuple("abcdefghij"))
'''

TOY_EXPERIMENT = '''
from pipelines.analysis.claims import decide
from pipelines.analysis.stats import difference
from pipelines.analysis.tables import seeds_of
from pipelines.experiments.base import Experiment, bar_section
from pipelines.experiments.engine import ExpSize, arm


class HogOverPixels(Experiment):
    name, title = "toy_exp", "A toy experiment"
    description = "HOG against pixels on a few bars"
    claim = "HOG beats pixels on bars."
    sizes = {"smoke": ExpSize(200, (0, 1, 2)), "cpu": ExpSize(200, (0, 1, 2))}

    def arms(self, size, seeds, recipe):
        return [arm({"arm": n}, n, s, size.n_train) for s in seeds or size.seeds for n in ("pixels_svm", "hog_svm")]

    def judge(self, rows, exp):
        effect = difference(seeds_of(rows, "arm", "hog_svm"), seeds_of(rows, "arm", "pixels_svm"))
        return effect.text(), *decide(effect)

    def body(self, inp, exp):
        return bar_section(inp, exp, ["arm"], lambda a: a.arm, self.title)
'''


@pytest.fixture
def toys(tmp_path, monkeypatch):
    """Three new modules in a folder of their own, and one registry line each (made here, for this test)."""
    folder = tmp_path / "toys"
    folder.mkdir()
    for name, text in (("toy_net", TOY_NETWORK), ("toy_source", TOY_SOURCE), ("toy_experiment", TOY_EXPERIMENT)):
        (folder / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setitem(PIPELINES, "toy_net", PipelineEntry("learned", "a tiny network", "toy_net:TinyNet"))
    monkeypatch.setitem(DATASETS, "toy-bars", DatasetEntry("bars generated by a test", "toy_source:load"))
    monkeypatch.setitem(EXPERIMENTS, "toy_exp", "toy_experiment:HogOverPixels")
    return folder


def test_adding_a_pipeline_a_dataset_and_an_experiment_is_one_module_and_one_line_each(toys, tmp_path, tiny_dir):
    import runner
    res = tmp_path / "res"
    code = {p: p.read_bytes() for p in [*ROOT.glob("pipelines/**/*.py"), ROOT / "runner.py"]}
    assert runner.main(["--only", "toy_net", "pixels_svm", "--dataset", "toy-bars", "--preset", "smoke",
                        "--results-dir", str(res)]) == 0
    rows = pd.read_csv(res / "summary.csv").set_index("pipeline")
    assert set(rows.index) == {"toy_net", "pixels_svm"} and set(rows.status) == {"ok"}
    assert rows.loc["toy_net", "family"] == "learned" and rows.loc["toy_net", "test_accuracy"] > 0.1
    assert runner.main(["--experiment", "toy_exp", "--preset", "smoke", "--data-dir", str(tiny_dir),
                        "--results-dir", str(res)]) == 0
    stored = json.loads(next((res / "datasets" / tiny_dir.name / "experiments").glob("toy_exp.smoke.json")).read_text())
    assert len(stored["rows"]) == 6 and all(r["config_hash"] for r in stored["rows"])
    report = (res / "datasets" / tiny_dir.name / "report.md").read_text()
    assert "### A toy experiment" in report and "HOG beats pixels on bars." in report
    assert {p: p.read_bytes() for p in [*ROOT.glob("pipelines/**/*.py"), ROOT / "runner.py"]} == code  # untouched
    for name in EXPERIMENTS:  # nothing joins an experiment silently: each names its arms
        e = experiment(name)
        for size_name, size in e.sizes.items():
            assert all(a.pipeline != "toy_net" for a in e.arms(size, None, "smoke" if size_name == "smoke" else "cpu"))


def test_the_toy_pipeline_is_listed_and_its_dataset_named_in_the_help(toys, capsys):
    import runner
    assert runner.main(["--list"]) == 0
    assert "toy_net" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        runner.parse_args(["--help"])
    assert "toy-bars: bars generated by a test" in " ".join(capsys.readouterr().out.split())
