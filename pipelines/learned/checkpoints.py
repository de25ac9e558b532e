"""Checkpoint I/O of the learned side: one file per (pipeline, preset, device, seed), written atomically after
each complete epoch, read back by ``--resume`` only when it was made with the same configuration and data (its
recorded ``config_hash`` and ``data_fingerprint``). Read with ``weights_only``: a checkpoint folder (a shared
disk) is read, never executed. Any fault is a one-line ``CheckpointError``."""
from __future__ import annotations

import os
import pickle
import re
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from .. import distributed as dist


class CheckpointError(Exception):
    """A checkpoint cannot be used (corrupt, or made with another configuration); one-line message."""


class Checkpoints:
    """One file per (pipeline, preset, device, seed), replaced atomically after each epoch."""

    def __init__(self, path: Path, identity: dict):
        self.path, self.identity = Path(path), dict(identity)

    def save(self, model, opt, state, sched=None, average=None) -> None:
        """One file: the network, optimiser, schedule, training state, RNG, the weight average where the recipe
        keeps one, and the identity it was made with."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"model": unwrap(model).state_dict(), "optimizer": opt.state_dict(), "state": asdict(state),
                   "average": average.state_dict() if average is not None else None,
                   "scheduler": sched.state_dict() if sched is not None else None, "world_size": dist.world_size(),
                   **self.identity, "rng_cpu": torch.get_rng_state(),
                   "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
        tmp = self.path.with_suffix(".pt.tmp")
        torch.save(payload, tmp)
        os.replace(tmp, self.path)

    def load(self, model, opt, sched=None, average=None) -> dict | None:
        """Restore model, optimizer, schedule and RNG from the file; return the saved training state (a dict), or None."""
        if not self.path.exists():
            return None
        try:
            # tensors and plain values only: a checkpoint folder (a shared disk) is read, never executed
            payload = torch.load(self.path, map_location="cpu", weights_only=True)
            changed = [k for k, v in self.identity.items() if payload.get(k) != v]
            if changed:
                what = " and ".join("configuration" if k == "config_hash" else "data" for k in changed)
                raise CheckpointError(f"checkpoint {self.path} was made with other {what} (its {', '.join(changed)} "
                                      "differ); delete it or run without --resume to start afresh")
            if payload.get("world_size", 1) != dist.world_size():
                raise CheckpointError(f"checkpoint {self.path} was made by {payload.get('world_size', 1)} "
                                      f"process(es), this run has {dist.world_size()}; resume with as many, or "
                                      "run without --resume to start afresh")
            unwrap(model).load_state_dict(payload["model"])
            opt.load_state_dict(payload["optimizer"])
            if sched is not None:
                sched.load_state_dict(payload["scheduler"])
            if average is not None:
                average.load_state_dict(payload["average"])
        except CheckpointError:
            raise
        except pickle.UnpicklingError as exc:
            asked = re.search(r"GLOBAL (\S+)", str(exc))
            if asked is None:  # not even a pickle
                raise CheckpointError(f"checkpoint {self.path} is corrupt (UnpicklingError); delete it or run "
                                      "without --resume to start afresh") from None
            raise CheckpointError(f"checkpoint {self.path} refused: it asks to load {asked.group(1)}, and a "
                                  "checkpoint holds only tensors and plain values (checkpoints are read, never "
                                  "executed); delete it or run without --resume") from None
        except Exception as exc:  # any unpickling/shape fault means the file is unusable
            raise CheckpointError(f"checkpoint {self.path} is corrupt ({type(exc).__name__}); "
                                  "delete it or run without --resume to start afresh") from None
        torch.set_rng_state(payload["rng_cpu"])
        if payload["rng_cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["rng_cuda"])
        return payload["state"]


def unwrap(model: nn.Module) -> nn.Module:
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)
