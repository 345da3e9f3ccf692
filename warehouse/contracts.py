"""Table contracts (`sql/contracts.toml`): unique keys, not-null keys and accepted values of
status, split and kind columns, checked by one generic function, as dbt's schema tests are."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from degae_tools.errors import WarehouseError
from warehouse.handle import Warehouse


@dataclass(frozen=True)
class Contract:
    """What one table (or view) promises about its rows."""

    table: str
    unique: tuple[tuple[str, ...], ...] = ()  # keys: each a tuple of columns
    not_null: tuple[str, ...] = ()
    accepted: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def columns(self) -> set[str]:
        return {*(c for key in self.unique for c in key), *self.not_null, *self.accepted}


@dataclass(frozen=True)
class Violation:
    """Rows of a table that break one rule of its contract, with one of them as an example."""

    table: str
    rule: str  # unique | not_null | accepted
    columns: tuple[str, ...]
    n_rows: int
    example: str

    def __str__(self) -> str:
        return (
            f"{self.table}: {self.n_rows} rows break {self.rule}({', '.join(self.columns)}), "
            f"e.g. {self.example}"
        )


def load_contracts(text: str | None = None) -> list[Contract]:
    """The contracts of `sql/contracts.toml` (or of `text`, a TOML document of that form)."""
    if text is None:
        text = (resources.files("sql") / "contracts.toml").read_text()
    contracts = []
    for table, rules in tomllib.loads(text).items():
        contract = Contract(
            table=table,
            unique=_keys(rules.get("unique", [])),
            not_null=tuple(rules.get("not_null", ())),
            accepted={k: tuple(v) for k, v in rules.get("accepted", {}).items()},
        )
        _check_names(contract)
        contracts.append(contract)
    return contracts


def _keys(unique: list) -> tuple[tuple[str, ...], ...]:
    """`["a", "b"]` (one key) or `[["a"], ["b"]]` (two keys) as a tuple of keys."""
    if unique and all(isinstance(key, list) for key in unique):
        return tuple(tuple(key) for key in unique)
    return (tuple(unique),) if unique else ()


def _check_names(contract: Contract) -> None:
    """Names reach SQL as identifiers: only plain `schema.table` and column names pass."""
    schema, _, table = contract.table.partition(".")
    names = [schema, table, *contract.columns()]
    if not all(name.isidentifier() for name in names):
        raise WarehouseError(f"sql/contracts.toml: not a table or column name in {contract}")


def violations(wh: Warehouse, contracts: Sequence[Contract] | None = None) -> list[Violation]:
    """Every rule of every contract that some rows break (tables the warehouse lacks are
    skipped: an old warehouse, or a stage not run yet)."""
    found = []
    with wh.session():
        for contract in load_contracts() if contracts is None else contracts:
            if wh.has_table(contract.table):
                found += table_violations(wh, contract)
    return found


def table_violations(wh: Warehouse, contract: Contract) -> list[Violation]:
    """The rules of one contract that rows of its table break."""
    schema, _, name = contract.table.partition(".")
    table = f'{schema}."{name}"'
    found = []
    for key in contract.unique:
        columns = ", ".join(f'"{c}"' for c in key)
        row = wh.one(
            f"SELECT count(*), any_value(key) FROM (SELECT ({columns})::VARCHAR AS key "
            f"FROM {table} GROUP BY ALL HAVING count(*) > 1)"
        )
        if row and row[0]:
            found.append(Violation(contract.table, "unique", key, row[0], f"{row[1]} repeats"))
    for column in contract.not_null:
        n = wh.scalar(f'SELECT count(*) FROM {table} WHERE "{column}" IS NULL')
        if n:
            found.append(Violation(contract.table, "not_null", (column,), n, "NULL"))
    for column, values in contract.accepted.items():
        row = wh.one(
            f'SELECT count(*), any_value("{column}")::VARCHAR FROM {table} '
            f'WHERE "{column}" IS NOT NULL AND "{column}"::VARCHAR NOT IN '
            "(SELECT unnest($values::VARCHAR[]))",
            {"values": [str(v) for v in values]},
        )
        if row and row[0]:
            found.append(
                Violation(contract.table, "accepted", (column,), row[0], f"{row[1]!r} not allowed")
            )
    return found
