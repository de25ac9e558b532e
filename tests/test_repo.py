"""The front door: CI runs exactly the README's test command."""
from __future__ import annotations

import re

from conftest import ROOT


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    return [b.strip() for b in blocks[:2]]


def test_ci_runs_the_readme_test_command():
    run_cmd, test_cmd = readme_commands()
    assert "runner.py --all" in run_cmd
    assert "pytest" in test_cmd
    assert test_cmd in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_readme_is_a_front_door_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert text.count("\n") <= 200
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        assert (ROOT / link).exists(), link
    assert not re.search(r"`[0-9a-f]{7}`", text)  # commit hashes belong to git history and PROTOCOL's log


def test_the_readme_table_names_every_registered_pipeline_once():
    from pipelines import PIPELINES, family
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \|", (ROOT / "README.md").read_text(), flags=re.M)
    assert sorted(rows) == sorted((name, family(name)) for name in PIPELINES)
