"""Prefect artifacts for the flows' reports: Markdown summaries, tables, and images.

Numbers keep their significant digits (4 by default): a learning rate of 0.00064 stays 0.00064
and a weight decay of 4.95e-6 stays 4.95e-06 (rounding to a fixed number of decimals turned
them into 0.001 and 0). Images are PNG files saved in the run folder; they are published as a
Markdown artifact that embeds the picture and names the file. An image artifact
(``create_image_artifact``) was not used: the dashboard prints its URL as text under the
picture ("Image URL: data:image/png;base64,...", tens of kilobytes on one line running off the
page; seen in headless Chromium, Prefect 3.7.7), and a ``file://`` URL does not load from the
dashboard's http page.
Outside a flow or task run these functions are no-ops.
"""

from __future__ import annotations

import base64
import logging
import math
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

SIGNIFICANT = 4


def in_prefect_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def significant(value: float, digits: int = SIGNIFICANT) -> float | None:
    """``value`` with ``digits`` significant digits (NaN / inf -> None)."""
    if math.isnan(value) or math.isinf(value):
        return None
    return float(f"{value:.{digits}g}")


def _cell(value, digits: int):
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return significant(value, digits)
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def _table_rows(frame: pd.DataFrame, digits: int = SIGNIFICANT) -> list[dict]:
    """JSON-safe records: floats with ``digits`` significant digits, NaN as None, others as str/int/bool."""
    return [{str(k): _cell(v, digits) for k, v in record.items()} for record in frame.to_dict(orient="records")]


def publish_markdown(key: str, markdown: str, description: str | None = None) -> None:
    if not in_prefect_run():
        return
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(markdown=markdown, key=key, description=description)


def publish_table(key: str, frame: pd.DataFrame, description: str | None = None) -> None:
    if not in_prefect_run():
        return
    from prefect.artifacts import create_table_artifact

    create_table_artifact(table=_table_rows(frame), key=key, description=description)


def image_markdown(png: Path, title: str) -> str:
    """Markdown that shows ``png`` inline (embedded) and names the saved file."""
    path = Path(png).resolve()
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"## {title}\n\n![{title}](data:image/png;base64,{data})\n\nfile: `{path}`\n"


def publish_image(key: str, png: Path, description: str | None = None) -> None:
    """The PNG as a Markdown artifact (see the module docstring for why not an image artifact)."""
    if not in_prefect_run():
        return
    title = description or Path(png).stem
    publish_markdown(key, image_markdown(png, title), description=f"{title} (file: {Path(png).resolve()})")


def publish_files(key: str, title: str, files: dict[str, Path]) -> None:
    """A Markdown artifact listing output files (absolute paths)."""
    lines = [f"## {title}", ""] + [f"- **{name}**: `{Path(path).resolve()}`" for name, path in files.items()]
    publish_markdown(key, "\n".join(lines), description=title)


def frame_to_markdown(frame: pd.DataFrame, digits: int = SIGNIFICANT) -> str:
    """A small GitHub-style Markdown table (no tabulate dependency); floats keep ``digits`` significant digits."""
    rows = _table_rows(frame, digits)
    cols = [str(c) for c in frame.columns]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        out.append("| " + " | ".join("" if row[c] is None else str(row[c]) for c in cols) + " |")
    return "\n".join(out)
