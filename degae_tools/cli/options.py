"""Click options generated from a step's frozen config dataclass, so each setting is written once.

A field becomes `--field-name` with the field's default; its help and choices come from
`dataclasses.field(metadata={"help": ..., "choices": ...})` or from a `Literal` annotation.
Booleans become flags (`--x/--no-x` when they default to True); tuples of ints take `1,2,3` or a
range `1-3`. `metadata={"flag": ...}` names the option itself (`--components`, or `--on/--off`
for a boolean) where the field's name is not what users type; `"multiple": True` makes a tuple
field a repeatable option; `"envvar"` reads the option from the environment when it is not given,
and `"shown"` is the default --help shows for a field whose default comes from that variable.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import click


def int_list(text: str) -> tuple[int, ...]:
    """'1,10,100' or '1-10' as a tuple of ints; anything else is a usage error."""
    try:
        if "-" in text and "," not in text:
            lo, hi = (int(v) for v in text.split("-", 1))
            values = tuple(range(lo, hi + 1))
        else:
            values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values:
        raise click.BadParameter(f"{text!r}: expected a list like 1,10,100 or a range like 1-10")
    return values


class IntList(click.ParamType):
    """A comma list or a range of ints, as `int_list` reads it."""

    name = "ints"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            return int_list(str(value))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


def _click_type(annotation: Any, choices: Iterable[str] | None) -> tuple[Any, bool]:
    """(click type, is_flag) for a field's annotation."""
    if choices:
        return click.Choice(list(choices)), False
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return click.Choice([str(a) for a in args]), False
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _click_type(inner[0], None) if len(inner) == 1 else (str, False)
    if origin is tuple:
        return (IntList() if args and args[0] is int else str), False
    if annotation is bool:
        return bool, True
    if annotation is Path:
        return click.Path(exists=True, path_type=Path), False
    return (annotation if annotation in (int, float, str) else str), False


def config_options(
    config_cls: type,
    *,
    exclude: Iterable[str] = (),
    only: Iterable[str] | None = None,
    defaults: dict[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding one option per field of `config_cls` (those in `only`, less `exclude`).

    The command then receives the fields as keyword arguments: `config_cls(**fields)`.
    `defaults` overrides a field's default for this command only (shown in its --help).
    """
    hints = get_type_hints(config_cls)
    skipped = set(exclude)
    wanted = None if only is None else list(only)
    fields = [f for f in dataclasses.fields(config_cls) if f.init and f.name not in skipped]
    if wanted is not None:
        fields = sorted((f for f in fields if f.name in wanted), key=lambda f: wanted.index(f.name))
    overrides = defaults or {}

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(fields):
            func = _option(f, hints[f.name], overrides)(func)
        return func

    return decorate


def _option(f: dataclasses.Field, annotation: Any, overrides: dict[str, Any]) -> Callable:
    """One field's click option."""
    default = overrides.get(f.name, f.default)
    if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    click_type, is_flag = _click_type(annotation, f.metadata.get("choices"))
    name = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
    help_text = f.metadata.get("help")
    if is_flag:
        decls = [f"{name}/--no-{name[2:]}"] if default and "/" not in name else [name]
        return click.option(*decls, f.name, is_flag=True, default=bool(default), help=help_text)
    if f.metadata.get("multiple"):
        return click.option(name, f.name, multiple=True, default=default, help=help_text)
    if isinstance(default, tuple):
        default = ",".join(str(v) for v in default)
    envvar = f.metadata.get("envvar")
    if envvar:
        default = f.metadata.get("shown", default)
    return click.option(
        name,
        f.name,
        type=click_type,
        default=default,
        show_default=default is not None,
        envvar=envvar,
        show_envvar=envvar is not None,
        help=help_text,
    )
