"""``fedadmet data catalog``: the embedded endpoints as a rich table or JSON."""

from __future__ import annotations

import json
import re

import pandas as pd
import typer
from rich import box
from rich.console import Console
from rich.table import Table

#: Columns of the printed table (``--json`` carries every catalog column, in full).
TABLE_COLUMNS = ("endpoint", "task", "unit", "count", "metric", "source", "licence")


def short_source(source: str) -> str:
    """``Wang N.-N. et al., J. Chem. ... (2016)`` -> ``Wang 2016`` (the first paper of a ``;`` list)."""
    first = source.split(";")[0].strip()
    if ": " in first[:24]:  # "eDrug3D: Pihan E. et al. ..." -> the author
        first = first.split(": ", 1)[1]
    years = re.findall(r"\(((?:19|20)\d{2})\)", first) or re.findall(r"\b(?:19|20)\d{2}\b", first)
    return f"{first.split()[0].rstrip(',')} {years[0]}" if years else first


def short_licence(licence: str) -> str:
    """``CC BY-SA 3.0 (AstraZeneca ...); CC BY 4.0 (TDC)`` -> ``CC BY-SA 3.0``."""
    return licence.split(";")[0].split(" (")[0].strip()


def catalog_records(catalog: pd.DataFrame) -> list[dict]:
    """One JSON-ready dict per endpoint (all catalog columns; ``aliases`` as a list)."""
    records = []
    for row in catalog.to_dict(orient="records"):
        row["count"] = int(row["count"])
        row["aliases"] = [a for a in str(row.get("aliases", "")).split(";") if a]
        records.append(row)
    return records


def print_catalog(catalog: pd.DataFrame, console: Console, as_json: bool = False) -> None:
    """Print the catalog: a table (aliases under the endpoint name) or ``--json`` to stdout."""
    if as_json:
        typer.echo(json.dumps({"endpoints": catalog_records(catalog)}, indent=1))  # plain: no wrapping
        return
    if not console.is_terminal:  # piped or captured: no terminal width to fit, do not cut names at 80 columns
        console = Console(width=160)
    table = Table(title="Embedded ADMET endpoints (full source and licence: --json, datasets/*/DATACARD.md)",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for column in TABLE_COLUMNS:
        table.add_column(column, justify="right" if column == "count" else "left",
                         no_wrap=column in ("endpoint", "count", "task"))
    for row in catalog_records(catalog):
        name = row["endpoint"] + "".join(f"\n [dim]alias {a}[/]" for a in row["aliases"])
        unit = row["unit"] + (f" [dim]{row['transform']}[/]" if row["transform"] != "none" else "")
        table.add_row(name, "reg" if row["task_type"] == "regression" else "cls", unit, f"{row['count']:,}",
                      row["metric"] or "-", short_source(row["source"]), short_licence(row["licence"]))
    console.print(table)
    datasets = ", ".join(f"{d} {n}" for d, n in catalog.groupby("dataset", sort=False).size().items())
    console.print(f"{len(catalog)} endpoints ({datasets}), {int(catalog['count'].sum()):,} measurements")
