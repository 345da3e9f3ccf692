"""Commands that look at the warehouse: reduce, report and compare-study."""

from __future__ import annotations

from pathlib import Path

import click

from degae_tools import console
from degae_tools.cli.base import db_option, friendly_errors, main, resolve_db
from degae_tools.cli.options import int_list


@main.command()
@db_option
@click.option(
    "--variance-threshold",
    type=float,
    default=1.0,
    show_default=True,
    help="Keep genes whose log2FC variance exceeds this (the study's VarianceThreshold).",
)
@click.option("--no-variance-threshold", is_flag=True, help="Keep every gene.")
@click.option("--components", default=50, show_default=True, help="PCA components kept.")
@click.option("--perplexity", default=50.0, show_default=True, help="t-SNE perplexity.")
@click.option("--umap", is_flag=True, help="Also UMAP (needs umap-learn).")
@click.option("--seed", default=69, show_default=True)
@click.option(
    "--color-by",
    default="top_go",
    show_default=True,
    help="top_go, a GO ID or term name, or a contrast/dataset column (gse, group_key, ...).",
)
@click.option("--model", default=None, help="Autoencoder whose latent code is projected.")
@click.option(
    "--tsne-backend",
    type=click.Choice(["auto", "sklearn", "opentsne"]),
    default="auto",
    show_default=True,
    help="auto: openTSNE from 1,000 contrasts when installed (measured faster), else sklearn.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("figures"),
    show_default=True,
    help="Folder for the plots.",
)
@friendly_errors
def reduce(
    db: Path | None,
    variance_threshold: float,
    no_variance_threshold: bool,
    components: int,
    perplexity: float,
    umap: bool,
    seed: int,
    color_by: str,
    model: str | None,
    tsne_backend: str,
    out: Path,
) -> None:
    """PCA and t-SNE of the log2FC matrix (and of a latent code), stored in ml.embeddings."""
    from degae_tools.reduce import ReduceConfig
    from degae_tools.reduce import reduce as run_reduce

    config = ReduceConfig(
        variance_threshold=None if no_variance_threshold else variance_threshold,
        pca_components=components,
        perplexity=perplexity,
        umap=umap,
        seed=seed,
        color_by=color_by,
        model=model,
        tsne_backend=tsne_backend,
    )
    result = run_reduce(resolve_db(db), config, out)
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
    from degae_tools.report import write_report

    path = write_report(resolve_db(db), out, figures_dir=figures)
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
    from flows.compare import CompareConfig
    from flows.compare import compare_study as run

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
