"""Prefect artifacts for the flows' reports: Markdown summaries, tables, and images.

Images are PNG files saved in the run folder and published with ``create_image_artifact`` as
``data:`` URLs (the dashboard shows them without a file server); a Markdown artifact lists the
saved files too. Outside a flow or task run these functions are no-ops.
"""

from __future__ import annotations

import base64
import logging
import math
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


def in_prefect_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def _table_rows(frame: pd.DataFrame, digits: int = 3) -> list[dict]:
    """JSON-safe records: rounded floats, NaN as None, everything else as str/int/bool."""
    rows = []
    for record in frame.to_dict(orient="records"):
        clean = {}
        for key, value in record.items():
            if isinstance(value, float):
                clean[str(key)] = None if math.isnan(value) else round(value, digits)
            elif hasattr(value, "item"):
                item = value.item()
                clean[str(key)] = round(item, digits) if isinstance(item, float) else item
            else:
                clean[str(key)] = value if isinstance(value, (int, bool, str)) or value is None else str(value)
        rows.append(clean)
    return rows


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


def publish_image(key: str, png: Path, description: str | None = None) -> None:
    if not in_prefect_run():
        return
    from prefect.artifacts import create_image_artifact

    data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
    create_image_artifact(image_url=f"data:image/png;base64,{data}", key=key,
                          description=description or f"saved at {png}")


def publish_files(key: str, title: str, files: dict[str, Path]) -> None:
    """A Markdown artifact listing output files (absolute paths)."""
    lines = [f"## {title}", ""] + [f"- **{name}**: `{Path(path).resolve()}`" for name, path in files.items()]
    publish_markdown(key, "\n".join(lines), description=title)


def frame_to_markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A small GitHub-style Markdown table (no tabulate dependency)."""
    rows = _table_rows(frame, digits)
    cols = [str(c) for c in frame.columns]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        out.append("| " + " | ".join("" if row[c] is None else str(row[c]) for c in cols) + " |")
    return "\n".join(out)
