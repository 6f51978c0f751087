"""Per-round server checkpoints of the global arrays, written atomically, and resuming from them."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

LATEST = "latest.json"
BEST = "best.json"
BEST_ARRAYS = "best.npz"


@dataclass(slots=True)
class Checkpoint:
    round: int
    arrays: dict[str, np.ndarray]
    meta: dict


class Checkpointer:
    """``round_NNN.npz`` per round plus ``latest.json`` pointing at the newest complete one; ``best.npz`` /
    ``best.json``: the round of lowest federated validation loss (``FederatedConfig.keep_best_round``)."""

    def __init__(self, folder: Path, keep: int = 3) -> None:
        self.folder = Path(folder)
        self.keep = keep

    def save(self, server_round: int, arrays: dict[str, np.ndarray], meta: dict | None = None) -> Path:
        path = self._write(f"round_{server_round:03d}.npz", LATEST, server_round, arrays, meta or {})
        self._prune(server_round)
        log.info("checkpoint: round %d -> %s", server_round, path)
        return path

    def save_best(self, server_round: int, arrays: dict[str, np.ndarray], meta: dict) -> Path:
        """``best.npz`` + ``best.json``: the round with the lowest federated validation loss so far."""
        return self._write(BEST_ARRAYS, BEST, server_round, arrays, meta)

    def best(self) -> Checkpoint | None:
        """The checkpoint ``save_best`` kept last (None: none yet)."""
        return self._read(BEST)

    def latest(self) -> Checkpoint | None:
        return self._read(LATEST)

    def _write(self, file: str, pointer_name: str, server_round: int, arrays: dict[str, np.ndarray],
               meta: dict) -> Path:
        """``file`` (the arrays), then the ``pointer_name`` JSON naming it; each written atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = list(arrays)
        tmp = self.folder / f".{file}.tmp.npz"
        np.savez(tmp, **{f"a{i:04d}": np.asarray(arrays[k]) for i, k in enumerate(keys)})
        os.replace(tmp, self.folder / file)
        pointer = {"round": server_round, "file": file, "keys": keys, "meta": meta}
        tmp_json = self.folder / f".{pointer_name}.tmp"
        tmp_json.write_text(json.dumps(pointer, indent=2))
        os.replace(tmp_json, self.folder / pointer_name)
        return self.folder / file

    def _read(self, pointer_name: str) -> Checkpoint | None:
        pointer_path = self.folder / pointer_name
        if not pointer_path.exists():
            return None
        pointer = json.loads(pointer_path.read_text())
        with np.load(self.folder / pointer["file"], allow_pickle=False) as z:
            arrays = {k: z[f"a{i:04d}"] for i, k in enumerate(pointer["keys"])}
        return Checkpoint(int(pointer["round"]), arrays, pointer.get("meta", {}))

    def _prune(self, newest: int) -> None:
        for path in self.folder.glob("round_*.npz"):
            number = int(path.stem.split("_")[1])
            if number <= newest - self.keep:
                path.unlink(missing_ok=True)
