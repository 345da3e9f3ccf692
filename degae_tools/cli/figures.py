"""Commands that look at the warehouse: reduce, report and compare-study."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from degae_tools import console
from degae_tools.cli.base import (
    db_option,
    friendly_errors,
    main,
    resolve_db,
    strict_option,
    unless_empty,
)
from degae_tools.cli.options import config_options, int_list
from degae_tools.reduction import ReduceConfig


@main.command()
@db_option
@config_options(ReduceConfig)
@click.option("--no-variance-threshold", is_flag=True, help="Keep every gene.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("figures"),
    show_default=True,
    help="Folder for the plots.",
)
@strict_option
@friendly_errors
def reduce(
    db: Path | None, no_variance_threshold: bool, out: Path, strict: bool, **fields: Any
) -> None:
    """PCA and t-SNE of the log2FC matrix (and of a latent code), stored in ml.embeddings."""
    from degae_tools.steps import reduce as step
    from warehouse import Warehouse

    if no_variance_threshold:
        fields["variance_threshold"] = None
    with Warehouse.open(resolve_db(db), write=True) as wh, unless_empty(strict):
        result = step.run(wh, ReduceConfig(**fields), out)
    for note in result.notes:
        console.say(f"note: {note}")
    console.say(result.headline())
    console.show_record(result.summary(), title="reduce")


@main.command()
@db_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
)
@click.option(
    "--figures",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also save every figure of the report as PNG in this folder.",
)
@friendly_errors
def report(db: Path | None, out: Path, figures: Path | None) -> None:
    """Write one self-contained HTML report of the warehouse and its models."""
    from degae_tools.steps.report import write_report
    from warehouse import Warehouse

    with Warehouse.open(resolve_db(db)) as wh:
        path = write_report(wh, out, figures_dir=figures)
    console.show_record({"report": str(path), "bytes": path.stat().st_size})


@main.command("compare-study")
@click.argument("source_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--work",
    "work_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the two warehouses (study.duckdb, degae.duckdb) and their models.",
)
@click.option("--epochs", default=50, show_default=True, help="Epochs of every autoencoder.")
@click.option(
    "--layers", default="1,2,4,10", show_default=True, help="Layer counts to train, e.g. 1,2,4."
)
@click.option("--neurons", default=2000, show_default=True, help="First hidden layer's width.")
@click.option("--min-positives", default=10, show_default=True, help="GO head: terms' positives.")
@click.option("--no-predict", is_flag=True, help="Skip GO prediction.")
@click.option("--datasets-note", "note", default="", help="A label for the compendium, stored.")
@click.option("--run-id", default=None, help="Id of the run in ml.study_comparison.")
@friendly_errors
def compare_study(
    source_dir: Path,
    work_dir: Path,
    epochs: int,
    layers: str,
    neurons: int,
    min_positives: int,
    no_predict: bool,
    note: str,
    run_id: str | None,
) -> None:
    """The reference study's pipeline beside degae's defaults on SOURCE_DIR, in one table.

    Reduced size (bench/compare_study.py: about 6 minutes on 2 CPU cores): the README's
    compendium (`simulate DIR --datasets 200 --genes 5000 --go-terms 800 --seed 1`) with
    `--epochs 20 --min-positives 5`.
    """
    from degae_tools.steps.study import CompareConfig
    from degae_tools.steps.study import compare_study as run

    config = CompareConfig(
        layers=int_list(layers),
        epochs=epochs,
        neurons=neurons,
        note=note,
        predict=not no_predict,
        min_positives=min_positives,
        run_id=run_id,
    )
    result = run(source_dir, work_dir, config)
    columns, rows = result.table()
    console.show_table(columns, rows, title=f"reference study vs degae ({result.run_id})")
    for line in result.notes():
        console.say(line)
    console.say(f"stored in ml.study_comparison of {result.degae_db}")
