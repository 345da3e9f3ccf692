"""Reader for the Gene Ontology in OBO 1.2 format (``go-basic.obo[.gz]``).

Header tag-value lines, then ``[Term]`` (and ``[Typedef]``/``[Instance]``) stanzas of
``tag: value`` lines; trailing ``! comments`` and ``{qualifiers}`` are not part of a value
(OBO 1.2 guide, geneontology.org/docs/download-ontology). Edges come from ``is_a`` and from
the ``relationship`` types that go-basic keeps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from degae_tools.errors import OBOError
from degae_tools.sources import iter_lines

RELATIONS = ("part_of", "regulates", "negatively_regulates", "positively_regulates")
NAMESPACES = ("biological_process", "molecular_function", "cellular_component")
GO_ID = re.compile(r"GO:\d{7}")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
TERM_SCHEMA = {
    "go_id": pl.String,
    "name": pl.String,
    "namespace": pl.String,
    "is_obsolete": pl.Boolean,
    "definition": pl.String,
}
EDGE_SCHEMA = {"child": pl.String, "parent": pl.String, "relation": pl.String}


@dataclass(frozen=True)
class Ontology:
    """GO terms (obsolete ones flagged), their edges, alternative IDs and the release."""

    terms: pl.DataFrame
    edges: pl.DataFrame
    alt_ids: dict[str, str]
    data_version: str | None


@dataclass
class _Stanza:
    line: int
    go_id: str | None = None
    name: str | None = None
    namespace: str | None = None
    definition: str | None = None
    is_obsolete: bool = False


def read_obo(path: str | Path) -> Ontology:
    """Parse an OBO file into terms, ``is_a``/``relationship`` edges and ``alt_id`` mappings."""
    terms: list[tuple] = []
    edges: list[tuple[str, str, str]] = []
    alt_ids: dict[str, str] = {}
    header: dict[str, str] = {}
    stanza: _Stanza | None = None
    in_term = in_header = False
    seen_line = False
    for number, line in iter_lines(path, OBOError):
        text = line.strip()
        if not text or text.startswith("!"):
            continue
        if not seen_line:
            seen_line = True
            in_header = True
            if not text.startswith("format-version:"):
                raise OBOError(path, number, f"expected 'format-version: 1.2', got {text[:60]!r}")
        if text.startswith("["):
            if not text.endswith("]"):
                raise OBOError(path, number, f"expected a stanza header like [Term], got {text!r}")
            if stanza is not None:
                terms.append(_finish(path, stanza))
            in_header = False
            in_term = text == "[Term]"
            stanza = _Stanza(line=number) if in_term else None
            continue
        tag, colon, value = text.partition(":")
        if not colon:
            raise OBOError(path, number, f"expected 'tag: value', got {text[:60]!r}")
        value = value.strip()
        if in_header:
            header.setdefault(tag, value)
            continue
        if stanza is None:
            continue
        _read_tag(path, number, stanza, tag, value, edges, alt_ids)
    if stanza is not None:
        terms.append(_finish(path, stanza))
    if not seen_line:
        raise OBOError(path, None, "empty file; expected an OBO header and [Term] stanzas")
    if not terms:
        raise OBOError(path, None, "expected at least one [Term] stanza, got none")
    return Ontology(
        terms=pl.DataFrame(terms, schema=TERM_SCHEMA, orient="row"),
        edges=pl.DataFrame(edges, schema=EDGE_SCHEMA, orient="row"),
        alt_ids=alt_ids,
        data_version=header.get("data-version"),
    )


def _read_tag(
    path: str | Path,
    number: int,
    stanza: _Stanza,
    tag: str,
    value: str,
    edges: list[tuple[str, str, str]],
    alt_ids: dict[str, str],
) -> None:
    if tag == "id":
        if stanza.go_id is not None or not GO_ID.fullmatch(value):
            raise OBOError(path, number, f"expected one 'id: GO:nnnnnnn' per term, got {value!r}")
        stanza.go_id = value
        return
    if stanza.go_id is None:
        raise OBOError(path, number, f"expected 'id:' first in the [Term] stanza, got {tag!r}")
    if tag == "name":
        stanza.name = value
    elif tag == "namespace":
        stanza.namespace = value
    elif tag == "def":
        quoted = QUOTED.match(value)
        stanza.definition = _unescape(quoted.group(1)) if quoted else value
    elif tag == "is_obsolete":
        stanza.is_obsolete = value == "true"
    elif tag == "alt_id":
        alt_ids[_target(path, number, value)] = stanza.go_id
    elif tag == "is_a":
        edges.append((stanza.go_id, _target(path, number, value), "is_a"))
    elif tag == "relationship":
        relation, _, rest = value.partition(" ")
        if relation in RELATIONS:
            edges.append((stanza.go_id, _target(path, number, rest), relation))


def _target(path: str | Path, number: int, value: str) -> str:
    target = value.split("!", 1)[0].split("{", 1)[0].strip()
    if not GO_ID.fullmatch(target):
        raise OBOError(path, number, f"expected a GO ID, got {target[:40]!r}")
    return target


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _finish(path: str | Path, stanza: _Stanza) -> tuple:
    if stanza.go_id is None or stanza.name is None or stanza.namespace is None:
        raise OBOError(path, stanza.line, "expected id, name and namespace in the [Term] stanza")
    if stanza.namespace not in NAMESPACES:
        raise OBOError(
            path, stanza.line, f"expected a GO namespace {NAMESPACES}, got {stanza.namespace!r}"
        )
    return (stanza.go_id, stanza.name, stanza.namespace, stanza.is_obsolete, stanza.definition)
