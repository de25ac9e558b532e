"""Trust (issue 24): no code runs from a data folder or a checkpoint, and no verdict rests on the wrong evidence.
Each test here failed on the code before the fix it names."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from conftest import run_cli


class Hostile:
    """What a hostile pickle holds: unpickling it runs a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# --- 1. a CIFAR-format folder is read, never executed ------------------------------------------------------------

def hostile_cifar(folder, marker) -> None:
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (folder / name).write_bytes(pickle.dumps({"data": Hostile(marker), "labels": [0]}))


@pytest.mark.parametrize("how", ["data-dir", "dataset"])
def test_a_hostile_cifar_folder_creates_nothing_and_ends_in_one_line(tmp_path, how):
    marker = tmp_path / "pwned"
    hostile_cifar(tmp_path / "cifar-10-batches-py", marker)
    args = ["--data-dir", str(tmp_path / "cifar-10-batches-py")] + (["--dataset", "cifar10"] if how == "dataset" else [])
    proc = run_cli("--only", "pixels_svm", "--preset", "smoke", *args, "--results-dir", str(tmp_path / "res"),
                   timeout=120)
    assert proc.returncode == 2 and not marker.exists(), (proc.returncode, proc.stderr[-300:])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "refused" in lines[0] and "posix.system" in lines[0], lines
    assert not (tmp_path / "res" / "summary.csv").exists()


def test_the_cifar_reader_still_reads_numpy_arrays_of_every_pickle_protocol(tmp_path):
    from pipelines.sources import _unpickle
    batch = {"data": np.arange(12, dtype=np.uint8).reshape(2, 6), "labels": [np.int64(3), 4], "name": b"x"}
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"p{protocol}"
        path.write_bytes(pickle.dumps(batch, protocol=protocol))
        out = _unpickle(path)
        np.testing.assert_array_equal(out["data"], batch["data"])
        assert out["labels"] == [3, 4] and out["name"] == b"x"


# --- 2. a checkpoint is read, never executed ----------------------------------------------------------------------

def test_a_hostile_checkpoint_is_refused_and_runs_nothing(tmp_path):
    import torch
    from test_learned import _train
    from pipelines.learned.checkpoints import CheckpointError
    _train(tmp_path)
    ckpt = next((tmp_path / "checkpoints" / "lenet").glob("*.pt"))
    marker = tmp_path / "pwned"
    torch.save({"config": Hostile(marker)}, ckpt)
    with pytest.raises(CheckpointError, match="refused: it asks to load posix.system") as err:
        _train(tmp_path, resume=True)
    assert not marker.exists() and "\n" not in str(err.value)


# --- 7. the GPU check fails when a step fails -----------------------------------------------------------------------

def test_the_gpu_check_fails_and_names_the_step_on_a_machine_without_cuda(tmp_path):
    import subprocess
    import sys
    import torch
    from conftest import ROOT
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the check may pass here")
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable})
    assert proc.returncode != 0, proc.stdout[-500:]
    assert "FAILED: CUDA available to torch" in proc.stdout and "gpu_check failed:" in proc.stdout
    assert "gpu_check failed:" in (tmp_path / "out" / "gpu_check.log").read_text()
