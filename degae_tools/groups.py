"""The deterministic rule that turns a GEO series' sample characteristics into groups and contrasts.

1. Keys come from ``source_name_ch1`` (key ``source_name``) and ``characteristics_ch1``
   (``key: value``); a sample with a key twice gets its values joined with ``"; "``. Keys and
   values that differ only in case or spacing are the same.
2. Keys about the library or the reads are dropped: :data:`TECHNICAL` found in the key or in
   any of its values (library, read(s), lane, run, batch, replicate, rep).
3. Keys with a single distinct value are dropped; samples lacking the chosen key are excluded.
4. The key with the fewest distinct values defines the groups (ties: first in file order).
5. ``mode="study"`` (the reference study): samples with the first value (in sample order) are
   group A, all others group B, one contrast. ``mode="degae"``: every value is a group; the
   reference A is the value with the most :data:`REFERENCE` words (control, wild type, vehicle,
   ...; ties and no match: first in sample order); one contrast per other group against A.
6. A group with fewer than ``min_replicates`` samples yields no contrast; the reason goes to
   ``on_reject`` so that the caller can record it.

Words match between non-letters (``WT_1`` and ``rep2`` match; ``abnormal`` is not ``normal``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

import polars as pl

from degae_tools.sources import OnReject, Rejection

Mode = Literal["degae", "study"]
TECHNICAL = re.compile(
    r"(?<![a-z])(librar(?:y|ies)|reads?|lanes?|runs?|batch(?:es)?|replicates?|rep)(?![a-z])",
    re.IGNORECASE,
)
REFERENCE = re.compile(
    r"(?<![a-z])(controls?|ctrls?|wild[ -]?type|wt|vehicle|untreated|mock|normal|baseline|dmso"
    r"|pbs|sham|naive)(?![a-z])",
    re.IGNORECASE,
)
SLUG_MAX = 60


@dataclass(frozen=True)
class Grouping:
    """Groups of one series: ``groups`` maps each label to its GSMs, the reference group first."""

    gse: str
    mode: Mode
    key: str
    reference: str
    groups: dict[str, list[str]]
    slugs: dict[str, str]
    excluded: list[str]


@dataclass(frozen=True)
class Contrast:
    """Group B against reference group A: logFC = mean(B) - mean(A)."""

    gse: str
    contrast_id: str
    group_a: str
    group_b: str
    samples_a: list[str]
    samples_b: list[str]


def infer_groups(
    characteristics: pl.DataFrame,
    mode: Mode = "degae",
    gse: str | None = None,
    on_reject: OnReject | None = None,
) -> Grouping | None:
    """Apply the module's rule to ``gsm, row, key, value`` rows of one series.

    ``gse`` defaults to the frame's ``gse`` column. Returns None (reason to ``on_reject``) when no
    key separates the samples.
    """
    if mode not in ("degae", "study"):
        raise ValueError(f"mode must be 'degae' or 'study', got {mode!r}")
    gse = _series(characteristics, gse)
    samples = characteristics["gsm"].unique(maintain_order=True).to_list()
    keys = _values_by_key(characteristics)
    candidates = {
        key: values
        for key, values in keys.items()
        if not TECHNICAL.search(key)
        and not any(TECHNICAL.search(value) for value in values.values())
        and len(set(values.values())) > 1
    }
    if not candidates:
        reason = "no characteristic separates the samples (after dropping library/read keys)"
        _reject(on_reject, gse, reason, None)
        return None
    # dicts keep file order, and min() returns the first of equals: the tie rule.
    key = min(candidates, key=lambda k: len(set(candidates[k].values())))
    values = candidates[key]
    ordered = [gsm for gsm in samples if gsm in values]
    by_value: dict[str, list[str]] = {}
    for gsm in ordered:
        by_value.setdefault(values[gsm], []).append(gsm)
    if mode == "study":
        first = values[ordered[0]]
        others = [label for label in by_value if label != first]
        other_label = others[0] if len(others) == 1 else f"not {first}"
        groups = {first: by_value[first], other_label: [g for g in ordered if values[g] != first]}
        reference = first
    else:
        reference = max(by_value, key=lambda label: len(REFERENCE.findall(label)))
        groups = {reference: by_value[reference]}
        groups.update((label, gsms) for label, gsms in by_value.items() if label != reference)
    return Grouping(
        gse=gse,
        mode=mode,
        key=key,
        reference=reference,
        groups=groups,
        slugs=_unique_slugs(list(groups)),
        excluded=[gsm for gsm in samples if gsm not in values],
    )


def contrasts(
    grouping: Grouping, min_replicates: int = 2, on_reject: OnReject | None = None
) -> list[Contrast]:
    """One contrast per non-reference group, skipping groups below ``min_replicates`` samples."""
    reference = grouping.groups[grouping.reference]
    if len(reference) < min_replicates:
        reason = (
            f"reference group {grouping.reference!r} has {len(reference)} samples; "
            f"needs {min_replicates}"
        )
        _reject(on_reject, grouping.gse, reason, grouping.reference)
        return []
    result = []
    for label, samples in grouping.groups.items():
        if label == grouping.reference:
            continue
        if len(samples) < min_replicates:
            reason = f"group {label!r} has {len(samples)} samples; needs {min_replicates}"
            _reject(on_reject, grouping.gse, reason, label)
            continue
        a, b = grouping.slugs[grouping.reference], grouping.slugs[label]
        result.append(
            Contrast(
                gse=grouping.gse,
                contrast_id=f"{grouping.gse}:{b}-vs-{a}",
                group_a=grouping.reference,
                group_b=label,
                samples_a=list(reference),
                samples_b=list(samples),
            )
        )
    return result


def slugify(label: str) -> str:
    """Lower-case ASCII letters and digits joined by ``-`` (``"WT, 8 wk"`` -> ``"wt-8-wk"``)."""
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_label.lower()).strip("-")[:SLUG_MAX].strip("-")
    return slug or "group"


def _unique_slugs(labels: list[str]) -> dict[str, str]:
    slugs: dict[str, str] = {}
    taken: set[str] = set()
    for label in labels:
        base = slug = slugify(label)
        suffix = 2
        while slug in taken:
            slug, suffix = f"{base}-{suffix}", suffix + 1
        taken.add(slug)
        slugs[label] = slug
    return slugs


def _series(characteristics: pl.DataFrame, gse: str | None) -> str:
    if gse is not None:
        return gse
    if "gse" in characteristics.columns and characteristics.height:
        return characteristics["gse"][0]
    raise ValueError("pass gse=... or a characteristics frame with a 'gse' column")


def _values_by_key(characteristics: pl.DataFrame) -> dict[str, dict[str, str]]:
    """``{key: {gsm: value}}`` with keys in file order (by row, then first appearance).

    Values differing only in case or spacing are one value, spelled as first seen.
    """
    keys: dict[str, dict[str, str]] = {}
    rows = characteristics.select("gsm", "row", "key", "value").drop_nulls()
    for gsm, _, key, value in rows.sort("row", maintain_order=True).iter_rows():
        values = keys.setdefault(" ".join(key.split()).lower(), {})
        values[gsm] = f"{values[gsm]}; {value}" if gsm in values else value
    for values in keys.values():
        spelling: dict[str, str] = {}
        for gsm, value in values.items():
            values[gsm] = spelling.setdefault(" ".join(value.split()).casefold(), value)
    return keys


def _reject(on_reject: OnReject | None, gse: str, reason: str, record: str | None) -> None:
    if on_reject is not None:
        on_reject(Rejection(source=gse, line=None, reason=f"{gse}: {reason}", record=record))
