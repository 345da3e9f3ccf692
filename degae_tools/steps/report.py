"""One self-contained HTML report of the warehouse and its models (images embedded, inline CSS).

Each section is built from the tables it needs and appears only when they hold rows, so the
report grows as the pipeline runs: warehouse, dimension reduction, models, training, search,
reconstruction, GO prediction, top genes per term.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

from degae_tools import console, plots
from degae_tools.reduce import METHOD_NAMES, STUDY_FIRST_TWO_PCS, components_for, contrast_labels
from warehouse.connect import connect
from warehouse.migrate import read_query

MAX_MODELS = 6
MAX_TERMS = 12
GENES_PER_TERM = 10
BEST_TERMS = 8


@dataclass
class Section:
    """A titled part of the report: an introduction and blocks of HTML (figures and tables)."""

    anchor: str
    title: str
    intro: str = ""
    blocks: list[str] = field(default_factory=list)


class Figures:
    """Turns matplotlib figures into embedded <img> tags (and PNG files when a folder is given)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def embed(self, fig: Any, name: str, caption: str = "") -> str:
        """The figure as an HTML <figure> with a base64 PNG; closes the figure."""
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        png = buffer.getvalue()
        if self.folder is not None:
            (self.folder / f"{name}.png").write_bytes(png)
        data = base64.b64encode(png).decode("ascii")
        alt = html.escape(caption or name)
        text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        return f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">{text}</figure>'


def write_report(
    db_path: str | Path, out_path: str | Path = "report.html", figures_dir: str | Path | None = None
) -> Path:
    """Write the report of the warehouse at `db_path` to `out_path`; returns the path.

    `figures_dir` also saves every figure as a PNG there (for a README or slides).
    """
    from flows.compare import report_section as study_section

    out_path = Path(out_path)
    figures = Figures(Path(figures_dir) if figures_dir is not None else None)
    builders: list[Callable[[duckdb.DuckDBPyConnection, Figures], Section | None]] = [
        warehouse_section,
        reduction_section,
        latent_section,
        models_section,
        training_section,
        search_section,
        reconstruction_section,
        go_prediction_section,
        term_genes_section,
        checks_section,
        study_section,
    ]
    con = connect(db_path)
    try:
        sections = [
            section
            for build in console.progress(builders, total=len(builders), description="report")
            if (section := build(con, figures)) is not None
        ]
    finally:
        con.close()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(render(sections, Path(db_path)), encoding="utf-8")
    return out_path


def warehouse_section(con: duckdb.DuckDBPyConnection, figures: Figures) -> Section | None:
    """Row counts, GEO series included or excluded (and why), and DE/GO steps run or skipped."""
    counts = _rows(con, "report/summary")
    inclusion = _rows(con, "report/inclusion")
    steps = _rows(con, "report/de_go_counts")
    if not inclusion and not any(n for _, n in counts):
        return None
    section = Section(
        "warehouse",
        "Warehouse",
        "What the compendium holds. GEO series are included when they pass the reference "
        "study's criteria (a GEO series matrix, DEE2 runs that pass QC, counts, two or more "
        "groups and a group pair with at least two replicates each); each excluded series is "
        "listed under the first criterion it fails.",
    )
    by_table = dict(counts)
    section.blocks.append(
        _kpis(
            [
                ("GEO series included", by_table.get("core.included_datasets", 0)),
                ("contrasts analysed", by_table.get("core.included_contrasts", 0)),
                ("genes", by_table.get("core.genes", 0)),
                ("GO terms", by_table.get("core.go_terms", 0)),
                ("models", by_table.get("ml.models", 0)),
            ]
        )
    )
    if inclusion:
        fig = plots.plot_counts(
            [r[0] for r in inclusion],
            [r[1] for r in inclusion],
            "GEO series by inclusion outcome",
            "GEO series",
        )
        section.blocks.append(
            _row(
                figures.embed(fig, "inclusion", "GEO series included, and excluded by reason"),
                _table(["outcome", "series", "runs", "contrasts"], inclusion),
            )
        )
    if steps:
        section.blocks.append(
            _titled("DE and GO steps", _table(["step", "status", "reason", "contrasts"], steps))
        )
    section.blocks.append(
        _titled("Rows per table", _table(["table", "rows"], [r for r in counts if r[1]]))
    )
    return section


def reduction_section(con: duckdb.DuckDBPyConnection, figures: Figures) -> Section | None:
    """Explained variance and the PCA/t-SNE pictures of the newest `reduce` run."""
    run = _rows(con, "report/reduce_run")
    if not run:
        return None
    run_id, genes_kept, genes, detail = run[0]
    ratio = [r[1] for r in _rows(con, "report/explained_variance", [run_id])]
    methods = [m for m, _ in _rows(con, "report/embedding_methods", [run_id])]
    if not ratio and not methods:
        return None
    config = json.loads(detail).get("config", {}) if detail else {}
    threshold = config.get("variance_threshold")
    first_two = sum(ratio[:2])
    section = Section(
        "reduction",
        "Dimension reduction",
        f"Run <code>{html.escape(run_id)}</code>: VarianceThreshold "
        f"({'none' if threshold is None else threshold}) kept {int(genes_kept):,} of "
        f"{int(genes or 0):,} genes; PCA on standardised log2 fold changes, then t-SNE "
        f"(perplexity {config.get('perplexity', 50):g}) on the leading components. Points are "
        "contrasts, coloured by their enriched GO term that is most common in the compendium.",
    )
    if ratio:
        needed = components_for(ratio)
        section.blocks.append(
            _callout(
                f"The first two principal components explain <b>{first_two:.1%}</b> of the "
                f"variance (the reference study reported ~{STUDY_FIRST_TWO_PCS:.1%}). "
                + "; ".join(
                    f"{level:.0%} needs {n} components" if n else f"{level:.0%} is not reached"
                    for level, n in needed.items()
                )
                + "."
            )
        )
        fig = plots.plot_explained_variance(ratio)
        section.blocks.append(figures.embed(fig, "pca_explained_variance"))
    pictures = [_embedding_figure(con, figures, run_id, method, ratio) for method in methods]
    section.blocks.append(_grid(pictures))
    return section


def latent_section(con: duckdb.DuckDBPyConnection, figures: Figures) -> Section | None:
    """Autoencoder latent codes projected to 2-D by `reduce` (latent_pca, latent_tsne)."""
    models = [r[0] for r in _rows(con, "report/latent_models", [MAX_MODELS])]
    if not models:
        return None
    section = Section(
        "latent",
        "Latent space",
        "Each autoencoder's latent code (its bottleneck activations per contrast), projected to "
        "two dimensions and coloured like the PCA above: structure by GO term here that PCA "
        "lacks is what the autoencoder learned.",
    )
    for model_id in models:
        methods = [m for m, _ in _rows(con, "report/embedding_methods", [model_id])]
        pictures = [
            _embedding_figure(con, figures, model_id, m) for m in methods if m.startswith("latent_")
        ]
        section.blocks.append(_titled(model_id, _grid(pictures)))
    return section


def models_section(con: duckdb.DuckDBPyConnection, figures: Figures) -> Section | None:
    """Every trained model with its kind, date and headline metrics."""
    models = _rows(con, "report/models")
    if not models:
        return None
    rows = [
        [
            model_id,
            kind,
            _reads(kind, config),
            "yes" if study else "",
            created,
            _short_json(metrics),
        ]
        for model_id, kind, study, created, config, metrics in models
    ]
    return Section(
        "models",
        "Models",
        'Models in the warehouse, newest first. "reads" is the representation an autoencoder was '
        'trained on; "study mode" marks a reproduction of the reference study\'s settings.',
        [_table(["model", "kind", "reads", "study mode", "created", "metrics"], rows)],
    )


def _reads(kind: str, config: str | None) -> str:
    """What an autoencoder reads of each gene: log2FC (signed) or |log2FC|; blank otherwise."""
    if kind == "predictor" or not config:
        return ""
    try:
        values = json.loads(config)
    except ValueError:
        return ""
    if not isinstance(values, dict):
        return ""
    return "|log2FC|" if values.get("representation") == "magnitude" else "log2FC"


def training_section(con: duckdb.DuckDBPyConnection, figures: Figures) -> Section | None:
    """Training and validation loss per epoch of the newest models."""
    rows = _rows(con, "report/history", [MAX_MODELS])
    if not rows:
        return None
    histories: dict[str, list[dict[str, float]]] = {}
    for model_id, epoch, loss, val_loss, rate in rows:
        histories.setdefault(model_id, []).append(
            {"epoch": epoch, "loss": loss, "val_loss": val_loss, "learning_rate": rate}
        )
    pictures = [
        figures.embed(plots.plot_history(h, title=model_id), f"history_{model_id}")
        for model_id, h in histories.items()
    ]
    return Section(
        "training",
        "Training",
        "Loss per epoch on the training and validation splits (series-wise split: no GEO series "
        "in two splits). The reference study's best validation MSE was 0.929 in standardised "
        "units (R² ≈ 0.07).",
        [_grid(pictures)],
    )


def search_section(con: duckdb.DuckDBPyConnection, figures: Figures) -> Section | None:
    """Cross-validated loss of every architecture tried, and the best ones per search."""
    trials = _rows(con, "report/trials")
    if not trials:
        return None
    columns = ["search_id", "trial", "fold", "neurons", "layers", "kind", "val_loss", "seconds"]
    by_search: dict[str, list[dict[str, Any]]] = {}
    for row in trials:
        record = dict(zip(columns, row, strict=True))
        by_search.setdefault(record["search_id"], []).append(record)
    section = Section(
        "search",
        "Architecture search",
        "Held-out loss of each fold against the width and depth of the network (the reference "
        "study's search: every model with two or more layers stayed at 0.9724).",
    )
    for search_id, records in by_search.items():
        pictures = [
            figures.embed(plots.plot_search(records, by=by), f"search_{search_id}_{by}")
            for by in ("neurons", "layers")
            if len({r[by] for r in records}) > 1
        ]
        if pictures:
            section.blocks.append(_grid(pictures))
    best = _rows(con, "report/search_best")
    section.blocks.append(
        _titled(
            "Best architectures",
            _table(["search", "neurons", "layers", "kind", "mean held-out loss", "folds"], best),
        )
    )
    return section


def reconstruction_section(con: duckdb.DuckDBPyConnection, figures: Figures) -> Section | None:
    """Held-out reconstruction R² of each autoencoder beside PCA of the same latent size."""
    rows = _rows(con, "report/reconstruction")
    if not rows:
        return None
    values: dict[str, dict[str, float]] = {}
    for model_id, split, method, _dims, _mse, r2 in rows:
        if r2 is not None:
            values.setdefault(f"{model_id} · {split}", {})[method] = r2
    table = _table(["model", "split", "method", "latent dims", "MSE", "R²"], rows)
    blocks = [table]
    if values:
        fig = plots.plot_grouped_bars(values, "Held-out reconstruction", "R² (higher is better)")
        blocks = [_row(figures.embed(fig, "reconstruction"), table)]
    return Section(
        "reconstruction",
        "Reconstruction: autoencoder vs PCA",
        "How much of each held-out contrast's log2FC vector the model reconstructs, beside PCA "
        "with as many components as the model has latent units. An autoencoder that does not "
        "beat PCA has learned nothing a linear projection would not.",
        blocks,
    )


def go_prediction_section(con: duckdb.DuckDBPyConnection, figures: Figures) -> Section | None:
    """GO-term prediction from the latent code against the baselines, and the best terms."""
    rows = _rows(con, "report/go_metrics")
    if not rows:
        return None
    section = Section(
        "go-prediction",
        "GO prediction",
        "Predicting each contrast's enriched GO terms on held-out series. AUROC 0.5 is chance; "
        "baselines (term frequency, PCA + logistic regression, linear on genes) show what the "
        "latent code adds.",
    )
    per_model: dict[str, dict[str, dict[str, float]]] = {}
    for model_id, predictor, average, auroc, auprc, _n in rows:
        if average == "macro":
            bars = per_model.setdefault(model_id, {}).setdefault(predictor, {})
            bars.update({"AUROC (macro)": auroc, "AUPRC (macro)": auprc})
    pictures = [
        figures.embed(
            plots.plot_grouped_bars(
                values, model_id, "score", reference=0.5, reference_label="chance AUROC"
            ),
            f"go_metrics_{model_id}",
            f"{model_id}: macro averages over GO terms",
        )
        for model_id, values in per_model.items()
    ]
    table = _table(["model", "predictor", "average", "AUROC", "AUPRC", "terms"], rows)
    section.blocks.append(_row(_grid(pictures), table) if pictures else table)
    best = _rows(con, "report/go_best_terms", [BEST_TERMS])
    if best:
        section.blocks.append(
            _titled(
                "Best-predicted terms of the best predictor",
                _table(
                    [
                        "model",
                        "predictor",
                        "GO term",
                        "name",
                        "train +",
                        "test +",
                        "AUROC",
                        "AUPRC",
                    ],
                    best,
                ),
            )
        )
    return section


def term_genes_section(con: duckdb.DuckDBPyConnection, figures: Figures) -> Section | None:
    """The genes integrated gradients credit most for each GO term's prediction."""
    rows = _rows(con, "report/term_genes", [MAX_TERMS, GENES_PER_TERM])
    if not rows:
        return None
    terms: dict[tuple[str, str], dict[str, Any]] = {}
    for model_id, go_id, name, n_pairs, rank, symbol, gene_id, attribution, frac in rows:
        term = terms.setdefault((model_id, go_id), {"name": name, "n": n_pairs, "rows": []})
        term["rows"].append((rank, symbol, gene_id, attribution, frac))
    cards = []
    for (model_id, go_id), term in terms.items():
        heading = (
            f"<h4>{html.escape(term['name'] or go_id)}</h4>"
            f'<p class="meta">{html.escape(go_id)} · {html.escape(model_id)} · '
            f"{term['n']:,} contrast–term pairs</p>"
        )
        table = _gene_table(term["rows"])
        cards.append(f'<div class="card">{heading}{table}</div>')
    return Section(
        "term-genes",
        "Top genes per GO term",
        "Integrated gradients of each predicted term with respect to the input log2FC, averaged "
        'over the contrasts where the term was predicted or enriched; "top-k share" is how often '
        "the gene was among the k most attributed genes.",
        [f'<div class="cards">{"".join(cards)}</div>'],
    )


def checks_section(con: duckdb.DuckDBPyConnection, figures: Figures) -> Section | None:
    """Every rerunnable check stored in ml.validation (precision@k, Jaccard, completeness, ...)."""
    rows = _rows(con, "report/validation")
    if not rows:
        return None
    shown = [[m, c, method, v, n, _short_json(d)] for m, c, method, v, n, d in rows]
    return Section(
        "checks",
        "Checks",
        "Checks of the models and their attributions that anyone can rerun from the warehouse.",
        [_table(["model", "check", "method", "value", "n", "detail"], shown)],
    )


def render(sections: Sequence[Section], db_path: Path) -> str:
    """The whole HTML document."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>'
        + (f'<p class="intro">{s.intro}</p>' if s.intro else "")
        + "".join(s.blocks)
        + "</section>"
        for s in sections
    )
    if not sections:
        body = (
            '<section><h2>Nothing to report yet</h2><p class="intro">The warehouse has no rows. '
            "Run <code>degae-tools simulate</code> or <code>degae-tools ingest</code> first.</p>"
            "</section>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>degae report</title><style>{CSS}</style></head><body>"
        '<header><div class="wrap"><h1>degae report</h1>'
        "<p>Differential expression, GO enrichment and autoencoders over a public RNA-seq "
        f"compendium · warehouse <code>{html.escape(str(db_path))}</code> · {now} · "
        f"degae {html.escape(_version())}</p>"
        f"<nav>{nav}</nav></div></header>"
        f'<main class="wrap">{body}</main>'
        '<footer class="wrap">Generated by <code>degae-tools report</code>. Every number above '
        "is a query away: <code>degae-tools sql</code>.</footer></body></html>\n"
    )


def report_sections(text: str) -> dict[str, dict[str, int]]:
    """Images and tables per section of a written report, keyed by section anchor (for checks)."""
    parser = _SectionCounter()
    parser.feed(text)
    return parser.sections


class _SectionCounter(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, int]] = {}
        self.current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.current = dict(attrs).get("id") or f"section-{len(self.sections) + 1}"
            self.sections[self.current] = {"img": 0, "table": 0}
        elif tag in ("img", "table") and self.current is not None:
            self.sections[self.current][tag] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.current = None


def _embedding_figure(
    con: duckdb.DuckDBPyConnection,
    figures: Figures,
    model_id: str,
    method: str,
    ratio: Sequence[float] = (),
) -> str:
    rows = _rows(con, "report/embedding", [model_id, method])
    ids = [r[0] for r in rows]
    coords = [[r[1], r[2] if r[2] is not None else 0.0] for r in rows]
    labels, legend = contrast_labels(con, ids, "top_go")
    name = METHOD_NAMES.get(method, method)
    short = METHOD_NAMES.get(method.removeprefix("latent_"), name)
    axes = (f"{short} 1", f"{short} 2")
    if short == "PCA":
        axes = ("PC1", "PC2")
        if method == "pca" and len(ratio) >= 2:
            axes = (f"PC1 ({ratio[0]:.1%} of variance)", f"PC2 ({ratio[1]:.1%})")
    title = f"{name} ({len(ids):,} contrasts)"
    fig = plots.plot_embedding(coords, labels, title, axis_labels=axes, legend_title=legend)
    return figures.embed(fig, f"{model_id}_{method}")


def _gene_table(rows: Sequence[tuple]) -> str:
    top = max((r[3] or 0.0 for r in rows), default=0.0) or 1.0
    body = "".join(
        f'<tr><td class="num">{rank}</td>'
        f'<td><b>{html.escape(symbol or "")}</b> <span class="id">{html.escape(gene_id or "")}'
        f"</span></td>"
        f'<td class="bar"><span style="width:{100 * (value or 0.0) / top:.0f}%"></span>'
        f"<em>{_number(value)}</em></td>"
        f'<td class="num">{_number(frac, "{:.0%}")}</td></tr>'
        for rank, symbol, gene_id, value, frac in rows
    )
    head = "<tr><th>#</th><th>gene</th><th>mean |attribution|</th><th>top-k</th></tr>"
    table = f'<table class="genes"><thead>{head}</thead><tbody>{body}</tbody></table>'
    return f'<div class="table">{table}</div>'


def _number(value: float | None, fmt: str = "{:.3g}") -> str:
    return "–" if value is None else fmt.format(value)


def _rows(con: duckdb.DuckDBPyConnection, query: str, params: list | None = None) -> list[list]:
    return [list(r) for r in con.execute(read_query(query), params or []).fetchall()]


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="table">{table}</div>'


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '<td class="num muted">–</td>'
    if isinstance(value, bool):
        return f"<td>{'yes' if value else ''}</td>"
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>'
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, datetime):
        return f"<td>{value:%Y-%m-%d %H:%M}</td>"
    return f"<td>{html.escape(str(value))}</td>"


def _kpis(items: Sequence[tuple[str, int]]) -> str:
    cells = "".join(
        f'<div class="kpi"><span class="value">{int(v):,}</span><span class="label">'
        f"{html.escape(label)}</span></div>"
        for label, v in items
    )
    return f'<div class="kpis">{cells}</div>'


def _callout(text: str) -> str:
    return f'<p class="callout">{text}</p>'


def _titled(title: str, block: str) -> str:
    return f"<h3>{html.escape(title)}</h3>{block}"


def _grid(blocks: Sequence[str]) -> str:
    return f'<div class="grid">{"".join(blocks)}</div>'


def _row(left: str, right: str) -> str:
    return f'<div class="row"><div>{left}</div><div>{right}</div></div>'


def _short_json(text: str | None, width: int = 90) -> str:
    if not text:
        return ""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text[:width]
    if isinstance(value, dict):
        parts = [f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in value.items()]
        text = ", ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def _version() -> str:
    try:
        return metadata.version("degae")
    except metadata.PackageNotFoundError:
        return "(source tree)"


CSS = """
:root { --ink: #1d2733; --muted: #5f6b7a; --line: #e3e7ec; --bg: #f5f7fa; --accent: #0b7285;
        --card: #ffffff; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
       Arial, sans-serif; color: var(--ink); background: var(--bg); }
.wrap { max-width: 1180px; margin: 0 auto; padding: 0 28px; }
header { background: linear-gradient(120deg, #0b3d52, #0b7285); color: #fff; padding: 28px 0 0; }
header h1 { margin: 0 0 4px; font-size: 28px; letter-spacing: -0.01em; }
header p { margin: 0 0 18px; color: #d3eef3; font-size: 14px; }
header code { background: rgba(255,255,255,0.12); color: #fff; }
nav { display: flex; flex-wrap: wrap; gap: 6px; padding-bottom: 14px; }
nav a { color: #fff; text-decoration: none; font-size: 13px; padding: 4px 12px;
        border-radius: 999px; background: rgba(255,255,255,0.14); }
nav a:hover { background: rgba(255,255,255,0.28); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
          padding: 22px 26px 26px; margin: 24px 0; box-shadow: 0 1px 2px rgba(16,24,40,0.04); }
h2 { margin: 0 0 6px; font-size: 21px; color: #0b3d52; }
h3 { margin: 22px 0 8px; font-size: 15px; color: var(--muted); text-transform: uppercase;
     letter-spacing: 0.04em; }
h4 { margin: 0; font-size: 15px; }
p.intro { margin: 0 0 16px; color: var(--muted); max-width: 860px; }
p.meta { margin: 2px 0 8px; color: var(--muted); font-size: 12px; }
p.callout { border-left: 4px solid var(--accent); background: #e6f4f6; padding: 10px 14px;
            border-radius: 0 6px 6px 0; margin: 0 0 16px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #eef1f4;
       padding: 1px 5px; border-radius: 4px; }
figure { margin: 0 0 12px; }
figure img { max-width: 100%; height: auto; display: block; border-radius: 6px; }
figcaption { font-size: 12px; color: var(--muted); margin-top: 4px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 18px; }
.row { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 24px;
       align-items: start; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px;
        margin: 4px 0 20px; }
.kpi { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; background: #fafbfc; }
.kpi .value { display: block; font-size: 24px; font-weight: 650; color: #0b3d52; }
.kpi .label { font-size: 12px; color: var(--muted); text-transform: uppercase;
              letter-spacing: 0.04em; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 16px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.id { display: block; color: var(--muted); font-size: 11px; }
td.bar { position: relative; width: 40%; }
td.bar span { position: absolute; left: 10px; top: 7px; bottom: 7px; max-width: calc(100% - 20px);
              background: #c5e3e8; border-radius: 3px; }
td.bar em { position: relative; font-style: normal; font-variant-numeric: tabular-nums;
            padding-left: 4px; }
.table { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th { text-align: left; font-weight: 600; color: var(--muted); border-bottom: 2px solid var(--line);
     padding: 6px 10px; white-space: nowrap; }
td { padding: 5px 10px; border-bottom: 1px solid var(--line); vertical-align: top;
     white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.muted { color: #adb5bd; }
footer { color: var(--muted); font-size: 12px; padding: 8px 28px 40px; }
@media (max-width: 800px) { .row { grid-template-columns: 1fr; }
  .grid { grid-template-columns: 1fr; } }
"""
