"""degae's GO propagation and hypergeometric p-values equal goatools' on the real GO and gene2go.

goatools builds its own term sets (``GODag`` + ``update_association`` along is_a and
part_of) and scores them with scipy's Fisher exact test, one term at a time; degae uses
sparse closures and its own vectorised hypergeometric tails.
"""

import gzip
import io
import shutil

import numpy as np
import polars as pl
import pytest
from goatools.anno.update_association import update_association
from goatools.go_enrichment import GOEnrichmentStudy
from goatools.obo_parser import GODag
from goatools.pvalcalc import FisherScipyStats

from degae_tools.enrichment import EnrichmentConfig, Ontology, enrich
from degae_tools.sources.obo import read_obo
from tests.helpers import SHARED_DATA

DATA = SHARED_DATA
CELL_CYCLE = "GO:0007049"
EVERY_TERM = EnrichmentConfig(keep="all", min_size=1, max_size=1_000_000, n_randsets=10)


@pytest.fixture(scope="module")
def ontology() -> Ontology:
    return Ontology.from_obo(read_obo(DATA / "go-basic.obo.gz"))


@pytest.fixture(scope="module")
def godag(tmp_path_factory) -> GODag:
    plain = tmp_path_factory.mktemp("go") / "go-basic.obo"
    with gzip.open(DATA / "go-basic.obo.gz", "rb") as source, plain.open("wb") as target:
        shutil.copyfileobj(source, target)
    return GODag(str(plain), optional_attrs={"relationship"}, prt=None)


@pytest.fixture(scope="module")
def human() -> dict:
    """Every NCBI human gene as the universe; gene2go's direct annotations by gene_index."""
    genes = pl.read_csv(DATA / "human_gene_ids.tsv.gz", separator="\t").select("GeneID")
    genes = genes.unique().sort("GeneID").with_row_index("gene_index")
    gene2go = pl.read_csv(DATA / "gene2go_human.tsv.gz", separator="\t")
    annotations = gene2go.join(genes, on="GeneID").select(
        pl.col("gene_index").cast(pl.Int64), pl.col("GO_ID").alias("go_id")
    )
    return {"gene_ids": genes["GeneID"].to_numpy(), "annotations": annotations.unique()}


@pytest.fixture(scope="module")
def goatools_association(human, godag) -> dict[int, set[str]]:
    """gene_index -> GO IDs, propagated by goatools itself."""
    association: dict[int, set[str]] = {}
    for gene, go_id in human["annotations"].iter_rows():
        association.setdefault(gene, set()).add(go_id)
    update_association(association, godag, relationships={"part_of"}, prt=None)
    return association


@pytest.fixture(scope="module")
def propagated(ontology, human):
    return ontology.propagate(human["annotations"], n_genes=len(human["gene_ids"]))


@pytest.fixture(scope="module")
def study(human, propagated, goatools_association) -> dict:
    """20,000 tested genes; 400 DE genes: 150 cell-cycle genes and 250 drawn at random."""
    rng = np.random.default_rng(2022)
    n_genes = len(human["gene_ids"])
    annotated = np.array(sorted(goatools_association))
    tested = np.zeros(n_genes, dtype=bool)
    tested[rng.choice(annotated, 17_000, replace=False)] = True
    tested[rng.choice(np.setdiff1d(np.arange(n_genes), annotated), 3_000, replace=False)] = True
    cell_cycle = [
        g for g in np.flatnonzero(tested) if CELL_CYCLE in goatools_association.get(g, ())
    ]
    candidates = np.zeros(n_genes, dtype=bool)
    candidates[rng.choice(cell_cycle, 150, replace=False)] = True
    candidates[rng.choice(np.flatnonzero(tested & ~candidates), 250, replace=False)] = True
    return {"tested": tested, "candidates": candidates}


@pytest.fixture(scope="module")
def goatools_results(study, goatools_association, godag) -> dict:
    """goatools' one-sided (greater) Fisher study on the same sets, counts already propagated."""
    goea = GOEnrichmentStudy(
        np.flatnonzero(study["tested"]).tolist(),
        goatools_association,
        godag,
        propagate_counts=False,
        methods=["bonferroni"],
        alternative="greater",
        log=None,
    )
    records = goea.run_study(np.flatnonzero(study["candidates"]).tolist(), prt=None)
    return {record.GO: record for record in records}


@pytest.fixture(scope="module")
def degae_table(study, propagated) -> pl.DataFrame:
    return enrich(study["candidates"], study["tested"], propagated, EVERY_TERM)


def test_propagated_term_sizes_equal_goatools(propagated, goatools_association):
    sizes: dict[str, int] = {}
    for go_ids in goatools_association.values():
        for go_id in go_ids:
            sizes[go_id] = sizes.get(go_id, 0) + 1
    assert propagated.term_sizes() == sizes


def test_every_gene_has_the_same_propagated_terms(propagated, goatools_association):
    matrix = propagated.matrix
    for gene in range(matrix.shape[0]):
        terms = set(
            propagated.go_ids[matrix.indices[matrix.indptr[gene] : matrix.indptr[gene + 1]]]
        )
        assert terms == goatools_association.get(gene, set()), f"gene_index {gene}"


def test_tested_terms_and_counts_equal_goatools(degae_table, goatools_results):
    ours = {
        row[0]: row[1:]
        for row in degae_table.select("go_id", "n_de_in_term", "n_in_term").iter_rows()
    }
    theirs = {go: (r.ratio_in_study[0], r.ratio_in_pop[0]) for go, r in goatools_results.items()}
    assert ours == theirs


def test_over_representation_p_values_equal_goatools_fisher(degae_table, goatools_results):
    p_goatools = np.array([goatools_results[go].p_uncorrected for go in degae_table["go_id"]])
    assert p_goatools.min() < 1e-40  # the cell-cycle block reaches far into the tail
    np.testing.assert_allclose(degae_table["p_over"], p_goatools, rtol=1e-10, atol=0)


def test_under_representation_p_values_equal_scipy_fisher_less(degae_table):
    less = FisherScipyStats("fisher_scipy_stats", io.StringIO(), alternative="less")
    sample = degae_table.sample(2_000, seed=1)
    expected = [
        less.calc_pvalue(k, n, K, N)
        for k, n, K, N in sample.select("n_de_in_term", "n_de", "n_in_term", "n_tested").iter_rows()
    ]
    np.testing.assert_allclose(sample["p_under"], expected, rtol=1e-10, atol=0)


def test_unmapped_ids_are_those_goatools_cannot_find(ontology, godag):
    """Mouse 2018 annotations against the 2022 ontology: obsolete and retired IDs."""
    mouse = pl.read_csv(DATA / "GO_annotations-10090-direct-expev.tsv.gz", separator="\t")
    pairs = (
        mouse.select("go_id", pl.col("gene_ids").str.split("|").alias("gene"))
        .explode("gene")
        .with_columns(pl.col("gene").cast(pl.Int64))
    )
    genes = pairs["gene"].unique().sort()
    indexed = pairs.join(
        pl.DataFrame({"gene": genes, "gene_index": np.arange(len(genes))}), on="gene"
    )
    propagated = ontology.propagate(indexed, n_genes=len(genes))
    assert set(propagated.unmapped["go_id"]) == set(pairs["go_id"]) - set(godag)
    assert set(propagated.unmapped["reason"]) == {"obsolete", "unknown"}
