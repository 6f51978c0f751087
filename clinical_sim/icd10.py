"""ICD-10 code hierarchy: chapter, block and category of a code, and the therapeutic area it belongs to.

* **category**: the first three characters (``C79.81`` -> ``C79``).
* **chapter**: the 22 ICD-10(-CM) chapters by code range (``C00-D49`` neoplasms, ...).
* **block**: ICD-10 blocks are irregular ranges (``C00-C14``, ``C15-C26``, ...); we use the regular
  approximation "letter + tens digit" (``C79`` -> ``C7x``), which nests inside the chapter and groups
  neighbouring categories the way the official blocks mostly do. Documented in docs/CLINICAL.md.
"""

from __future__ import annotations

import re

_CODE_RE = re.compile(r"^([A-Z])(\d{2})")

#: (first, last, chapter id, title); ranges compare on "letter + two digits".
CHAPTERS: tuple[tuple[str, str, str, str], ...] = (
    ("A00", "B99", "I", "infectious and parasitic"),
    ("C00", "D49", "II", "neoplasms"),
    ("D50", "D89", "III", "blood and immune"),
    ("E00", "E90", "IV", "endocrine, nutritional, metabolic"),
    ("F00", "F99", "V", "mental and behavioural"),
    ("G00", "G99", "VI", "nervous system"),
    ("H00", "H59", "VII", "eye"),
    ("H60", "H95", "VIII", "ear"),
    ("I00", "I99", "IX", "circulatory"),
    ("J00", "J99", "X", "respiratory"),
    ("K00", "K95", "XI", "digestive"),
    ("L00", "L99", "XII", "skin"),
    ("M00", "M99", "XIII", "musculoskeletal"),
    ("N00", "N99", "XIV", "genitourinary"),
    ("O00", "O9A", "XV", "pregnancy"),
    ("P00", "P96", "XVI", "perinatal"),
    ("Q00", "Q99", "XVII", "congenital"),
    ("R00", "R99", "XVIII", "symptoms and signs"),
    ("S00", "T98", "XIX", "injury and poisoning"),
    ("U00", "U99", "XXII", "special purposes"),
    ("V00", "Y99", "XX", "external causes"),
    ("Z00", "Z99", "XXI", "health status"),
)
CHAPTER_IDS: tuple[str, ...] = tuple(c[2] for c in CHAPTERS)

#: Chapter -> therapeutic area of the published base rates (clinical_sim.prior).
CHAPTER_AREA: dict[str, str] = {
    "I": "infectious_disease", "II": "oncology", "III": "hematology", "IV": "metabolic_endocrine",
    "V": "psychiatry", "VI": "neurology", "VII": "ophthalmology", "IX": "cardiovascular",
    "X": "respiratory", "XI": "gastroenterology", "XII": "dermatology", "XIII": "autoimmune",
    "XIV": "urology",
}


def category(code: str) -> str | None:
    """Three-character category (``C79``), or None for text that is not an ICD-10 code."""
    m = _CODE_RE.match(str(code).strip().upper())
    return f"{m.group(1)}{m.group(2)}" if m else None


def block(code: str) -> str | None:
    """Block approximation: letter + tens digit (``C79.81`` -> ``C7x``)."""
    cat = category(code)
    return f"{cat[:2]}x" if cat else None


def chapter(code: str) -> str | None:
    """Roman-numeral chapter id of a code (``C79.81`` -> ``II``), or None."""
    cat = category(code)
    if cat is None:
        return None
    for first, last, chapter_id, _ in CHAPTERS:
        if first <= cat <= last:
            return chapter_id
    return None


def therapeutic_area(codes: list[str]) -> str:
    """The therapeutic area named by the most codes of a trial (ties: first seen); 'all' if none maps."""
    counts: dict[str, int] = {}
    for code in codes:
        area = CHAPTER_AREA.get(chapter(code) or "")
        if area:
            counts[area] = counts.get(area, 0) + 1
    if not counts:
        return "all"
    return max(counts, key=lambda a: counts[a])
