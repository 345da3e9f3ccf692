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
from degae_tools.cli.options import config_options
from degae_tools.models.config import (
    BASELINES,
    PRODUCT_DEFAULTS,
    Architecture,
    AutoencoderConfig,
    DataConfig,
    Runtime,
    SearchConfig,
    Training,
    take,
)
from degae_tools.models.go_config import AttributeConfig, PredictConfig, ValidateConfig
from degae_tools.signature_config import SimilarConfig

# train's defaults are the product's (the residual kind); search keeps the dataclasses' own.
train_options = [
    config_options(Architecture, defaults=PRODUCT_DEFAULTS),
    config_options(Training, defaults=PRODUCT_DEFAULTS),
    config_options(DataConfig, defaults={"value": None}),
    config_options(Runtime),
]
search_options = [config_options(Training), config_options(DataConfig), config_options(Runtime)]
split_option = click.option(
    "--split",
    "split_name",
    default=None,
    help="Split in ml.splits. Default: degae for the compendium, degae-NAME for a collection.",
)


def _with(options: list[Callable[..., Any]]) -> Callable[..., Any]:
    """Several option decorators as one."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


@main.command()
@db_option
@_with(train_options)
@split_option
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
@click.option(
    "--baselines",
    default=",".join(BASELINES),
    show_default=True,
    help="Linear methods fitted beside the autoencoder at its latent size (pca, ica, nmf; "
    "'none' for none).",
)
@friendly_errors
def train(
    db: Path | None,
    split_name: str | None,
    model_dir: Path | None,
    resume: bool,
    keep_checkpoint: bool,
    checkpoint_every: int,
    baselines: str,
    **fields: Any,
) -> None:
    """Train an autoencoder on a collection's values; store the model, history and latent codes.

    The defaults are the residual kind (a frozen PCA path plus a non-linear residual) with
    --neurons 512 --noise 0.5 --hidden-dropout 0.2 --best-weights; --kind dense --neurons 2000
    --noise 0.1 --hidden-dropout 0 --no-best-weights is the reference study's network.

    Example: degae-tools train --collection l1000 --latent 8 (its values: z, as imported)
    """
    from degae_tools.steps import train as step
    from warehouse import Warehouse

    runtime = take(Runtime, fields)
    with Warehouse.open(resolve_db(db), write=True) as wh:
        if fields["value"] is None:
            fields["value"] = step.collection_value(wh, fields["collection"])
        result = step.train(
            wh,
            AutoencoderConfig(**fields),
            runtime=runtime,
            split_name=split_name,
            model_dir=model_dir,
            resume=resume,
            keep_checkpoint=keep_checkpoint,
            checkpoint_every=checkpoint_every,
            baselines=_baselines(baselines),
        )
    _show_trained(result)


def _show_trained(result: Any) -> None:
    """The history plot beside the model, the held-out table with each method's ratio to PCA,
    and the summary (one JSON record under --json)."""
    from degae_tools.plots import plot_history

    if result.history:
        plot_history(result.history, title=result.model_id).savefig(
            result.model_dir / "history.png"
        )
    columns = ["method", "split", "latent_dim", "mse", "r2"]
    summary = {
        "model_id": result.model_id,
        "model_dir": str(result.model_dir),
        "epochs_run": result.metrics["epochs_run"],
        "best_epoch": result.metrics.get("best_epoch"),
        "loss": result.metrics["loss"],
        "val_loss": result.metrics["val_loss"],
        "samples_per_second": result.metrics["samples_per_second"],
        "missing_genes_filled": result.metrics["n_missing_filled"],
    }
    if console.mode.json:
        console.show_record({**summary, "reconstruction": result.reconstruction})
        return
    rows = [
        [r[c] for c in columns] + [_ratio_to_pca(r, result.reconstruction)]
        for r in result.reconstruction
    ]
    title = "held-out reconstruction (standardised units; r2 / pca: R² over PCA's on the split)"
    console.show_table([*columns, "r2 / pca"], rows, title=title)
    console.show_record(summary)


def _ratio_to_pca(row: dict[str, Any], rows: list[dict[str, Any]]) -> float | None:
    """A method's R² over PCA's on the same split; None for nmf_magnitude, which reconstructs
    |value| (another target) for a model of signed values."""
    pca = [r["r2"] for r in rows if r["method"] == "pca" and r["split"] == row["split"]]
    if not pca or not pca[0] or row["method"] == "nmf_magnitude":
        return None
    return round(row["r2"] / pca[0], 3)


def _baselines(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip() and n.strip() != "none")
    unknown = sorted(set(names) - set(BASELINES))
    if unknown:
        raise click.BadParameter(f"unknown baselines {unknown}: choose from {list(BASELINES)}")
    return names


@main.command()
@db_option
@config_options(SearchConfig, only=("neurons", "layers", "n_trials", "folds"))
@config_options(Architecture, exclude=("neurons", "layers"))
@_with(search_options)
@split_option
@click.option("--search-id", default=None, help="Default: a hash of the settings and warehouse.")
@click.option("--plot-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@friendly_errors
def search(
    db: Path | None,
    neurons: tuple[int, ...],
    layers: tuple[int, ...],
    n_trials: int,
    folds: int,
    split_name: str | None,
    search_id: str | None,
    plot_dir: Path | None,
    **fields: Any,
) -> None:
    """Random search over neurons × layers, k-fold cross-validated by group; resumable."""
    from degae_tools.steps import search as step
    from warehouse import Warehouse

    runtime = take(Runtime, fields)
    base = AutoencoderConfig(**fields)
    config = SearchConfig(neurons, layers, n_trials, folds, split_name, base)
    with Warehouse.open(resolve_db(db), write=True) as wh:
        result = step.search(wh, config, search_id, plot_dir, runtime)
    summary = step.summarise(result.trials)
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
