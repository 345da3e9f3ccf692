"""Reader for the Gene Ontology in OBO 1.2 format (``go-basic.obo[.gz]``).

Header tag-value lines, then ``[Term]`` (and ``[Typedef]``/``[Instance]``) stanzas of
``tag: value`` lines; trailing ``! comments`` and ``{qualifiers}`` are not part of a value
(OBO 1.2 guide, geneontology.org/docs/download-ontology). Edges come from ``is_a`` and from
the ``relationship`` types that go-basic keeps. ``is_a`` and ``part_of`` must form a DAG (GO
propagates annotations up them): an edge that makes a term its own ancestor is rejected, naming
the terms of the cycle, and the rest of the ontology is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from degae_tools.errors import OBOError
from degae_tools.sources import OnReject, iter_lines, reject

# The relations annotations are propagated up (core.go_ancestors): they must not loop.
PROPAGATED = ("is_a", "part_of")
RELATIONS = ("part_of", "regulates", "negatively_regulates", "positively_regulates")
NAMESPACES = ("biological_process", "molecular_function", "cellular_component")
GO_ID = re.compile(r"GO:\d{7}")
QUOTED = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"')  # a quoted string, \" escapes, unrolled
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


def read_obo(path: str | Path, on_reject: OnReject | None = None) -> Ontology:
    """Parse an OBO file into terms, ``is_a``/``relationship`` edges and ``alt_id`` mappings.

    An ``is_a``/``part_of`` edge that closes a cycle (or a self-loop) goes to ``on_reject`` and is
    dropped; without ``on_reject`` it raises, naming the terms.
    """
    terms: list[tuple] = []
    edges: list[tuple[str, str, str, int]] = []
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
    acyclic = _drop_cycles(path, edges, on_reject)
    return Ontology(
        terms=pl.DataFrame(terms, schema=TERM_SCHEMA, orient="row"),
        edges=pl.DataFrame(acyclic, schema=EDGE_SCHEMA, orient="row"),
        alt_ids=alt_ids,
        data_version=header.get("data-version"),
    )


def _read_tag(
    path: str | Path,
    number: int,
    stanza: _Stanza,
    tag: str,
    value: str,
    edges: list[tuple[str, str, str, int]],
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
        edges.append((stanza.go_id, _target(path, number, value), "is_a", number))
    elif tag == "relationship":
        relation, _, rest = value.partition(" ")
        if relation in RELATIONS:
            edges.append((stanza.go_id, _target(path, number, rest), relation, number))


def _drop_cycles(
    path: str | Path, edges: list[tuple[str, str, str, int]], on_reject: OnReject | None
) -> list[tuple[str, str, str]]:
    """The edges without those that close an is_a/part_of cycle, found by a depth-first walk up
    from each term in file order: an edge to a term still on the walk's path is a back edge."""
    parents: dict[str, list[int]] = {}
    for i, (child, _, relation, _) in enumerate(edges):
        if relation in PROPAGATED:
            parents.setdefault(child, []).append(i)
    dropped: set[int] = set()
    done: set[str] = set()
    for root in parents:
        if root in done:
            continue
        walk, on_path = [(root, iter(parents[root]))], {root: 0}
        while walk:
            term, remaining = walk[-1]
            i = next(remaining, None)
            if i is None:
                done.add(term)
                walk.pop()
                del on_path[term]
                continue
            parent = edges[i][1]
            if parent in on_path:
                cycle = list(on_path)[on_path[parent] :]
                _reject_cycle(path, edges[i], cycle, on_reject)
                dropped.add(i)
            elif parent not in done:
                walk.append((parent, iter(parents.get(parent, ()))))
                on_path[parent] = len(on_path)
    return [edge[:3] for i, edge in enumerate(edges) if i not in dropped]


def _reject_cycle(
    path: str | Path,
    edge: tuple[str, str, str, int],
    cycle: list[str],
    on_reject: OnReject | None,
) -> None:
    child, parent, relation, number = edge
    if child == parent:
        message = f"{relation} self-loop: {child} {relation} {child}"
    else:
        terms = " -> ".join([*cycle, parent])
        message = f"{relation} cycle {terms}: {child} {relation} {parent} closes it"
    if on_reject is not None:
        message += "; that edge is dropped"
    reject(on_reject, OBOError(path, number, message), f"{child} {relation} {parent}")


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
