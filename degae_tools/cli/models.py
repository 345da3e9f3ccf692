"""Commands that train and use models: train, search, predict, attribute."""

from __future__ import annotations

from collections.abc import Callable
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
from degae_tools.models.go_config import AttributeConfig, PredictConfig, ValidateConfig
from degae_tools.signature_config import SimilarConfig


def _model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by train and search, each named for its AutoencoderConfig field."""
    from degae_tools.models.config import KINDS, REPRESENTATIONS, AutoencoderConfig

    d = AutoencoderConfig()
    options = [
        click.option(
            "--kind",
            type=click.Choice(KINDS),
            default=d.kind,
            show_default=True,
        ),
        click.option(
            "--representation",
            type=click.Choice(REPRESENTATIONS),
            default=d.representation,
            show_default=True,
            help="What the model reads: log2FC (the study's), or |log2FC|, which GO enrichment "
            "of DE genes sees the same way (see the README's design notes).",
        ),
        click.option("--epochs", type=int, default=d.epochs, show_default=True),
        click.option("--batch-size", type=int, default=d.batch_size, show_default=True),
        click.option("--learning-rate", type=float, default=d.learning_rate, show_default=True),
        click.option(
            "--output-activation",
            type=click.Choice(["linear", "sigmoid"]),
            default=d.output_activation,
            show_default=True,
            help="The study used sigmoid (with --minmax); linear fits standardised data.",
        ),
        click.option(
            "--variance-threshold",
            type=float,
            default=d.variance_threshold,
            help="Keep genes whose training log2FC variance exceeds this (study: 1). Default: all.",
        ),
        click.option("--minmax", is_flag=True, help="Scale standardised genes to [0, 1] (study)."),
        click.option("--seed", type=int, default=d.seed, show_default=True),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _architecture_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """train's options for one architecture, each named for its AutoencoderConfig field."""
    from degae_tools.models.config import AutoencoderConfig

    d = AutoencoderConfig()
    options = [
        click.option("--neurons", type=int, default=d.neurons, show_default=True),
        click.option("--layers", type=int, default=d.layers, show_default=True),
        click.option(
            "--l1", type=float, default=d.l1, show_default=True, help="sparse: L1 on code"
        ),
        click.option("--noise", type=float, default=d.noise, show_default=True, help="denoising"),
        click.option("--dropout", type=float, default=d.dropout, show_default=True),
        click.option("--beta", type=float, default=d.beta, show_default=True, help="variational"),
        click.option("--kl-warmup-epochs", type=int, default=d.kl_warmup_epochs, show_default=True),
        click.option("--early-stopping", is_flag=True, help="Stop when val_loss stops improving."),
        click.option("--patience", type=int, default=d.patience, show_default=True),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command()
@db_option
@_model_options
@_architecture_options
@click.option("--mixed-precision", is_flag=True, help="float16 compute (GPU), float32 output.")
@click.option("--xla", is_flag=True, help="Compile the training step with XLA.")
@click.option(
    "--distribute", type=click.Choice(["none", "mirrored"]), default="none", show_default=True
)
@click.option("--split", "split_name", default="degae", show_default=True)
@click.option("--model-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in the model folder.")
@click.option("--keep-checkpoint", is_flag=True, help="Keep it after training (to extend later).")
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Epochs between checkpoints (the last epoch is always saved).",
)
@friendly_errors
def train(
    db: Path | None,
    split_name: str,
    model_dir: Path | None,
    resume: bool,
    keep_checkpoint: bool,
    checkpoint_every: int,
    **fields: Any,
) -> None:
    """Train an autoencoder on every gene's log2FC; store the model, history and latent codes."""
    from degae_tools.models.config import AutoencoderConfig
    from degae_tools.plots import plot_history
    from degae_tools.train import train as train_model

    config = AutoencoderConfig(**fields)
    result = train_model(
        resolve_db(db),
        config,
        split_name=split_name,
        model_dir=model_dir,
        resume=resume,
        keep_checkpoint=keep_checkpoint,
        checkpoint_every=checkpoint_every,
    )
    if result.history:
        plot_history(result.history, title=result.model_id).savefig(
            result.model_dir / "history.png"
        )
    columns = ["method", "split", "latent_dim", "mse", "r2"]
    summary = {
        "model_id": result.model_id,
        "model_dir": str(result.model_dir),
        "epochs_run": result.metrics["epochs_run"],
        "loss": result.metrics["loss"],
        "val_loss": result.metrics["val_loss"],
        "samples_per_second": result.metrics["samples_per_second"],
        "missing_genes_filled": result.metrics["n_missing_filled"],
    }
    if console.mode.json:
        console.show_record({**summary, "reconstruction": result.reconstruction})
        return
    rows = [[r[c] for c in columns] for r in result.reconstruction]
    console.show_table(columns, rows, title="held-out reconstruction (standardised units)")
    console.show_record(summary)


@main.command()
@db_option
@_model_options
@click.option("--neurons", default="1,10,100,200,400,600,800,1000,2000", show_default=True)
@click.option("--layers", default="1-10", show_default=True, help="A range a-b or a list.")
@click.option("--n-trials", type=int, default=20, show_default=True)
@click.option("--folds", type=int, default=4, show_default=True, help="Folds by GEO series.")
@click.option("--split", "split_name", default="degae", show_default=True)
@click.option("--search-id", default=None, help="Default: a hash of the settings and warehouse.")
@click.option("--plot-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@friendly_errors
def search(
    db: Path | None,
    neurons: str,
    layers: str,
    search_id: str | None,
    plot_dir: Path | None,
    **fields: Any,
) -> None:
    """Random search over neurons × layers, k-fold cross-validated by series; resumable."""
    from degae_tools.search import SearchConfig, summarise
    from degae_tools.search import search as run_search

    config = SearchConfig(neurons=int_list(neurons), layers=int_list(layers), **fields)
    result = run_search(resolve_db(db), config, search_id=search_id, plot_dir=plot_dir)
    summary = summarise(result.trials)
    columns = ["trial", "neurons", "layers", "folds", "mean_val_loss", "sd_val_loss"]
    console.show_table(columns, [[r[c] for c in columns] for r in summary], title=result.search_id)
    console.say(f"plots: {', '.join(str(p) for p in result.plots)}")


model_option = click.option(
    "--model", required=True, help="Model id in ml.models, or a model directory."
)


@main.command()
@model_option
@db_option
@click.option("--contrast", default=None, help="Score one stored contrast instead of fitting.")
@click.option(
    "--log2fc",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Score a new experiment: a TSV of gene_id<TAB>log2fc lines (missing genes: 0).",
)
@click.option("--top", default=20, show_default=True, help="Terms shown when scoring one.")
@config_options(PredictConfig)
@strict_option
@friendly_errors
def predict(
    model: str,
    db: Path | None,
    contrast: str | None,
    log2fc: Path | None,
    top: int,
    strict: bool,
    **fields: Any,
) -> None:
    """Fit GO-term prediction on MODEL's latent code (with baselines), or score one experiment."""
    from degae_tools.steps import predict as step
    from warehouse import Warehouse

    config = PredictConfig(**fields)
    scoring = contrast is not None or log2fc is not None
    with Warehouse.open(resolve_db(db), write=not scoring) as wh, unless_empty(strict):
        model_dir = step.resolve_model_dir(wh, model)
        if scoring:
            scores = step.score_experiment(wh, model_dir, contrast, log2fc, top)
            console.show_table(scores.columns, scores.rows(), title=contrast or str(log2fc))
            return
        result = step.run(wh, model_dir, config)
    columns = ["predictor", "macro_auroc", "macro_auprc", "micro_auroc", "micro_auprc"]
    rows = [[name] + [s[c] for c in columns[1:]] for name, s in result.summary.items()]
    console.say(f"{len(result.go_ids)} GO terms, {result.seconds:.1f} s; test split metrics:")
    console.show_table(columns, rows, title=f"predict {result.model_id}")


@main.command()
@model_option
@db_option
@config_options(AttributeConfig)
@click.option(
    "--gmt", type=click.Path(dir_okay=False, path_type=Path), help="Write term gene sets."
)
@click.option("--gmt-top", default=50, show_default=True, help="Genes per term in the GMT.")
@click.option("--validate", "run_checks", is_flag=True, help="Run the attribution checks too.")
@click.option(
    "--ground-truth",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The simulator's ground_truth/perturbations.tsv (for --validate).",
)
@config_options(ValidateConfig, only=("max_pairs", "n_seeds"))
@strict_option
@friendly_errors
def attribute(
    model: str,
    db: Path | None,
    gmt: Path | None,
    gmt_top: int,
    run_checks: bool,
    ground_truth: Path | None,
    max_pairs: int,
    n_seeds: int,
    strict: bool,
    **fields: Any,
) -> None:
    """Integrated gradients of every (test contrast, predicted or enriched GO term) pair."""
    from degae_tools.steps import attribute as step
    from warehouse import Warehouse

    config = AttributeConfig(**fields)
    with Warehouse.open(resolve_db(db), write=True) as wh, unless_empty(strict):
        result = step.run(wh, model, config)
        console.show_record(
            {
                "model": result.model_id,
                "pairs": result.n_pairs,
                "terms": result.n_terms,
                "pairs_per_second": result.pairs_per_second,
                "completeness_within_5pct": result.completeness_ok,
                "max_relative_gap": result.max_relative_gap,
            },
            title="attribute",
        )
        if gmt is not None:
            n = step.export_gmt(wh, result.model_id, gmt, top=gmt_top)
            console.say(f"wrote {n} gene sets to {gmt}")
        if run_checks:
            from degae_tools.steps import validate

            checks_config = ValidateConfig(k=config.top_k, max_pairs=max_pairs, n_seeds=n_seeds)
            checks = validate.run(wh, model, config, checks_config, ground_truth=ground_truth)
            console.show_table(
                ["check_name", "method", "value", "n"],
                checks.select("check_name", "method", "value", "n").rows(),
                title="validation",
            )


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_options(SimilarConfig)
@db_option
@friendly_errors
def similar(file: Path, db: Path | None, **fields: Any) -> None:
    """The signatures of a collection most similar to a DE table (any format import-de reads)
    and most opposite to it: cosine and Spearman over shared genes, or between latent codes.
    Every signature's scores are kept in ml.similar.

    Example: degae-tools similar SRP253951_SARS-CoV-2-vs-mock.deseq2.tsv.gz --collection l1000
    """
    from degae_tools.steps import similar as step
    from warehouse import Warehouse

    config = SimilarConfig(**fields)
    with Warehouse.open(resolve_db(db), write=True) as wh:
        result = step.run(wh, file, config)
    query, collection = result.query, result.collection
    console.say(
        f"{query.query_id}: {query.description} of {len(query.gene_index):,} mapped genes vs "
        f"{collection.value} of {len(collection.contrast_ids):,} {collection.name} signatures "
        f"over {len(collection.gene_index):,} genes, in space {result.space}"
    )
    columns = ["contrast_id", "n_shared", "cosine", "spearman"]
    similar_rows, opposite_rows = result.ranked(config.rank_by, config.top)
    for title, rows in (("most similar", similar_rows), ("most opposite", opposite_rows)):
        console.show_table(columns, rows.select(columns).rows(), title=title)
