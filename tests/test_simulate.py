"""The simulated compendium: real formats, a design the pipeline can recover, a truthful truth."""

from __future__ import annotations

import gzip
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from degae_tools.errors import DegaeError
from degae_tools.groups import contrasts, infer_groups
from degae_tools.sources import dee2, gaf, geo, obo
from degae_tools.sources.simulate import (
    METADATA_HEADER,
    SimulationConfig,
    simulate,
    slug,
)
from tests.helpers import SHARED_DATA

SHARED = SHARED_DATA
TINY = SimulationConfig(datasets=12, genes=300, go_terms=60, seed=7, long_format_fraction=0.2)
CONTROLS = {"wild type", "vehicle", "control"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    simulate(out, TINY)
    return out


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough series (small ones) for the rare cases to occur."""
    out = tmp_path_factory.mktemp("many")
    config = SimulationConfig(
        datasets=150, genes=120, go_terms=40, seed=3, superseries_fraction=0.05
    )
    simulate(out, config)
    return out


def truth(out: Path) -> pl.DataFrame:
    return pl.read_csv(
        out / "ground_truth" / "perturbations.tsv", separator="\t", infer_schema=False
    ).with_columns(pl.col("true_log2fc").cast(pl.Float64), pl.col("go_id").fill_null(""))


def metadata(out: Path) -> pl.DataFrame:
    return pl.concat(list(dee2.iter_metadata(out / "mmusculus_metadata.tsv.cut")))


def counts_of(out: Path, gse: str) -> dee2.CountMatrix:
    wide = out / "counts" / f"{gse}_GeneCountMatrix.tsv.gz"
    return dee2.read_count_matrix(wide if wide.exists() else out / "counts" / f"{gse}.long.tsv.gz")


def groups_of(out: Path, gse: str) -> dict[str, list[int]]:
    """Column positions of each group the pipeline's group rule finds, read from GEO alone."""
    series = geo.read_series_matrix(out / "geo" / f"{gse}_series_matrix.txt.gz")
    position = {gsm: i for i, gsm in enumerate(series.samples["gsm"])}
    grouping = infer_groups(series.characteristics, gse=gse)
    return {label: [position[g] for g in gsms] for label, gsms in grouping.groups.items()}


def first_line(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        return handle.readline().rstrip("\n")


def test_writes_every_file_with_the_real_headers(tiny: Path) -> None:
    assert first_line(tiny / "mmusculus_metadata.tsv.cut") == "\t".join(METADATA_HEADER)
    assert first_line(tiny / "GeneInfo.tsv") == (
        "GeneID\tGeneSymbol\tmean\tmedian\tlongest_isoform\tmerged"
    )
    assert first_line(tiny / "go" / "go-basic.obo.gz") == "format-version: 1.2"
    assert first_line(tiny / "go" / "annotations.gaf.gz") == "!gaf-version: 2.2"
    assert first_line(tiny / "ground_truth" / "perturbations.tsv") == (
        "gse\tgroup_a\tgroup_b\tcontrast_id\tgo_id\tgene_id\ttrue_log2fc"
    )
    wide = sorted((tiny / "counts").glob("*_GeneCountMatrix.tsv.gz"))
    long = sorted((tiny / "counts").glob("*.long.tsv.gz"))
    assert wide and long
    assert first_line(wide[0]).startswith("GeneID\tSRR")
    assert first_line(long[0]) == "SRR_accession\tGeneID\tcount"
    matrices = sorted((tiny / "geo").glob("GSE*_series_matrix.txt.gz"))
    assert len(matrices) == len(wide) + len(long) == TINY.datasets
    assert first_line(matrices[0]).startswith('!Series_title\t"')
    assert (tiny / "README.md").exists() and (tiny / "ground_truth" / "README.md").exists()


def test_every_file_reads_back_through_the_ingest_readers(tiny: Path) -> None:
    rejected: list = []
    runs = pl.concat(
        list(dee2.iter_metadata(tiny / "mmusculus_metadata.tsv.cut", on_reject=rejected.append))
    )
    genes = dee2.read_gene_info(tiny / "GeneInfo.tsv")
    ontology = obo.read_obo(tiny / "go" / "go-basic.obo.gz")
    annotations = pl.concat(
        list(gaf.iter_gaf(tiny / "go" / "annotations.gaf.gz", on_reject=rejected.append))
    )
    assert rejected == []
    assert genes.height == TINY.genes and genes["symbol"].is_unique().all()
    assert ontology.terms.filter(~pl.col("is_obsolete")).height == TINY.go_terms
    assert set(annotations["symbol"]) <= set(genes["symbol"])
    for gse in runs["gse"].drop_nulls().unique():
        matrix = counts_of(tiny, gse)
        series = geo.read_series_matrix(tiny / "geo" / f"{gse}_series_matrix.txt.gz")
        assert matrix.gene_ids == genes["gene_id"].to_list()
        assert matrix.runs == runs.filter(pl.col("gse") == gse)["srr"].to_list()
        assert series.samples["gsm"].to_list() == runs.filter(pl.col("gse") == gse)["gsm"].to_list()


def test_same_seed_gives_the_same_bytes(tiny: Path, tmp_path: Path) -> None:
    simulate(tmp_path, TINY)
    ours = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file())
    again = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert ours == again
    assert all((tiny / p).read_bytes() == (tmp_path / p).read_bytes() for p in ours)


def test_another_seed_gives_other_data(tiny: Path, tmp_path: Path) -> None:
    simulate(tmp_path, replace(TINY, datasets=1, seed=8))
    first, other = (sorted((out / "counts").iterdir())[0] for out in (tiny, tmp_path))
    assert gzip.decompress(first.read_bytes()) != gzip.decompress(other.read_bytes())
    assert (tiny / "GeneInfo.tsv").read_bytes() != (tmp_path / "GeneInfo.tsv").read_bytes()


def test_ontology_is_a_deep_dag_with_three_roots_and_obsolete_terms(tiny: Path) -> None:
    ontology = obo.read_obo(tiny / "go" / "go-basic.obo.gz")
    parents = parents_by_term(ontology)
    live = ontology.terms.filter(~pl.col("is_obsolete"))["go_id"].to_list()
    roots = [term for term in live if not parents[term]]
    assert sorted(roots) == ["GO:0003674", "GO:0005575", "GO:0008150"]
    assert max(len(ancestors(term, parents)) - 1 for term in live) >= 6
    assert any(len(parents[term]) > 1 for term in live)
    assert ontology.terms["is_obsolete"].sum() >= 1
    assert "regulates" in set(ontology.edges["relation"])


def test_simulated_term_ids_cannot_be_mistaken_for_real_go_terms(tiny: Path) -> None:
    simulated = obo.read_obo(tiny / "go" / "go-basic.obo.gz").terms["go_id"].to_list()
    roots = {"GO:0008150", "GO:0003674", "GO:0005575"}
    assert all(int(t[3:]) > 7_000_000 for t in simulated if t not in roots)
    real = set(obo.read_obo(SHARED / "go-basic.obo.gz").terms["go_id"].to_list())
    assert set(simulated) & real == roots


def test_series_have_one_to_four_groups_with_up_to_six_replicates(many: Path) -> None:
    sizes = []
    for path in sorted((many / "geo").iterdir()):
        characteristics = geo.read_series_matrix(path).characteristics
        factors = characteristics.filter(
            pl.col("key").is_in(["genotype", "treatment", "condition"])
        )
        # The design row is the last of these; "genotype: wild type" may precede it, constant.
        labels = factors.filter(pl.col("row") == pl.col("row").max())["value"].to_list()
        assert labels[0] in CONTROLS
        sizes.append([labels.count(label) for label in dict.fromkeys(labels)])
    assert {len(s) for s in sizes} == {1, 2, 3, 4}
    assert max(max(s) for s in sizes) <= 6 and min(min(s) for s in sizes) >= 1
    assert any(1 in s for s in sizes if len(s) > 1)


def test_metadata_mixes_qc_results_orphan_runs_and_superseries(many: Path) -> None:
    runs = metadata(many)
    status = runs["qc_status"].value_counts(normalize=True)
    share = dict(zip(status["qc_status"], status["proportion"], strict=True))
    assert 0.75 < share["PASS"] < 0.92 and share["WARN"] > 0.05 and share["FAIL"] > 0.02
    assert 0 < runs["gse"].is_null().mean() < 0.08
    raw = pl.read_csv(many / "mmusculus_metadata.tsv.cut", separator="\t", infer_schema=False)
    assert raw["GEO_series"].str.contains(";").any()
    assert (
        raw["Experiment_title"]
        .drop_nulls()
        .str.contains(r"^GSM\d+: .+; Mus musculus; RNA-Seq$")
        .any()
    )
    all_failed = runs.drop_nulls("gse").group_by("gse").agg((pl.col("qc_status") == "FAIL").all())
    assert all_failed["qc_status"].any()
    for column in ("srr", "srx", "srs"):
        assert runs[column].is_unique().all()
    assert runs["gsm"].drop_nulls().is_unique().all()


def test_ground_truth_genes_are_annotated_to_their_term(tiny: Path) -> None:
    ontology = obo.read_obo(tiny / "go" / "go-basic.obo.gz")
    parents = parents_by_term(ontology, relations=("is_a", "part_of"))
    annotations = pl.concat(list(gaf.iter_gaf(tiny / "go" / "annotations.gaf.gz")))
    annotations = annotations.filter(~pl.col("qualifier").str.contains("NOT"))
    symbol_to_id = dict(
        dee2.read_gene_info(tiny / "GeneInfo.tsv").select("symbol", "gene_id").iter_rows()
    )
    propagated: set[tuple[str, str]] = set()
    for symbol, go_id in annotations.select("symbol", "go_id").iter_rows():
        propagated.update((symbol_to_id[symbol], term) for term in ancestors(go_id, parents))
    modules = truth(tiny).filter(pl.col("go_id") != "")
    assert modules.height > 0
    assert all(pair in propagated for pair in modules.select("gene_id", "go_id").iter_rows())


def test_popular_terms_recur_across_series(many: Path) -> None:
    per_term = (
        truth(many).filter(pl.col("go_id") != "").group_by("go_id").agg(pl.col("gse").n_unique())
    )
    assert per_term["gse"].max() >= 10


def test_contrast_ids_follow_the_slug_rule(tiny: Path) -> None:
    assert slug("poly(I:C)") == "poly-i-c" and slug("Foxo1 KO") == "foxo1-ko"
    for gse, a, b, contrast_id in (
        truth(tiny).select("gse", "group_a", "group_b", "contrast_id").unique().iter_rows()
    ):
        assert contrast_id == f"{gse}:{slug(b)}-vs-{slug(a)}"


def test_group_inference_recovers_the_designed_contrasts(tiny: Path) -> None:
    designed = truth(tiny).select("gse", "group_a", "group_b").unique()
    recovered = set()
    for gse in designed["gse"].unique():
        characteristics = geo.read_series_matrix(
            tiny / "geo" / f"{gse}_series_matrix.txt.gz"
        ).characteristics
        grouping = infer_groups(characteristics, gse=gse)
        recovered.update((gse, c.group_a, c.group_b) for c in contrasts(grouping, min_replicates=1))
    assert recovered == set(designed.iter_rows())


def test_perturbed_genes_shift_the_group_mean_in_the_true_direction(tiny: Path) -> None:
    agree = []
    for (gse, a, b), rows in truth(tiny).group_by("gse", "group_a", "group_b"):
        groups, matrix = groups_of(tiny, gse), counts_of(tiny, gse)
        log_cpm = np.log2(matrix.counts / matrix.counts.sum(axis=0) * 1e6 + 1.0)
        mean_a = log_cpm[:, groups[a]].mean(axis=1)
        mean_b = log_cpm[:, groups[b]].mean(axis=1)
        row_of = {gene: i for i, gene in enumerate(matrix.gene_ids)}
        index = np.array([row_of[gene] for gene in rows["gene_id"]])
        expressed = np.maximum(mean_a[index], mean_b[index]) > 5
        shift = np.sign(mean_b[index] - mean_a[index])
        agree.extend((shift == np.sign(rows["true_log2fc"].to_numpy()))[expressed])
    assert len(agree) > 100 and np.mean(agree) > 0.85


def test_counts_are_overdispersed(tiny: Path) -> None:
    gse = truth(tiny)["gse"][0]
    control = counts_of(tiny, gse).counts[:, next(iter(groups_of(tiny, gse).values()))]
    mean, variance = control.mean(axis=1), control.var(axis=1, ddof=1)
    high = mean > 50
    assert high.sum() > 20 and np.median(variance[high] / mean[high]) > 2


def test_term_sizes_are_heavy_tailed(tiny: Path) -> None:
    annotations = pl.concat(list(gaf.iter_gaf(tiny / "go" / "annotations.gaf.gz")))
    sizes = annotations.group_by("go_id").len()["len"].to_numpy()
    per_gene = annotations.group_by("symbol").len()["len"].to_numpy()
    assert sizes.max() > 4 * np.median(sizes)
    assert per_gene.max() <= 31 and annotations["symbol"].n_unique() < TINY.genes


def test_real_ontology_and_gene2go_map_onto_simulated_genes(tmp_path: Path) -> None:
    gene2go = tmp_path / "gene2go_head.tsv"
    with gzip.open(SHARED / "gene2go_human.tsv.gz", "rt") as source:
        gene2go.write_text("".join(next(source) for _ in range(3000)))
    config = SimulationConfig(
        datasets=2,
        genes=150,
        go_terms=300,
        ontology=SHARED / "go-basic.obo.gz",
        annotations=gene2go,
    )
    summary = simulate(tmp_path / "out", config)
    copied = tmp_path / "out" / "go" / "go-basic.obo.gz"
    assert copied.read_bytes() == (SHARED / "go-basic.obo.gz").read_bytes()
    annotations = pl.concat(list(gaf.iter_gaf(tmp_path / "out" / "go" / "annotations.gaf.gz")))
    real_ids = set(pl.read_csv(gene2go, separator="\t", infer_schema=False)["GO_ID"])
    assert set(annotations["go_id"]) <= real_ids
    assert 0 < annotations["symbol"].n_unique() <= 150
    text = gzip.decompress(copied.read_bytes()).decode()
    modules = set(truth(tmp_path / "out").filter(pl.col("go_id") != "")["go_id"])
    assert modules and all(f"id: {go_id}\n" in text for go_id in modules)
    assert summary.go_terms > 40_000


def test_annotations_without_an_ontology_are_refused() -> None:
    with pytest.raises(DegaeError, match="--annotations needs --ontology"):
        SimulationConfig(annotations=SHARED / "gene2go_human.tsv.gz")


def parents_by_term(
    ontology: obo.Ontology, relations: tuple[str, ...] = ("is_a", "part_of")
) -> dict[str, set[str]]:
    parents: dict[str, set[str]] = {term: set() for term in ontology.terms["go_id"]}
    for child, parent in (
        ontology.edges.filter(pl.col("relation").is_in(relations))
        .select("child", "parent")
        .iter_rows()
    ):
        parents[child].add(parent)
    return parents


def ancestors(term: str, parents: dict[str, set[str]]) -> set[str]:
    found, stack = {term}, [term]
    while stack:
        for parent in parents.get(stack.pop(), ()):
            if parent not in found:
                found.add(parent)
                stack.append(parent)
    return found
