"""Artifact tables keep significant digits; images become Markdown that names the file."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flows import artifacts


def test_table_rows_keep_significant_digits_of_small_numbers():
    frame = pd.DataFrame({"lr": [0.00064123], "weight_decay": [4.95e-6], "loss": [0.123456], "n": [np.int64(7)],
                          "missing": [float("nan")], "name": ["a"], "big": [123456.7]})
    (row,) = artifacts._table_rows(frame)
    assert row["lr"] == 0.0006412
    assert row["weight_decay"] == 4.95e-6
    assert row["loss"] == 0.1235
    assert row["n"] == 7 and isinstance(row["n"], int)
    assert row["missing"] is None and row["name"] == "a"
    assert row["big"] == 123500.0


def test_markdown_table_shows_small_numbers_not_zero():
    text = artifacts.frame_to_markdown(pd.DataFrame({"lr": [0.00064], "wd": [4.95e-6]}))
    assert "| 0.00064 | 4.95e-06 |" in text


def test_image_markdown_embeds_the_png_and_names_the_file(tmp_path):
    png = tmp_path / "plot.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 20)
    text = artifacts.image_markdown(png, "Scores")
    assert text.startswith("## Scores")
    assert "![Scores](data:image/png;base64,iVBORw0KGgo" in text
    assert f"file: `{png.resolve()}`" in text


def test_run_labels_name_the_input_not_its_path():
    from flows.run_names import label, partner_set, standard_tags

    assert label("/data/libs/moses_10k.smi.gz") == "moses_10k"
    assert label("runs/demo/federated/global_bundle") == "global_bundle"
    assert label(None, "default") == "default"
    assert partner_set("runs/demo/partners") == "demo/partners" and partner_set(None, 20) == "embedded-20"
    tags = standard_tags("screening", library="moses_10k", profile=None)
    assert tags[:2] == ["flow:screening", "library:moses_10k"] and tags[-1].startswith("date:20") and len(tags) == 3
