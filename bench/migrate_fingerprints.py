"""One-off: move the network fingerprints that experiment and tuning files record (``presets[...]
["model_source"]``) from a hash of the building function's source to a hash of the network it builds
(``tuning.model_fingerprint``: the architecture with default arguments), so that a change of code that
builds the same network (e.g. taking the input channels from the data) no longer marks results stale.

    python bench/migrate_fingerprints.py

For each file it checks the commit the file names (``presets_reconstructed_from`` or ``git_commit``) out into a
temporary git worktree and computes there, for each network, the old source hash and the new architecture
hash. Only where the file's stored hash equals that commit's source hash (so the file is known to describe
that code) is it replaced, and the file's ``model_source_migrated_from`` keeps the old value per pipeline; any
other file is left as it is (and the report calls it stale).
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

# Runs inside the old commit's tree: per network, the source hash (the old fingerprint) and the architecture
# hash (today's ``model_fingerprint``, computed on that tree's code).
AT_COMMIT = """
import hashlib, inspect, json
from pipelines.learned.models import MODELS
short = lambda text: hashlib.sha256(text.encode()).hexdigest()[:16]
print(json.dumps({m: [short(inspect.getsource(f)), short(repr(f()))] for m, f in MODELS.items()}))
"""


def hashes_at(commit: str, cache: dict) -> dict:
    if commit not in cache:
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "tree"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit], check=True,
                           capture_output=True)
            try:
                out = subprocess.run([sys.executable, "-c", AT_COMMIT], cwd=tree, check=True, capture_output=True,
                                     text=True, env={"PYTHONPATH": str(tree), "PATH": ""})
                cache[commit] = json.loads(out.stdout)
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)
    return cache[commit]


def migrate(payload: dict, cache: dict) -> list[str]:
    """Replace each verified source hash in ``payload['presets']``; returns what changed."""
    commit = payload.get("presets_reconstructed_from") or payload.get("git_commit")
    done = []
    migrated = payload.setdefault("model_source_migrated_from", {})
    for name, record in (payload.get("presets") or {}).items():
        model, stored = record.get("model"), record.get("model_source")
        if not (commit and model and stored) or name in migrated:
            continue
        source, architecture = hashes_at(commit, cache).get(model, (None, None))
        if stored == source:
            record["model_source"], migrated[name] = architecture, stored
            done.append(f"{name} ({model})")
    if not migrated:
        del payload["model_source_migrated_from"]
    return done


def main() -> int:
    cache: dict = {}
    folders = [ROOT / "results" / "experiments", ROOT / "results" / "tuning"]
    for path in sorted(p for folder in folders for p in folder.glob("*.json")):
        payload = json.loads(path.read_text())
        done = migrate(payload, cache)
        if done:
            atomic_write_text(path, json.dumps(payload, indent=1))
        print(f"{path.relative_to(ROOT)}: " + (f"migrated {', '.join(done)}" if done else "unchanged"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
