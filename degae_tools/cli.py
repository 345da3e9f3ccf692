"""`degae-tools`: a thin Click skin over the library; every command calls one library function."""

from __future__ import annotations

import errno
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from degae_tools import console
from degae_tools.attribute_config import RULES
from degae_tools.errors import DegaeError

db_option = click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Warehouse file (default: $DEGAE_DB, then warehouse/degae.duckdb).",
)


def resolve_db(db: Path | None) -> Path:
    """The warehouse path a command uses: `--db`, else `$DEGAE_DB`, else the default."""
    from warehouse import default_db_path

    return db if db is not None else default_db_path()


# A write refused by the disk: full, over the file-size limit or quota, or a read-only mount.
STORAGE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS)


def storage_error(exc: BaseException) -> str | None:
    """One line on a write the disk refused (what it said, and what to do), or None when `exc`
    is something else."""
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        detail = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
        read_only = exc.errno == errno.EROFS
    else:
        duckdb = sys.modules.get("duckdb")  # loaded already if DuckDB raised it
        if duckdb is None or not isinstance(exc, duckdb.IOException):
            return None
        detail = str(exc)
        read_only = "read-only file system" in detail.lower()
    if read_only:
        advice = "Point it at a writable place (--db, --model-dir, --out) and run it again."
    else:
        advice = "Free space (or raise the file-size limit) and run the same command again."
    return f"could not write to disk ({detail}). {advice}"


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a DegaeError, or a write the disk refused, into one clear line on stderr and exit
    status 2, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DegaeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except Exception as exc:
            message = storage_error(exc)
            if message is None:
                raise
            click.echo(f"error: {message}", err=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--quiet", is_flag=True, help="No progress bars or chatter.")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON (for scripts).")
@click.version_option(package_name="degae")
def main(quiet: bool, as_json: bool) -> None:
    """degae: a DuckDB warehouse of limma DE and GO-enrichment results, and autoencoders on it."""
    console.mode.quiet = quiet
    console.mode.json = as_json


@main.command()
@db_option
@friendly_errors
def init(db: Path | None) -> None:
    """Create the warehouse (or bring it up to date): schemas raw, core, ml and their views."""
    import warehouse

    path = resolve_db(db)
    con = warehouse.connect(path, write=True)
    applied = warehouse.migrate(con)
    con.close()
    console.show_record({"warehouse": str(path), "sql_files_applied": len(applied)})


@main.command()
@click.argument("query")
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "parquet"]),
    default="table",
    show_default=True,
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.option("--write", is_flag=True, help="Allow the query to change the warehouse.")
@click.option("--limit", default=50, show_default=True, help="Rows shown as a table (0: all).")
@friendly_errors
def sql(query: str, db: Path | None, fmt: str, out: Path | None, write: bool, limit: int) -> None:
    """Run QUERY on the warehouse (read-only unless --write) and print or export the result."""
    from warehouse.query import run_query

    run_query(resolve_db(db), query, fmt=fmt, out=out, write=write, limit=limit)


# Commands below are grouped by the module they call. Each block is owned by one module's author.

# --- simulate / ingest ---


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--datasets", default=200, show_default=True, help="GEO series to simulate.")
@click.option("--genes", default=5000, show_default=True, help="Genes (the study: 48,978).")
@click.option("--go-terms", default=800, show_default=True, help="Synthetic GO terms.")
@click.option("--seed", default=1, show_default=True)
@click.option("--ontology", type=click.Path(exists=True, path_type=Path), help="A real OBO.")
@click.option(
    "--annotations", type=click.Path(exists=True, path_type=Path), help="Real GAF or gene2go."
)
@friendly_errors
def simulate(
    out_dir: Path,
    datasets: int,
    genes: int,
    go_terms: int,
    seed: int,
    ontology: Path | None,
    annotations: Path | None,
) -> None:
    """Write a simulated mouse compendium (DEE2, GEO, counts, GO) to OUT_DIR, with ground truth."""
    from degae_tools.sources.simulate import SimulationConfig
    from degae_tools.sources.simulate import simulate as run

    config = SimulationConfig(
        datasets=datasets,
        genes=genes,
        go_terms=go_terms,
        seed=seed,
        ontology=ontology,
        annotations=annotations,
    )
    summary = run(out_dir, config)
    console.show_record(
        {k: v for k, v in vars(summary).items() if not k.startswith("_")}, "simulated"
    )


@main.command()
@click.argument("source_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@db_option
@click.option(
    "--mode",
    type=click.Choice(["degae", "study"]),
    default="degae",
    show_default=True,
    help="Group rule: every value a group vs the control (degae), or first value vs rest (study).",
)
@click.option("--min-replicates", default=2, show_default=True)
@click.option("--no-prefect", is_flag=True, help="Run without Prefect (no flow run recorded).")
@friendly_errors
def ingest(
    source_dir: Path, db: Path | None, mode: str, min_replicates: int, no_prefect: bool
) -> None:
    """Load SOURCE_DIR (DEE2 metadata and counts, GEO series matrices, GO) into the warehouse."""
    from flows.ingest import ingest as run
    from flows.ingest import ingest_flow

    path = resolve_db(db)
    if no_prefect:
        summary = run(source_dir, path, mode, min_replicates).as_dict()
    else:
        summary = ingest_flow(str(source_dir), str(path), mode, min_replicates)
    errors = summary.pop("errors")
    warnings = summary.pop("warnings")  # a Prefect run has logged them already
    console.show_record(summary, "ingest")
    for line in errors + ([f"warning: {w}" for w in warnings] if no_prefect else []):
        click.echo(line, err=True)
    show_summary(path)


def show_summary(path: Path) -> None:
    """Row counts of the main tables."""
    from warehouse.query import run_query

    if not console.mode.json:
        run_query(path, "SELECT * FROM core.summary", limit=0)


# --- de / enrich ---

task_runner_option = click.option(
    "--task-runner",
    type=click.Choice(["thread", "dask", "none"]),
    default="thread",
    show_default=True,
    help="Prefect task runner; dask fans out on prefect-dask ($DEGAE_DASK_ADDRESS or local).",
)


@main.command()
@db_option
@click.option("--prior-count", default=0.5, show_default=True, help="log2-CPM prior count.")
@click.option(
    "--input",
    "input_kind",
    type=click.Choice(["counts", "raw"]),
    default="counts",
    show_default=True,
    help="counts: limma on log2-CPM; raw: on raw counts, as the reference study did.",
)
@click.option("--voom", is_flag=True, help="voom precision weights.")
@click.option("--chunk-size", default=25, show_default=True, help="Series per transaction.")
@task_runner_option
@friendly_errors
def de(
    db: Path | None,
    prior_count: float,
    input_kind: str,
    voom: bool,
    chunk_size: int,
    task_runner: str,
) -> None:
    """limma for every included contrast without results (lmFit, contrasts.fit, eBayes)."""
    from degae_tools.limma import DEConfig
    from flows.differential import differential, differential_flow, runner

    path = resolve_db(db)
    if task_runner == "none":
        config = DEConfig(prior_count=prior_count, input=input_kind, voom=voom)
        summary = differential(path, config, chunk_size).as_dict()
    else:
        summary = differential_flow.with_options(task_runner=runner(task_runner))(
            str(path), prior_count, input_kind, voom, chunk_size
        )
    console.show_record(summary, "differential expression")


@main.command()
@db_option
@click.option("--candidate-p", default=0.05, show_default=True, help="DE genes: adj.P.Val below.")
@click.option("--min-size", default=5, show_default=True, help="Smallest term (tested genes).")
@click.option("--max-size", default=500, show_default=True, help="Largest term (tested genes).")
@click.option("--n-randsets", default=100, show_default=True, help="Random sets for the FWER.")
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--keep",
    type=click.Choice(["fwer_over", "fwer_either", "fdr_over", "p_over", "all"]),
    default="fwer_over",
    show_default=True,
    help="Rows stored: fwer_over stores every term with p_over < 0.05 (labels use FWER < 0.05); "
    "fwer_either is the study's FWER over- or under-representation < 0.05.",
)
@task_runner_option
@friendly_errors
def enrich(
    db: Path | None,
    candidate_p: float,
    min_size: int,
    max_size: int,
    n_randsets: int,
    seed: int,
    keep: str,
    task_runner: str,
) -> None:
    """GO enrichment of every contrast's DE genes (hypergeometric, BH FDR, GOfuncR-style FWER)."""
    from degae_tools.enrichment import EnrichmentConfig
    from flows.differential import runner
    from flows.enrichment import enrichment, enrichment_flow

    path = resolve_db(db)
    if task_runner == "none":
        config = EnrichmentConfig(
            candidate_p=candidate_p,
            min_size=min_size,
            max_size=max_size,
            n_randsets=n_randsets,
            seed=seed,
            keep=keep,
        )
        summary = enrichment(path, config).as_dict()
    else:
        summary = enrichment_flow.with_options(task_runner=runner(task_runner))(
            str(path), candidate_p, min_size, max_size, n_randsets, seed, keep
        )
    console.show_record(summary, "GO enrichment")


@main.command("import-de")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--contrast", "contrast_id", required=True, help="The contrast the table belongs to.")
@db_option
@friendly_errors
def import_de(files: tuple[Path, ...], contrast_id: str, db: Path | None) -> None:
    """Load limma topTable exports (R column names) as a contrast's DE results."""
    _import_results(files, contrast_id, db, "toptable")


@main.command("import-go")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--contrast", "contrast_id", required=True, help="The contrast the table belongs to.")
@db_option
@friendly_errors
def import_go(files: tuple[Path, ...], contrast_id: str, db: Path | None) -> None:
    """Load GOfuncR go_enrich()$results tables as a contrast's GO enrichment."""
    _import_results(files, contrast_id, db, "gofuncr")


def _import_results(files: tuple[Path, ...], contrast_id: str, db: Path | None, kind: str) -> None:
    from warehouse.load import import_results

    reports = import_results(resolve_db(db), files, contrast_id, kind)
    console.show_table(
        ["file", "status", "rows", "rows rejected"],
        [[r.path, r.status, r.n_rows, r.n_rejected] for r in reports],
    )
    failed = [r for r in reports if r.status == "rejected"]
    for r in failed:
        click.echo(f"error: {r.message}", err=True)
    if failed:
        sys.exit(2)


# --- train / search ---


def _int_list(text: str) -> tuple[int, ...]:
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

    config = SearchConfig(neurons=_int_list(neurons), layers=_int_list(layers), **fields)
    result = run_search(resolve_db(db), config, search_id=search_id, plot_dir=plot_dir)
    summary = summarise(result.trials)
    columns = ["trial", "neurons", "layers", "folds", "mean_val_loss", "sd_val_loss"]
    console.show_table(columns, [[r[c] for c in columns] for r in summary], title=result.search_id)
    console.say(f"plots: {', '.join(str(p) for p in result.plots)}")


# --- predict / attribute ---


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


# --- reduce / report ---


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
        layers=_int_list(layers),
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


# --- refresh / fetch ---


@main.command("export")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@db_option
@click.option("--table", "tables", multiple=True, help="A table to export (default: all).")
@friendly_errors
def export_tables(out_dir: Path, db: Path | None, tables: tuple[str, ...]) -> None:
    """Parquet exports for other engines: DE/GO results by series, ml tables by model."""
    import warehouse
    from warehouse.parquet import export_parquet

    con = warehouse.connect(resolve_db(db))
    try:
        rows = export_parquet(con, out_dir, list(tables))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    finally:
        con.close()
    console.show_table(["table", "rows"], sorted(rows.items()))


@main.command()
@click.argument("source_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@db_option
@click.option("--retrain", is_flag=True, help="Retrain, predict and attribute when results change.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Write the report.")
@click.option(
    "--serve",
    "cron",
    default=None,
    help="Instead of running once, register the scheduled deployment refresh/nightly with this "
    "cron schedule (e.g. '0 3 * * *') and serve its runs (needs PREFECT_API_URL of a server).",
)
@friendly_errors
def refresh(
    source_dir: Path, db: Path | None, retrain: bool, report_path: str | None, cron: str | None
) -> None:
    """The whole pipeline once (ingest → DE → GO → retrain → report), only for what is new."""
    from flows.refresh import refresh_flow, serve

    path = str(resolve_db(db).resolve())
    source = str(source_dir.resolve())
    if cron:
        serve(source, path, cron, retrain=retrain, report=report_path)
        return
    result = refresh_flow(source, path, retrain=retrain, report=report_path)
    console.show_record(result, "refresh")


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--species", default="mmusculus", show_default=True, help="DEE2 species.")
@click.option("--series", multiple=True, help="GEO series to fetch (repeatable).")
@click.option(
    "--series-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file of GEO series, one per line.",
)
@click.option(
    "--max-runs-per-request", default=100, show_default=True, help="Runs per DEE2 request."
)
@click.option("--retries", default=4, show_default=True, help="Tries after the first.")
@click.option("--backoff", "backoff_s", default=1.0, show_default=True, help="First wait (s).")
@click.option("--timeout", "timeout_s", default=60.0, show_default=True, help="Per request (s).")
@click.option(
    "--dee2-url",
    envvar="DEGAE_DEE2_URL",
    show_envvar=True,
    default="http://dee2.io",
    show_default=True,
)
@click.option(
    "--geo-url",
    envvar="DEGAE_GEO_URL",
    show_envvar=True,
    default="https://ftp.ncbi.nlm.nih.gov",
    show_default=True,
)
@click.option("--refresh-metadata", is_flag=True, help="Download the species metadata again.")
@friendly_errors
def fetch(
    out_dir: Path,
    species: str,
    series: tuple[str, ...],
    series_file: Path | None,
    max_runs_per_request: int,
    retries: int,
    backoff_s: float,
    timeout_s: float,
    dee2_url: str,
    geo_url: str,
    refresh_metadata: bool,
) -> None:
    """Download DEE2 metadata and runs, and GEO series matrices, into OUT_DIR (for `ingest`)."""
    from degae_tools.sources.fetch import FetchConfig, read_series_file
    from degae_tools.sources.fetch import fetch as run_fetch

    config = FetchConfig(
        species=species,
        series=series + (read_series_file(series_file) if series_file else ()),
        max_runs_per_request=max_runs_per_request,
        retries=retries,
        backoff_s=backoff_s,
        timeout_s=timeout_s,
        dee2_url=dee2_url,
        geo_url=geo_url,
        refresh_metadata=refresh_metadata,
    )
    summary = run_fetch(out_dir, config)
    record = summary.as_dict()
    if not console.mode.json:
        for key in ("fetched", "up_to_date", "failed"):
            record[key] = len(record[key])
    console.show_record(record, "fetch")
    if summary.failed and not console.mode.json:
        console.show_table(("series", "reason"), sorted(summary.failed.items()), title="failed")
    if summary.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
