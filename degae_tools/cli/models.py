"""Commands that train and use models: train, search, predict, attribute."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from degae_tools import console
from degae_tools.attribute_config import RULES
from degae_tools.cli.base import db_option, friendly_errors, main, resolve_db
from degae_tools.cli.options import int_list


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


@main.command()
@click.option("--model", required=True, help="Model id in ml.models, or a model directory.")
@db_option
@click.option("--contrast", default=None, help="Score one stored contrast instead of fitting.")
@click.option(
    "--log2fc",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Score a new experiment: a TSV of gene_id<TAB>log2fc lines (missing genes: 0).",
)
@click.option("--top", default=20, show_default=True, help="Terms shown when scoring one.")
@click.option("--split-name", default=None, help="Split in ml.splits (default: the only one).")
@click.option(
    "--label-column",
    type=click.Choice(["fwer_over", "fdr_over", "p_over", "fwer_under", "p_under"]),
    default="fwer_over",
    show_default=True,
)
@click.option("--threshold", default=0.05, show_default=True, help="Label: column < threshold.")
@click.option("--min-positives", default=10, show_default=True, help="Terms need this many.")
@click.option("--hidden", default=0, show_default=True, help="Hidden ReLU units (0: linear).")
@click.option("--epochs", default=300, show_default=True)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--learning-rate", default=1e-2, show_default=True)
@click.option("--l2", default=1e-4, show_default=True)
@click.option("--fine-tune/--frozen", default=False, show_default=True, help="Tune the encoder.")
@click.option("--seed", default=69, show_default=True)
@friendly_errors
def predict(
    model: str,
    db: Path | None,
    contrast: str | None,
    log2fc: Path | None,
    top: int,
    split_name: str | None,
    label_column: str,
    threshold: float,
    min_positives: int,
    hidden: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    l2: float,
    fine_tune: bool,
    seed: int,
) -> None:
    """Fit GO-term prediction on MODEL's latent code (with baselines), or score one experiment."""
    from degae_tools import predict as p

    path = resolve_db(db)
    model_dir = p.resolve_model_dir(path, model)
    if contrast is not None or log2fc is not None:
        vector = p.log2fc_for_experiment(path, contrast_id=contrast, tsv=log2fc)
        scores = p.with_term_names(path, p.predict_vector(model_dir, vector).head(top))
        console.show_table(scores.columns, scores.rows(), title=contrast or str(log2fc))
        return
    config = p.PredictConfig(
        split_name=split_name,
        label_column=label_column,
        threshold=threshold,
        min_positives=min_positives,
        hidden=hidden,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        l2=l2,
        fine_tune=fine_tune,
        seed=seed,
    )
    result = p.fit_predictor(path, model_dir, config)
    columns = ["predictor", "macro_auroc", "macro_auprc", "micro_auroc", "micro_auprc"]
    rows = [[name] + [s[c] for c in columns[1:]] for name, s in result.summary.items()]
    console.say(f"{len(result.go_ids)} GO terms, {result.seconds:.1f} s; test split metrics:")
    console.show_table(columns, rows, title=f"predict {result.model_id}")


@main.command()
@click.option("--model", required=True, help="Model id in ml.models, or a model directory.")
@db_option
@click.option("--steps", default=50, show_default=True, help="Points on the path (quadrature).")
@click.option(
    "--rule",
    type=click.Choice(RULES),
    default="exact",
    show_default=True,
    help="exact: walk the ReLU segments of the path (no steps, complete to round-off); "
    "the others are quadrature rules over --steps points.",
)
@click.option("--top-k", default=20, show_default=True, help="Genes kept per pair.")
@click.option(
    "--batch", default=256, show_default=True, help="Path points (exact: pairs) per forward pass."
)
@click.option("--threshold", default=0.5, show_default=True, help="Score that counts as predicted.")
@click.option("--max-predicted", default=10, show_default=True, help="Cap per contrast.")
@click.option("--term-top", default=200, show_default=True, help="Genes kept per term.")
@click.option(
    "--rank-by", type=click.Choice(["signed", "abs"]), default="signed", show_default=True
)
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
@click.option("--max-pairs", default=200, show_default=True, help="Pairs the checks recompute.")
@friendly_errors
def attribute(
    model: str,
    db: Path | None,
    steps: int,
    rule: str,
    top_k: int,
    batch: int,
    threshold: float,
    max_predicted: int,
    term_top: int,
    rank_by: str,
    gmt: Path | None,
    gmt_top: int,
    run_checks: bool,
    ground_truth: Path | None,
    max_pairs: int,
) -> None:
    """Integrated gradients of every (test contrast, predicted or enriched GO term) pair."""
    from degae_tools import attribute as a

    path = resolve_db(db)
    config = a.AttributeConfig(
        steps=steps,
        rule=rule,
        top_k=top_k,
        batch=batch,
        threshold=threshold,
        max_predicted=max_predicted,
        term_top=term_top,
        rank_by=rank_by,
    )
    result = a.attribute(path, model, config)
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
        n = a.export_gmt(path, result.model_id, gmt, top=gmt_top)
        console.say(f"wrote {n} gene sets to {gmt}")
    if run_checks:
        from degae_tools.validate import ValidateConfig, validate

        checks = validate(
            path,
            model,
            config,
            ValidateConfig(k=top_k, max_pairs=max_pairs),
            ground_truth=ground_truth,
        )
        console.show_table(
            ["check_name", "method", "value", "n"],
            checks.select("check_name", "method", "value", "n").rows(),
            title="validation",
        )
