"""Real signatures through the product: the LINCS L1000 consensus signatures of 1,170 DrugBank
compounds (978 landmark genes, moderated z) imported, labelled with GO, and modelled by every
autoencoder kind the trainer has beside PCA, FastICA and NMF at latent 4 ... 128.

A warehouse is built the way a user builds it (`import-signatures`, `ingest` of a folder of
symlinks to the shared GO files, `enrich`, each a CLI process), then the train, predict,
attribute and validate steps run through their library functions, so every figure lands in the
warehouse's ml.* tables as well as in ``bench/results/real_signatures.json``:

  reconstruction  held-out (test) pooled R² of each autoencoder kind and of PCA, FastICA and NMF
                  (NMF reads |z|: its R² is of another target, printed apart), and a seed
                  ensemble (mean reconstruction, as DeepProfile averages VAEs) of the kind with
                  the best validation R² relative to PCA (chosen without the test split)
  go              macro AUROC / AUPRC on the test split over GO BP/CC/MF terms with >= 10
                  training positives (FWER < 0.05 labels of `enrich`): each model's latent head,
                  ridge on all genes, PCA-logreg at the same size, the label prior, and degae's
                  combinations (chosen on the validation split)
  attribution     integrated gradients (exact rule) of the best kind's head at latent 8: for each
                  (test signature, predicted term) pair, the share of its top 20 genes annotated
                  to the term or a descendant (core.go_annotations_propagated), beside the top 20
                  by |z| and IG through randomised weights (Adebayo et al. 2018)

The split is bench/l1000_explore.py's (rows of the file permuted with seed 0, 70/10/20), stored
as ml.splits `l1000-seed0-70/10/20`, so the figures compare with its 3-fold CV search (which
chose the settings below on the training split only; see bench/results/l1000_explore.json).
Preprocessing is the trainer's: clip ±10 (DataConfig's default for z), standardise per gene on
the training rows.

Run from the repository root: ``nice -n 10 .venv/bin/python bench/real_signatures.py``
(about 40 minutes on 2 shared cores; fits are cached under --work, a rerun reuses them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
SIGNATURES = DATA / "real" / "l1000_drugbank_consensus_signatures.tsv.gz"
GO_FILES = ("go-basic.obo.gz", "gene2go_human.tsv.gz", "human_gene_ids.tsv.gz")
RESULT = ROOT / "bench" / "results" / "real_signatures.json"
COLLECTION = "l1000"
SPLIT_NAME = "l1000-seed0-70/10/20"
SPLIT_SEED = 0
LATENTS = (4, 8, 16, 32, 64, 128)
MIN_POSITIVES = 10
TOP = 20
ATTRIBUTE_LATENT = 8
# The GO head's most epochs (early-stopped on validation with patience 10; the step's default is
# 300 with patience 30, which on 2 shared cores costs a minute per model and 30 models here).
HEAD_EPOCHS = 100
# Per kind, the settings of the explore search's best variants (3-fold CV on the training split):
# one hidden layer of 512, a linear code, Adam 1e-3, batch 64, early stopping on validation. The
# residual kind's are the trainer's product defaults (input noise 0.5, hidden dropout 0.2), the
# search's best ("PCA path frozen + residual 512, dropout 0.2, noise 0.5").
KIND_SETTINGS = {
    "dense": {},
    "sparse": {"l1": 1e-5},
    "denoising": {"noise": 0.5, "dropout": 0.2},
    "variational": {"beta": 0.01},
    "residual": {"noise": 0.5, "hidden_dropout": 0.2},
}
ENSEMBLE_SEEDS = (69, 70, 71)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one run does."""

    work: Path
    latents: tuple[int, ...]
    kinds: tuple[str, ...]
    epochs: int
    patience: int
    ensemble_seeds: tuple[int, ...]
    attribute_latent: int


# --- the warehouse, built as a user builds it ---------------------------------------------------


def cli(*args: str, db: Path) -> float:
    """One degae-tools command in its own process; its wall seconds."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "degae_tools.cli", *args, "--db", str(db)]
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def build_warehouse(work: Path) -> dict[str, Any]:
    """import-signatures, ingest (GO files by symlink), enrich: skipped when already built."""
    db = work / "warehouse.duckdb"
    if db.exists() and (work / "built").exists():
        return json.loads((work / "built").read_text())
    work.mkdir(parents=True, exist_ok=True)
    go_dir = work / "go"
    go_dir.mkdir(exist_ok=True)
    for name in GO_FILES:
        link = go_dir / name
        if not link.exists():
            link.symlink_to(DATA / name)
    seconds = {
        "import_signatures": cli(
            "import-signatures", str(SIGNATURES), "--collection", COLLECTION,
            "--value", "z", "--gene-id", "entrez", db=db,
        ),
        "ingest": cli("ingest", str(go_dir), db=db),
        "enrich": cli("enrich", "--task-runner", "none", db=db),
    }  # fmt: skip
    built = {"seconds": seconds, "db": str(db)}
    (work / "built").write_text(json.dumps(built))
    return built


def store_split(wh) -> dict[str, int]:
    """bench/l1000_explore.py's split (file rows permuted with seed 0, 70/10/20) as ml.splits."""
    import pandas as pd
    import pyarrow as pa

    names = pd.read_csv(SIGNATURES, sep="\t", usecols=[0]).iloc[:, 0].astype(str).to_numpy()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(names))
    n_train, n_val = round(0.7 * len(names)), round(0.1 * len(names))
    split = np.empty(len(names), dtype=object)
    split[order[:n_train]] = "train"
    split[order[n_train : n_train + n_val]] = "validation"
    split[order[n_train + n_val :]] = "test"
    ids = [f"{COLLECTION}:{n}" for n in names]
    rows = pa.table(
        {
            "split_name": [SPLIT_NAME] * len(ids),
            "contrast_id": ids,
            "gse": ids,
            "split": split.tolist(),
        }
    )
    wh.replace_rows("ml.splits", rows, where={"split_name": SPLIT_NAME})
    return {s: int((split == s).sum()) for s in ("train", "validation", "test")}


# --- models ------------------------------------------------------------------------------------


def config_for(kind: str, latent: int, seed: int, plan: Plan):
    """The autoencoder of one (kind, latent, seed) cell."""
    from degae_tools.models.config import AutoencoderConfig, Training

    training = {"epochs": plan.epochs, "early_stopping": True, "patience": plan.patience}
    if "best_weights" in {f.name for f in dataclasses.fields(Training)}:
        training["best_weights"] = True
    return AutoencoderConfig(
        kind=kind,
        neurons=512,
        layers=1,
        latent=latent,
        code_activation="linear",
        batch_size=64,
        learning_rate=1e-3,
        seed=seed,
        collection=COLLECTION,
        value="z",
        **training,
        **KIND_SETTINGS[kind],
    )


def trained(wh, kind: str, latent: int, seed: int, plan: Plan, baselines) -> dict[str, Any]:
    """Train one cell (or reuse its folder and ml rows) and return its reconstruction rows."""
    from degae_tools.steps.train import train

    folder = plan.work / "models" / f"{kind}-k{latent}-s{seed}-e{plan.epochs}p{plan.patience}"
    model_id = stored_model_id(wh, folder)
    seconds = None
    if model_id is None:
        started = time.perf_counter()
        config = config_for(kind, latent, seed, plan)
        # One checkpoint, after the last epoch (the model folder is built from it).
        result = train(
            wh,
            config,
            split_name=SPLIT_NAME,
            model_dir=folder,
            baselines=baselines,
            checkpoint_every=10_000,
        )
        model_id, seconds = result.model_id, time.perf_counter() - started
    rows = wh.frame(
        "SELECT method, split, latent_dim, r2 FROM ml.reconstruction WHERE model_id = $m",
        {"m": model_id},
    )
    metrics = json.loads(
        wh.scalar("SELECT metrics FROM ml.models WHERE model_id = $m", {"m": model_id})
    )
    r2 = {(r["method"], r["split"]): r["r2"] for r in rows.to_dicts()}
    return {
        "kind": kind, "latent": latent, "seed": seed, "model_id": model_id, "folder": str(folder),
        "r2": r2, "epochs_run": metrics.get("epochs_run"), "best_epoch": metrics.get("best_epoch"),
        "train_seconds": seconds if seconds is not None else metrics.get("seconds"),
    }  # fmt: skip


def stored_model_id(wh, folder: Path) -> str | None:
    """The model id of a finished folder whose ml rows are in the warehouse, else None."""
    card = folder / "config.json"
    if not card.exists():
        return None
    model_id = json.loads(card.read_text())["model_id"]
    found = wh.scalar("SELECT count(*) FROM ml.reconstruction WHERE model_id = $m", {"m": model_id})
    return model_id if found else None


def train_all(wh, plan: Plan) -> list[dict[str, Any]]:
    """Every kind at every latent (baselines fitted beside the first kind only)."""
    from degae_tools.models.baselines import BASELINES

    cells = []
    for latent in plan.latents:
        for i, kind in enumerate(plan.kinds):
            cell = trained(
                wh, kind, latent, plan.ensemble_seeds[0], plan, BASELINES if i == 0 else ()
            )
            r2 = cell["r2"][("autoencoder", "test")]
            print(f"  {kind:>11} k={latent:<3} test R² {r2:.4f} ({cell['epochs_run']} epochs)")
            cells.append(cell)
    return cells


def baseline_r2(cells: list[dict[str, Any]], split: str = "test") -> dict[int, dict[str, float]]:
    """{latent: {pca, ica, nmf...: R²}} from the cells that fitted baselines."""
    out: dict[int, dict[str, float]] = {}
    for cell in cells:
        for (method, s), r2 in cell["r2"].items():
            if method != "autoencoder" and s == split:
                out.setdefault(cell["latent"], {})[method] = r2
    return out


def best_kind(cells: list[dict[str, Any]]) -> tuple[str, dict[str, float]]:
    """The kind with the highest mean validation R² / PCA validation R² over latents (the test
    split is not looked at)."""
    pca_val = baseline_r2(cells, "validation")
    ratios: dict[str, list[float]] = {}
    for cell in cells:
        ratio = cell["r2"][("autoencoder", "validation")] / pca_val[cell["latent"]]["pca"]
        ratios.setdefault(cell["kind"], []).append(ratio)
    means = {kind: float(np.mean(r)) for kind, r in ratios.items()}
    return max(means, key=means.get), means


def ensemble(wh, kind: str, latent: int, plan: Plan, test_x: np.ndarray) -> dict[str, Any]:
    """Mean reconstruction of the kind's seeds at one latent; test R², stored in
    ml.reconstruction as method `ensemble<N>` of the first seed's model."""
    import pyarrow as pa

    from degae_tools.models.baselines import score_split
    from degae_tools.models.bundle import load_bundle

    cells = [trained(wh, kind, latent, seed, plan, ()) for seed in plan.ensemble_seeds]
    bundles = [load_bundle(Path(c["folder"])) for c in cells]
    prep = bundles[0].preprocessor

    def mean_reconstruction(x):
        return np.mean([np.asarray(b.autoencoder(x, training=False)) for b in bundles], axis=0)

    mse, r2 = score_split([test_x], prep, mean_reconstruction, [])["autoencoder"]
    method = f"ensemble{len(bundles)}"
    row = {"model_id": cells[0]["model_id"], "method": method, "split": "test",
           "latent_dim": latent, "mse": mse, "r2": r2}  # fmt: skip
    wh.upsert("ml.reconstruction", pa.Table.from_pylist([row]))
    single = [c["r2"][("autoencoder", "test")] for c in cells]
    return {"kind": kind, "latent": latent, "seeds": list(plan.ensemble_seeds), "r2": r2,
            "single_seed_r2": single, "model_id": cells[0]["model_id"]}  # fmt: skip


# --- GO prediction -----------------------------------------------------------------------------


def predict_cell(wh, cell: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The predict step on one model (reused when its ml.go_metrics rows exist): macro AUROC and
    AUPRC of each predictor over terms with >= MIN_POSITIVES training positives."""
    from degae_tools.models.go_config import PredictConfig
    from degae_tools.steps import predict

    n = wh.scalar("SELECT count(*) FROM ml.go_metrics WHERE model_id = $m", {"m": cell["model_id"]})
    if not n:
        config = PredictConfig(
            split_name=SPLIT_NAME, min_positives=MIN_POSITIVES, epochs=HEAD_EPOCHS, patience=10
        )
        predict.run(wh, Path(cell["folder"]), config)
    return macro_of(wh, cell["model_id"])


def macro_of(wh, model_id: str) -> dict[str, dict[str, float]]:
    """{predictor: {auroc, auprc, n_terms}} of the stored macro rows of one model."""
    rows = wh.frame(
        "SELECT predictor, auroc, auprc, "
        "(SELECT count(*) FROM ml.go_metrics t WHERE t.model_id = m.model_id "
        " AND t.predictor = m.predictor AND t.go_id NOT IN ('macro', 'micro') "
        " AND t.auprc IS NOT NULL) AS n_terms "
        "FROM ml.go_metrics m WHERE model_id = $m AND go_id = 'macro'",
        {"m": model_id},
    )
    return {
        r["predictor"]: {k: r[k] for k in ("auroc", "auprc", "n_terms")} for r in rows.to_dicts()
    }


def combinations(wh, cell: dict[str, Any]) -> dict[str, Any]:
    """degae's combinations of the latent code and the genes, each scored on validation and test
    and stored in ml.go_metrics; the one with the best validation macro AUPRC is degae's pick.

    genes_code_ridge       ridge on [standardised z, code]
    genes_magnitude_ridge  ridge on [standardised z, standardised |z|, code]: a signature's GO
                           labels come from its strongest genes up and down, which |z| shows
    head_ridge_rank_mean   the mean of the latent head's and ridge's per-term ranks
    """
    import polars as pl

    from degae_tools.models.go_head import encode, ridge_scores
    from degae_tools.models.go_metrics import macro_auprc, term_metrics
    from degae_tools.steps.predict import head_split, open_predictor

    predictor = open_predictor(wh, Path(cell["folder"]))
    splits = {s: head_split(wh, predictor, s) for s in ("train", "validation", "test")}
    train, val, test = splits["train"], splits["validation"], splits["test"]
    features = combination_features(predictor, {s: d.x for s, d in splits.items()}, encode)

    def ridge(name: str) -> tuple[np.ndarray, np.ndarray]:
        x = features[name]
        both = np.vstack([x["validation"], x["test"]])
        scores, _ = ridge_scores(x["train"], train.y, x["validation"], val.y, both)
        return scores[: len(val.y)], scores[len(val.y) :]

    genes = ridge("genes")
    head = predictor.scores(val.x), predictor.scores(test.x)
    candidates = {
        "genes_code_ridge": ridge("genes_code"),
        "genes_magnitude_ridge": ridge("genes_magnitude_code"),
        "head_ridge_rank_mean": (rank_mean(head[0], genes[0]), rank_mean(head[1], genes[1])),
    }
    val_auprc = {c: macro_auprc(val.y, v) for c, (v, _) in candidates.items()}
    rows = pl.concat(
        [term_metrics(c, predictor.go_ids, train.y, test.y, t) for c, (_, t) in candidates.items()]
    ).with_columns(pl.lit(cell["model_id"]).alias("model_id"))
    wh.upsert("ml.go_metrics", rows)
    val_auprc["genes_ridge"] = macro_auprc(val.y, genes[0])
    chosen = max(candidates, key=val_auprc.get)
    return {"chosen_on_validation": chosen, "validation_macro_auprc": val_auprc}


def combination_features(predictor, raw: dict[str, np.ndarray], encode) -> dict[str, Any]:
    """Per feature set, per split: the model's standardised genes, its code (scaled to the
    genes' total variance), and standardised |z| (clipped as the model clips; train moments)."""
    prep = predictor.preprocessor
    p = {s: prep.transform(x) for s, x in raw.items()}
    codes = {s: encode(predictor.encoder, x) for s, x in p.items()}
    sd = codes["train"].std(axis=0).clip(1e-6)
    codes = {s: c / sd * np.sqrt(p["train"].shape[1] / c.shape[1]) for s, c in codes.items()}
    clip = getattr(prep, "clip", 0.0) or np.inf
    mag = {s: np.abs(np.clip(x, -clip, clip)) for s, x in raw.items()}
    mean, scale = mag["train"].mean(axis=0), mag["train"].std(axis=0).clip(1e-6)
    mag = {s: (m - mean) / scale for s, m in mag.items()}
    return {
        "genes": p,
        "genes_code": {s: np.hstack([p[s], codes[s]]) for s in p},
        "genes_magnitude_code": {s: np.hstack([p[s], mag[s], codes[s]]) for s in p},
    }


def rank_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of the per-term rank fractions of two score matrices (rows: contrasts)."""
    from scipy.stats import rankdata

    return (rankdata(a, axis=0) + rankdata(b, axis=0)) / (2 * len(a))


# --- attribution -------------------------------------------------------------------------------


def attribution_check(wh, cell: dict[str, Any]) -> dict[str, Any]:
    """Attribute the model's test pairs, run the validate step (leading-edge checks), then the
    annotation check: share of the top 20 genes annotated to the term or a descendant, for IG,
    |z| and IG through randomised weights; stored in ml.validation."""
    from degae_tools.models.go_config import AttributeConfig, ValidateConfig
    from degae_tools.steps import attribute, validate

    folder = Path(cell["folder"])
    started = time.perf_counter()
    result = attribute.run(wh, folder, AttributeConfig(top_k=TOP))
    attribute_seconds = time.perf_counter() - started
    validate.run(wh, folder, AttributeConfig(top_k=TOP), ValidateConfig(k=TOP, n_seeds=1))
    fractions = annotation_fractions(wh, cell["model_id"], folder)
    return {"pairs_attributed": result.n_pairs, "completeness_within_5pct": result.completeness_ok,
            "attribute_seconds": attribute_seconds, **fractions}  # fmt: skip


def annotation_fractions(wh, model_id: str, folder: Path) -> dict[str, Any]:
    """Top-20 annotated shares over (test signature, predicted term) pairs."""
    import pyarrow as pa

    from degae_tools.models.integrated_gradients import integrated_gradients, logit_function, top_k
    from degae_tools.steps.predict import head_split, open_predictor
    from degae_tools.steps.validate import randomised

    predictor = open_predictor(wh, folder)
    test = head_split(wh, predictor, "test")
    tops = wh.frame(
        "SELECT g.contrast_id, g.go_id, list(g.gene_index ORDER BY g.rank) AS genes "
        "FROM ml.gene_attributions g "
        "JOIN ml.attribution_pairs p USING (model_id, contrast_id, go_id) "
        "WHERE g.model_id = $m AND p.why IN ('predicted', 'both') AND g.rank <= $k GROUP BY ALL",
        {"m": model_id, "k": TOP},
    ).to_dicts()
    annotated: dict[str, set[int]] = {}
    for gene, go_id in wh.rows("SELECT gene_index, go_id FROM core.go_annotations_propagated"):
        annotated.setdefault(go_id, set()).add(gene)
    row_of = {c: i for i, c in enumerate(test.contrast_ids)}
    term_of = {g: i for i, g in enumerate(predictor.go_ids)}
    rows = np.array([row_of[t["contrast_id"]] for t in tops])
    terms = np.array([term_of[t["go_id"]] for t in tops])
    sets = [annotated.get(t["go_id"], set()) for t in tops]
    ig = [np.asarray(t["genes"]) for t in tops]
    by_z = list(top_k(np.abs(test.x[rows]), TOP, "signed"))
    sample = np.random.default_rng(0).choice(len(tops), min(300, len(tops)), replace=False)
    f_random = logit_function(
        predictor.preprocessor, randomised(predictor.encoder, 0), randomised(predictor.head, 1)
    )
    random_attr = integrated_gradients(
        f_random, test.x, rows[sample], terms[sample], rule="exact", batch=64
    )
    random_top = list(top_k(random_attr, TOP, "signed"))
    n_genes = test.x.shape[1]
    values = {
        "ig": share(ig, sets),
        "abs_z": share(by_z, sets),
        "ig_random_weights": share(random_top, [sets[i] for i in sample]),
        "ig_same_pairs": share([ig[i] for i in sample], [sets[i] for i in sample]),
        "random_genes": float(np.mean([len(s) / n_genes for s in sets])),
    }
    counts = {"ig": len(tops), "abs_z": len(tops), "ig_random_weights": len(sample),
              "ig_same_pairs": len(sample), "random_genes": len(tops)}  # fmt: skip
    detail = f"top {TOP} genes annotated to the predicted term or a descendant; exact IG"
    wh.upsert("ml.validation", pa.Table.from_pylist([
        {"model_id": model_id, "check_name": f"annotated@{TOP}", "method": m, "value": v,
         "n": counts[m], "detail": detail} for m, v in values.items()
    ]))  # fmt: skip
    return {"annotated_share": values, "pairs": counts}


def share(tops: list[np.ndarray], sets: list[set[int]]) -> float:
    """Mean over pairs of the share of the top genes in the pair's annotated set."""
    return float(
        np.mean([len(set(t[:TOP].tolist()) & s) / TOP for t, s in zip(tops, sets, strict=True)])
    )


# --- targets and the table ---------------------------------------------------------------------


def reconstruction_table(cells, ensembles, kind: str) -> list[dict[str, Any]]:
    """Per latent: test R² of every kind, the baselines, the chosen kind's ensemble, and the
    target (above PCA at k <= 16, within 2% of PCA at 32-128) for the ensemble."""
    baselines = baseline_r2(cells)
    table = []
    for latent in sorted(baselines):
        row: dict[str, Any] = {
            "latent": latent,
            **{f"{m}": v for m, v in baselines[latent].items()},
        }
        for cell in cells:
            if cell["latent"] == latent:
                row[cell["kind"]] = cell["r2"][("autoencoder", "test")]
        ens = next((e for e in ensembles if e["latent"] == latent), None)
        best = ens["r2"] if ens else row[kind]
        row["ensemble"] = ens["r2"] if ens else None
        pca = row["pca"]
        bar = pca if latent <= 16 else 0.98 * pca
        row["target"] = {
            "rule": "above PCA" if latent <= 16 else "within 2% of PCA",
            "model": f"{kind} ensemble" if ens else kind,
            "r2": best, "bar": bar, "met": bool(best > bar if latent <= 16 else best >= bar),
            "gap": best - bar, "ratio_to_pca": best / pca,
        }  # fmt: skip
        table.append(row)
    return table


def go_table(go: dict[int, dict[str, Any]], kind: str, combos: dict[int, Any]) -> dict[str, Any]:
    """Per latent: every kind's latent head, PCA-logreg, ridge, prior and the combinations; the
    two GO targets."""
    rows = []
    for latent, per_kind in sorted(go.items()):
        ref = per_kind[kind]
        row = {"latent": latent, "pca_logreg": ref["pca_logreg"], "genes_ridge": ref["genes_ridge"],
               "prior": ref["prior"], "n_terms": ref["genes_ridge"]["n_terms"],
               "latent_head": {k: v["latent_head"] for k, v in per_kind.items()}}  # fmt: skip
        for name in ("genes_code_ridge", "genes_magnitude_ridge", "head_ridge_rank_mean"):
            if name in ref:
                row[name] = ref[name]
        if latent in combos:
            row["combination"] = combos[latent]
        head, pca = ref["latent_head"]["auprc"], ref["pca_logreg"]["auprc"]
        row["target_head_vs_pca_logreg"] = {
            "model": kind, "head_auprc": head, "pca_logreg_auprc": pca,
            "met": bool(head >= pca), "gap": head - pca,
        }  # fmt: skip
        rows.append(row)
    with_combo = [r for r in rows if "combination" in r]
    best_row = max(with_combo, key=lambda r: r["combination"]["validation_auprc"])
    chosen = best_row["combination"]["chosen_on_validation"]
    best = best_row[chosen]["auprc"]
    ridge = best_row["genes_ridge"]["auprc"]
    target = {
        "predictor": f"{chosen} ({kind}, latent {best_row['latent']}; chosen on validation)",
        "auprc": best, "ridge_auprc": ridge, "met": bool(best > ridge), "gap": best - ridge,
    }  # fmt: skip
    return {"by_latent": rows, "target_best_vs_ridge": target}


def ig_target(attribution: dict[str, Any]) -> dict[str, Any]:
    """IG's top-20 annotated share above |z|'s, and at least twice randomised weights' (what
    "far above" is taken to mean here)."""
    s = attribution["annotated_share"]
    return {
        "ig": s["ig"], "abs_z": s["abs_z"], "random_weights": s["ig_random_weights"],
        "ig_on_random_sample": s["ig_same_pairs"],
        "met_vs_abs_z": bool(s["ig"] > s["abs_z"]), "gap_vs_abs_z": s["ig"] - s["abs_z"],
        "met_vs_random": bool(s["ig_same_pairs"] >= 2 * s["ig_random_weights"]),
        "ratio_vs_random": s["ig_same_pairs"] / max(s["ig_random_weights"], 1e-12),
    }  # fmt: skip


def mark(met: bool) -> str:
    return "met" if met else "NOT met"


def print_tables(result: dict[str, Any]) -> None:
    kinds = result["kinds"]
    print(f"\nHeld-out (test) R², {result['sizes']} signatures; best kind on validation: "
          f"{result['best_kind']}")  # fmt: skip
    head = ["k", "PCA", "ICA", *kinds, "ensemble", "target"]
    print(" | ".join(f"{h:>11}" for h in head) + " | NMF(|z|)")
    for row in result["reconstruction"]:
        t = row["target"]
        cells = [row["latent"], row.get("pca"), row.get("ica"), *(row.get(k) for k in kinds),
                 row["ensemble"]]  # fmt: skip
        text = [f"{c:>11.4f}" if isinstance(c, float) else f"{c!s:>11}" for c in cells]
        nmf = row.get("nmf_magnitude", row.get("nmf"))
        nmf_text = f"{nmf:.4f}" if nmf is not None else "-"
        print(" | ".join(text) + f" | {mark(t['met'])} (gap {t['gap']:+.4f}) | {nmf_text}")
    print(f"\nGO macro AUPRC (AUROC) on test, terms with >= {MIN_POSITIVES} training positives")
    for row in result["go"]["by_latent"]:
        heads = ", ".join(f"{k} {v['auprc']:.3f}" for k, v in row["latent_head"].items())
        t = row["target_head_vs_pca_logreg"]
        extra = ""
        if "combination" in row:
            c = row["combination"]["chosen_on_validation"]
            extra = f" | {c} {row[c]['auprc']:.3f}"
        print(f"k={row['latent']:<3} heads: {heads} | PCA-logreg {row['pca_logreg']['auprc']:.3f} "
              f"| ridge {row['genes_ridge']['auprc']:.3f} ({row['genes_ridge']['auroc']:.3f}) "
              f"| prior {row['prior']['auprc']:.3f}{extra} | head>=PCA-logreg: {mark(t['met'])} "
              f"({t['gap']:+.3f})")  # fmt: skip
    t = result["go"]["target_best_vs_ridge"]
    print(f"best GO predictor {t['predictor']}: {t['auprc']:.3f} vs ridge {t['ridge_auprc']:.3f}: "
          f"{mark(t['met'])} ({t['gap']:+.3f})")  # fmt: skip
    ig = result["attribution"]["target"]
    print(f"\nIG top-{TOP} annotated share: IG {ig['ig']:.3f}, |z| {ig['abs_z']:.3f} "
          f"({mark(ig['met_vs_abs_z'])}, {ig['gap_vs_abs_z']:+.3f}); randomised weights "
          f"{ig['random_weights']:.3f} vs IG {ig['ig_on_random_sample']:.3f} on the same pairs "
          f"({mark(ig['met_vs_random'])}, x{ig['ratio_vs_random']:.2f})")  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    """The JSON's tables as Markdown (for docs/real-signatures.md): R², GO and IG."""
    kinds = result["kinds"]
    r2_head = [
        "k",
        "PCA",
        "FastICA",
        *kinds,
        f"{result['best_kind']} ensemble",
        "target",
        "NMF (magnitude)",
    ]
    lines = ["| " + " | ".join(r2_head) + " |", "|" + "---|" * len(r2_head)]
    for row in result["reconstruction"]:
        t = row["target"]
        values = [row.get("pca"), row.get("ica"), *(row.get(k) for k in kinds), row["ensemble"]]
        cells = [f"{v:.3f}" if v is not None else "–" for v in values]
        verdict = f"{t['rule']}: {mark(t['met'])} ({t['gap']:+.3f})"
        nmf = row.get("nmf_magnitude", row.get("nmf"))
        nmf_text = f"{nmf:.3f}" if nmf is not None else "–"
        lines.append(f"| {row['latent']} | " + " | ".join([*cells, verdict, nmf_text]) + " |")
    go_rows = result["go"]["by_latent"]
    combos = [c for c in ("genes_code_ridge", "genes_magnitude_ridge", "head_ridge_rank_mean")
              if any(c in r for r in go_rows)]  # fmt: skip
    head = ["k", *(f"{k} head" for k in kinds), "PCA-logreg", "ridge", "prior", *combos]
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in go_rows:
        cells = [row["latent_head"][k] for k in kinds if k in row["latent_head"]]
        cells += [row["pca_logreg"], row["genes_ridge"], row["prior"]]
        cells += [row.get(c) for c in combos]
        text = [f"{c['auprc']:.3f} ({c['auroc']:.3f})" if c else "–" for c in cells]
        lines.append(f"| {row['latent']} | " + " | ".join(text) + " |")
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------


def parse() -> Plan:
    from degae_tools.models.config import KINDS

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/degae-real-signatures"))
    parser.add_argument("--latents", default=",".join(map(str, LATENTS)))
    parser.add_argument("--kinds", default=",".join(k for k in KIND_SETTINGS if k in KINDS))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--ensemble-seeds", default=",".join(map(str, ENSEMBLE_SEEDS)))
    parser.add_argument("--attribute-latent", type=int, default=ATTRIBUTE_LATENT)
    parser.add_argument(
        "--markdown", action="store_true", help="Print the stored JSON's tables as Markdown."
    )
    a = parser.parse_args()
    if a.markdown:
        print(markdown(json.loads(RESULT.read_text())))
        raise SystemExit(0)
    return Plan(
        work=a.work,
        latents=tuple(int(k) for k in a.latents.split(",")),
        kinds=tuple(a.kinds.split(",")),
        epochs=a.epochs,
        patience=a.patience,
        ensemble_seeds=tuple(int(s) for s in a.ensemble_seeds.split(",")),
        attribute_latent=a.attribute_latent,
    )


def main() -> None:  # long: the run's stages in order
    from degae_tools.models.config import DataConfig
    from warehouse import Warehouse
    from warehouse.export import load_matrix

    plan = parse()
    started = time.perf_counter()
    built = build_warehouse(plan.work)
    stages: dict[str, float] = {"warehouse": time.perf_counter() - started}
    with Warehouse.open(Path(built["db"]), write=True) as wh:
        sizes = store_split(wh)
        t = time.perf_counter()
        cells = train_all(wh, plan)
        kind, val_ratios = best_kind(cells)
        print(f"best kind on validation: {kind} {val_ratios}", flush=True)
        _, test_x = load_matrix(wh, SPLIT_NAME, ["test"], "z")
        ensembles = [ensemble(wh, kind, k, plan, test_x) for k in plan.latents]
        stages["train"] = time.perf_counter() - t
        t = time.perf_counter()
        go: dict[int, dict[str, Any]] = {}
        combos: dict[int, Any] = {}
        for cell in cells:
            go.setdefault(cell["latent"], {})[cell["kind"]] = predict_cell(wh, cell)
            if cell["kind"] == kind:
                combo = combinations(wh, cell)
                go[cell["latent"]][kind] = macro_of(wh, cell["model_id"])
                chosen = combo["chosen_on_validation"]
                combos[cell["latent"]] = {
                    **combo,
                    "validation_auprc": combo["validation_macro_auprc"][chosen],
                }
            head = go[cell["latent"]][cell["kind"]]["latent_head"]["auprc"]
            print(f"  GO {cell['kind']:>11} k={cell['latent']:<3} head {head:.3f}", flush=True)
        stages["go"] = time.perf_counter() - t
        t = time.perf_counter()
        attributed = next(
            c for c in cells if c["kind"] == kind and c["latent"] == plan.attribute_latent
        )
        attribution = attribution_check(wh, attributed)
        attribution["model_id"] = attributed["model_id"]
        attribution["target"] = ig_target(attribution)
        stages["attribution"] = time.perf_counter() - t
    clip = DataConfig(value="z").clip_limit if hasattr(DataConfig, "clip_limit") else None
    result = {
        "data": "shared/data/real/l1000_drugbank_consensus_signatures.tsv.gz (LINCS L1000 "
        "consensus signatures of DrugBank compounds, dhimmel/lincs)",
        "warehouse": built, "split_name": SPLIT_NAME, "split_seed": SPLIT_SEED, "sizes": sizes,
        "preprocessing": f"clip ±{clip} (DataConfig default for z), standardise per gene on train",
        "metric": "pooled R² = 1 - SSE/SST on the test split, standardised units",
        "kinds": list(plan.kinds), "kind_settings": {k: KIND_SETTINGS[k] for k in plan.kinds},
        "network": "978 -> 512 -> k (linear code) -> 512 -> 978; Adam 1e-3, batch 64, early "
        f"stopping on validation (patience {plan.patience}, at most {plan.epochs} epochs)",
        "search": "bench/results/l1000_explore.json (3-fold CV on the training split)",
        "best_kind": kind, "best_kind_validation_ratio_to_pca": val_ratios,
        "models": [{**c, "r2": {f"{m}/{s}": v for (m, s), v in c["r2"].items()}} for c in cells],
        "ensembles": ensembles,
        "reconstruction": reconstruction_table(cells, ensembles, kind),
        "go": go_table(go, kind, combos), "go_min_positives": MIN_POSITIVES,
        "attribution": attribution, "stage_seconds": stages,
        "seconds": time.perf_counter() - started,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average": os.getloadavg()},
    }  # fmt: skip
    RESULT.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print_tables(result)
    print(f"\nwrote {RESULT.relative_to(ROOT)} in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
