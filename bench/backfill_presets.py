"""One-off: give result files written before files recorded their pipelines' presets (``tuning.presets_of``)
the presets of the commit they name, so that the report can tell whether they describe today's pipelines.

    python bench/backfill_presets.py            # every experiment and tuning file without "presets"

For each such file it checks the named commit out into a temporary git worktree, computes there what
``presets_of`` computes today (each pipeline's ``cpu`` preset as JSON, plus the fingerprint of its network's
building function), and adds ``presets`` and ``presets_reconstructed_from`` (the commit) to the file; nothing
else in the file changes. A file whose run had uncommitted changes (``git_dirty``) gets its commit's presets:
the closest record there is, and the added key says which commit it came from.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.results import atomic_write_text  # noqa: E402

# Runs inside the old commit's tree: the computation of today's ``presets_of``, on that tree's code.
AT_COMMIT = """
import dataclasses, hashlib, inspect, json, sys
from pipelines import REGISTRY
out = {}
for name in json.loads(sys.argv[1]):
    if name not in REGISTRY:
        continue
    cfg = REGISTRY[name].load().config("cpu")
    record = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    if getattr(cfg, "model", None):
        from pipelines.learned.models import MODELS
        record["model_source"] = hashlib.sha256(inspect.getsource(MODELS[cfg.model]).encode()).hexdigest()[:16]
    out[name] = record
print(json.dumps(out))
"""


def pipelines_of(payload: dict) -> list[str]:
    if payload.get("pipeline"):  # a tuning file
        return [payload["pipeline"]]
    return sorted({r["pipeline"] for r in payload.get("rows", []) if r.get("pipeline")})


def presets_at(commit: str, pipelines: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit], check=True,
                       capture_output=True)
        try:
            out = subprocess.run([sys.executable, "-c", AT_COMMIT, json.dumps(pipelines)], cwd=tree, check=True,
                                 capture_output=True, text=True, env={"PYTHONPATH": str(tree), "PATH": ""})
            return json.loads(out.stdout)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)


def main() -> int:
    files = sorted((ROOT / "results" / "experiments").glob("*.json")) + sorted((ROOT / "results" / "tuning").glob("*.json"))
    for path in files:
        payload = json.loads(path.read_text())
        if "presets" in payload or not payload.get("git_commit"):
            continue
        payload["presets"] = presets_at(payload["git_commit"], pipelines_of(payload))
        payload["presets_reconstructed_from"] = payload["git_commit"]
        atomic_write_text(path, json.dumps(payload, indent=1))
        print(f"{path.relative_to(ROOT)}: presets of {', '.join(payload['presets']) or 'no pipeline'} "
              f"from commit {payload['git_commit']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
