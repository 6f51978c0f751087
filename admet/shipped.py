"""The shipped base model: where it lives, how commands find it, and how a trained bundle becomes it.

The project ships one pretrained bundle of the default model family over the whole embedded catalog
in ``models/fedadmet-base-<version>/`` (committed to git). ``fedadmet admet predict`` and
``fedadmet screen`` use it when ``-m/--model`` is not given; :func:`resolve_model_dir` is the one
place that decides, and :func:`check_shipped` checks the folder without importing torch (manifest,
``bundle.json``, every file's sha256), so a missing or damaged model fails in well under a second
with one ``error:`` line. ``FEDADMET_BASE_MODEL`` points the resolver at another bundle folder (read
when a command runs, never at import).

:func:`pack_bundle` turns a bundle written by ``fedadmet admet train`` into the shipped folder:

* LightGBM boosters are stored gzipped (``task_NNN.txt.gz``, the same text; lossless, checked by
  predicting the same molecules with the source and the packed bundle: the largest difference is
  recorded in ``SHIPPED.json`` and must be 0);
* ``split.npz`` (``admet.bundle.SplitManifest``: the fold of every training molecule, by InChIKey;
  written by ``train_bundle`` itself since split version 2, or stored from ``--split-manifest`` for an
  older bundle after checking its data hash and fold sizes) says which molecules no member trained
  on, so a later comparison (the demo's choice between this model and the federated one) can score
  both on rows neither has seen;
* ``SHIPPED.json`` holds the version, training-data hash, code commit, library versions, the
  command that reproduces it and the size; ``MODEL_CARD.md`` is the model card with that header.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from admet.checksums import folder_checksums, sha256_file
from pipelines.errors import InputError

log = logging.getLogger(__name__)

NAME = "fedadmet-base"
VERSION = "1.1"
MANIFEST = "SHIPPED.json"
CARD = "MODEL_CARD.md"
SPLIT_FILE = "split.npz"
SPLIT_FOLDS = ("train", "valid", "test")  # the codes of admet.bundle.SplitManifest
ENV_OVERRIDE = "FEDADMET_BASE_MODEL"
#: The command that reproduces the shipped bundle (``make ship-model`` runs exactly this).
TRAIN_COMMAND = ("fedadmet admet train --out .fedadmet-cache/ship/train --model blend --ensemble 1 && "
                 f"fedadmet admet pack .fedadmet-cache/ship/train --out models/{NAME}-{VERSION}")


def models_dir() -> Path:
    """The repository's ``models/`` folder (next to ``datasets/``)."""
    return Path(__file__).resolve().parent.parent / "models"


def shipped_model_dir() -> Path:
    """Where the shipped base model is: ``$FEDADMET_BASE_MODEL`` if set, else ``models/fedadmet-base-<version>``."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        return Path(override)
    return models_dir() / f"{NAME}-{VERSION}"


def check_shipped(path: Path | None = None, verify_checksums: bool = True) -> dict:
    """The shipped folder's manifest, after checking it is complete and intact (no torch import).

    Raises :class:`InputError` naming the folder and what is wrong: missing, no manifest, unreadable
    manifest or ``bundle.json``, a missing file, or a checksum mismatch (a truncated or edited file).
    """
    path = Path(path) if path is not None else shipped_model_dir()
    fix = (f"restore it from git (`git checkout {path.name}` in models/) or rebuild it with "
           "`make ship-model`, or pass -m/--model BUNDLE")
    if not path.is_dir():
        raise InputError(f"no --model given and the shipped base model is missing: {path} ({fix})")
    docs = {}
    for name in (MANIFEST, "bundle.json"):
        file = path / name
        if not file.is_file():
            raise InputError(f"shipped base model {path}: {name} is missing ({fix})")
        try:
            docs[name] = json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"shipped base model {path}: {name} is corrupt ({exc}; {fix})") from None
        if not isinstance(docs[name], dict):
            raise InputError(f"shipped base model {path}: {name} is not a JSON object ({fix})")
    files = docs["bundle.json"].get("files", {})
    if not files or not isinstance(docs["bundle.json"].get("tasks"), list):
        raise InputError(f"shipped base model {path}: bundle.json lists no files or tasks ({fix})")
    for rel, digest in files.items():
        file = path / rel
        if not file.is_file():
            raise InputError(f"shipped base model {path}: file {rel} is missing ({fix})")
        if verify_checksums and sha256_file(file) != digest:
            raise InputError(f"shipped base model {path}: file {rel} is corrupt or truncated "
                             f"(checksum mismatch; {fix})")
    return docs[MANIFEST]


def resolve_model_dir(model: Path | None) -> tuple[Path, bool]:
    """``(bundle folder, is_shipped)``: the given ``--model`` as is, else the checked shipped model."""
    if model is not None:
        return Path(model), False
    path = shipped_model_dir()
    check_shipped(path)
    return path, True


def read_heldout(path: Path | None = None, fold: str = "test") -> set[str] | None:
    """Molecule keys (InChIKeys) of one fold of the model's training run, from its ``split.npz``
    (None when the bundle has none)."""
    path = Path(path) if path is not None else shipped_model_dir()
    file = path / SPLIT_FILE
    if not file.is_file():
        return None
    keys, folds, _ = _read_split_file(file)
    return {k for k, f in zip(keys, folds, strict=True) if f == fold}


# ----------------------------------------------------------------------------- packing
@dataclass(slots=True)
class PackResult:
    folder: Path
    manifest: dict


def _code_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+uncommitted-changes" if dirty else "")


def _gzip_boosters(folder: Path) -> int:
    """Rewrite every LightGBM member's ``task_NNN.txt`` as ``task_NNN.txt.gz``; returns bytes saved."""
    saved = 0
    for meta_path in sorted(folder.rglob("member.json")):
        meta = json.loads(meta_path.read_text())
        if meta.get("family") != "lgbm":
            continue
        names = []
        for name in meta["files"]:
            if name is None or name.endswith(".gz"):
                names.append(name)
                continue
            src = meta_path.parent / name
            dst = src.with_name(name + ".gz")
            # no name or time in the gzip header: packing the same booster twice gives the same bytes
            # (git stores a re-packed release's unchanged boosters once)
            with open(src, "rb") as fin, open(dst, "wb") as raw, \
                    gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as fout:
                shutil.copyfileobj(fin, fout)
            saved += src.stat().st_size - dst.stat().st_size
            src.unlink()
            names.append(dst.name)
        meta["files"] = names
        meta_path.write_text(json.dumps(meta, indent=1))
    return saved


def _rewrite_checksums(folder: Path) -> None:
    meta_path = folder / "bundle.json"
    meta = json.loads(meta_path.read_text())
    meta["files"] = folder_checksums(folder)
    meta_path.write_text(json.dumps(meta, indent=1))


def _read_split_file(path: Path) -> tuple[list[str], list[str], str | None]:
    """(keys, folds, data hash or None) of a split manifest (``split.npz``, ``admet.bundle.SplitManifest``
    format; ``admet.recalibrate.write_manifest`` adds the data hash), read with numpy only."""
    import numpy as np

    try:
        with np.load(path) as z:
            keys = [str(k) for k in z["keys"]]
            folds = [SPLIT_FOLDS[int(c)] for c in z["fold"]]
            digest = str(z["data_hash"]) if "data_hash" in z.files else None
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not a manifest
        raise InputError(f"{path}: not a split manifest ({type(exc).__name__}: {exc})") from None
    return keys, folds, digest


def _check_split_manifest(bundle_dir: Path, path: Path) -> dict[str, int]:
    """Fold sizes of a split manifest made for ``bundle_dir``'s training run (data hash and sizes checked)."""
    meta = json.loads((bundle_dir / "bundle.json").read_text())
    keys, folds, digest = _read_split_file(path)
    if digest is not None and digest != meta.get("data_hash"):
        raise InputError(f"--split-manifest {path} was made for other training data (data hash {digest[:12]}... "
                         f"vs the bundle's {str(meta.get('data_hash'))[:12]}...)")
    counts = {k: folds.count(k) for k in SPLIT_FOLDS}
    expected = json.loads((bundle_dir / "metrics.json").read_text()).get("n_molecules", {})
    if counts != {k: int(expected.get(k, -1)) for k in SPLIT_FOLDS}:
        raise InputError(f"--split-manifest {path} has folds {counts}; the bundle was trained and scored on {expected}")
    return counts


def pack_bundle(src: Path, dst: Path, split_manifest: Path | None = None,
                code_commit: str | None = None, check_smiles: Sequence[str] | None = None) -> PackResult:
    """Copy the trained bundle ``src`` into the shipped layout at ``dst`` (see the module docstring).

    ``split_manifest``: the training run's folds for a bundle saved without ``split.npz`` (bundles
    trained before split version 2); checked against the bundle's data hash and fold sizes and stored
    as its ``split.npz``. ``check_smiles``: molecules predicted by both bundles to prove the packing
    changed no prediction (default: 64 approved drugs).
    """
    import numpy as np

    from admet.bundle import load_bundle
    from admet.model_card import render_model_card

    src, dst = Path(src), Path(dst)
    source = load_bundle(src)
    if dst.exists():
        raise InputError(f"{dst} exists; remove it first (the shipped folder is written whole)")
    tmp = dst.with_name(dst.name + ".packing")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    saved = _gzip_boosters(tmp)
    for stale in ("model_card.md",):
        (tmp / stale).unlink(missing_ok=True)
    if split_manifest is not None:
        _check_split_manifest(src, Path(split_manifest))
        keys, folds, _ = _read_split_file(Path(split_manifest))
        np.savez_compressed(tmp / SPLIT_FILE, keys=np.array(keys, dtype=str),
                            fold=np.array([SPLIT_FOLDS.index(f) for f in folds], dtype=np.uint8))
    split_counts = None
    if (tmp / SPLIT_FILE).is_file():
        _, folds, _ = _read_split_file(tmp / SPLIT_FILE)
        split_counts = {k: folds.count(k) for k in SPLIT_FOLDS}
    _rewrite_checksums(tmp)
    packed = load_bundle(tmp)
    if check_smiles is None:
        from admet.approved import approved_drug_smiles

        check_smiles = approved_drug_smiles()[:64]
    a, b = source.predict_smiles(list(check_smiles)), packed.predict_smiles(list(check_smiles))
    va, vb = (f[packed.task_names].to_numpy(dtype=float) for f in (a, b))
    if not np.array_equal(np.isnan(va), np.isnan(vb)):
        raise RuntimeError("packing changed which predictions are missing; refusing to ship it")
    diff = float(np.nanmax(np.abs(va - vb), initial=0.0))
    if diff != 0.0:
        raise RuntimeError(f"packing changed predictions (max |diff| {diff}); refusing to ship it")
    meta = json.loads((tmp / "bundle.json").read_text())
    manifest = {
        "name": NAME, "version": VERSION, "model": f"{packed.config.model} x{len(packed.ensemble.members)}",
        "endpoints": len(packed.tasks), "featurizer": packed.featurizer_spec,
        "data": "embedded catalog (datasets/catalog.csv)", "data_hash": packed.data_hash,
        "code_commit": code_commit or _code_commit(), "versions": packed.versions,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reproduce": "make ship-model  (" + TRAIN_COMMAND + ")",
        "pack": {"lgbm_gzip_bytes_saved": saved, "check_molecules": len(check_smiles),
                 "max_abs_prediction_change": diff},
        "heldout": None if split_counts is None else {"file": SPLIT_FILE, "folds": split_counts},
        "split": meta.get("info", {}).get("split_method", ""),
    }
    card = render_model_card(packed).split("\n", 1)[1]  # drop the generic title

    def write_docs(size: int) -> None:
        manifest["size_bytes"] = size
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        header = [f"# {NAME} {VERSION}: the shipped base model", "",
                  f"- Size on disk: {size / 1e6:.1f} MB (LightGBM boosters gzipped, lossless: the largest "
                  f"prediction change on {len(check_smiles)} check molecules is {diff:g})",
                  f"- Training data hash: `{packed.data_hash}`; code commit `{manifest['code_commit']}`",
                  f"- Reproduce: `make ship-model` (runs `{TRAIN_COMMAND}`)",
                  "- Used by `fedadmet admet predict` and `fedadmet screen` when `-m/--model` is not given", ""]
        (tmp / CARD).write_text("\n".join(header) + card)
        _rewrite_checksums(tmp)

    write_docs(0)
    write_docs(sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file()))  # the size with the docs in it
    tmp.rename(dst)
    log.info("packed %s -> %s (%.1f MB)", src, dst, manifest["size_bytes"] / 1e6)
    return PackResult(dst, manifest)
