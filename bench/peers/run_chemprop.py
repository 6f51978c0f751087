"""Fill the Chemprop peer cache (bench/results/peer_cache/) for the Biogen endpoints, in the background.

Usage: .venv/bin/python bench/peers/run_chemprop.py [--epochs 50] [--quick] [ENDPOINT ...]
The quality benchmark reads the cache; it runs Chemprop itself only for endpoints not cached yet.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import admet_common as ac  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("endpoints", nargs="*", default=list(ac.BIOGEN_ENDPOINTS))
    parser.add_argument("--epochs", type=int, default=ac.CHEMPROP_EPOCHS)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for ep in args.endpoints:
        split = ac.load_biogen(ep, quick=args.quick)
        res = ac.chemprop_run(split, epochs=args.epochs)
        m = ac.regression_metrics(split.test["activity"].to_numpy(), res["pred"])
        logging.info("chemprop %s: pearson %.3f mae %.3f (train %.0fs)", ep, m["pearson"], m["mae"],
                     res["train_seconds"])


if __name__ == "__main__":
    main()
