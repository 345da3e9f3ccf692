"""GO ontology propagation and the enrichment test on hand-made ontologies."""

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.stats import hypergeom

from degae_tools.enrichment import (
    EnrichmentConfig,
    Ontology,
    _shuffled_prefixes,
    benjamini_hochberg,
    enrich,
    enrich_batch,
    gene_sets,
    hypergeom_tails,
)

ROOT, A, B, C, REG, OLD = (f"GO:000000{i}" for i in range(1, 7))
ALL = EnrichmentConfig(keep="all", min_size=1, max_size=10_000)


@pytest.fixture
def six_terms() -> Ontology:
    """root <- A, root <- B, C is_a A and part_of B, REG regulates C, OLD obsolete."""
    terms = pl.DataFrame(
        {
            "go_id": [ROOT, A, B, C, REG, OLD],
            "name": ["process", "a", "b", "c", "regulation of c", "obsolete x"],
            "namespace": ["biological_process"] * 6,
            "is_obsolete": [False, False, False, False, False, True],
        }
    )
    edges = pl.DataFrame(
        {
            "child": [A, B, C, C, REG, REG],
            "parent": [ROOT, ROOT, A, B, ROOT, C],
            "relation": ["is_a", "is_a", "is_a", "part_of", "is_a", "regulates"],
        }
    )
    return Ontology(terms, edges, alt_ids={"GO:0009999": A})


@pytest.fixture
def flat_ontology() -> Ontology:
    """A root with 40 children, T01..T40, each annotated below with 10 genes of 400."""
    children = [f"GO:00001{i:02d}" for i in range(1, 41)]
    terms = pl.DataFrame(
        {
            "go_id": [ROOT, *children],
            "name": ["root", *children],
            "namespace": ["biological_process"] * 41,
            "is_obsolete": [False] * 41,
        }
    )
    edges = pl.DataFrame({"child": children, "parent": [ROOT] * 40, "relation": ["is_a"] * 40})
    return Ontology(terms, edges)


@pytest.fixture
def flat_annotations(flat_ontology):
    genes = np.arange(400)
    frame = pl.DataFrame(
        {"gene_index": genes, "go_id": [f"GO:00001{g // 10 + 1:02d}" for g in genes]}
    )
    return flat_ontology.propagate(frame, n_genes=400)


def ancestors(ontology: Ontology, go_id: str, relations=("is_a", "part_of")) -> set[str]:
    row = ontology.go_ids.tolist().index(go_id)
    closure = ontology.ancestors_matrix(relations)
    return set(ontology.go_ids[closure[row].indices].tolist())


def test_ancestors_include_self_is_a_and_part_of(six_terms):
    assert ancestors(six_terms, C) == {C, A, B, ROOT}


def test_regulates_is_not_propagated_by_default(six_terms):
    assert ancestors(six_terms, REG) == {REG, ROOT}


def test_regulates_is_propagated_when_asked(six_terms):
    assert ancestors(six_terms, REG, ("is_a", "part_of", "regulates")) == {REG, C, A, B, ROOT}


def test_propagate_counts_a_gene_in_every_ancestor(six_terms):
    annotations = pl.DataFrame({"gene_index": [0, 1], "go_id": [C, REG]})
    propagated = six_terms.propagate(annotations, n_genes=3)
    assert propagated.term_sizes() == {ROOT: 2, A: 1, B: 1, C: 1, REG: 1}


def test_annotated_marks_genes_with_any_term(six_terms):
    annotations = pl.DataFrame({"gene_index": [0, 2, 3], "go_id": [C, OLD, REG]})
    propagated = six_terms.propagate(annotations, n_genes=4)
    assert propagated.annotated.tolist() == [True, False, False, True]


def test_propagate_maps_alternative_ids_to_their_term(six_terms):
    propagated = six_terms.propagate(pl.DataFrame({"gene_index": [2], "go_id": ["GO:0009999"]}), 3)
    assert propagated.term_sizes() == {ROOT: 1, A: 1}


def test_propagate_reports_obsolete_and_unknown_ids(six_terms):
    annotations = pl.DataFrame({"gene_index": [0, 1, 2, 2], "go_id": [OLD, "GO:7777777", OLD, A]})
    propagated = six_terms.propagate(annotations, n_genes=3)
    assert propagated.unmapped.to_dicts() == [
        {"go_id": OLD, "reason": "obsolete", "n_genes": 2},
        {"go_id": "GO:7777777", "reason": "unknown", "n_genes": 1},
    ]
    assert propagated.term_sizes() == {ROOT: 1, A: 1}


def test_propagate_rejects_gene_index_outside_universe(six_terms):
    with pytest.raises(ValueError, match="outside 0..2"):
        six_terms.propagate(pl.DataFrame({"gene_index": [3], "go_id": [A]}), n_genes=3)


def test_ontology_rejects_edges_to_missing_terms(six_terms):
    edges = pl.DataFrame({"child": [A], "parent": ["GO:1234567"], "relation": ["is_a"]})
    with pytest.raises(ValueError, match="GO:0000002 -is_a-> GO:1234567"):
        Ontology(six_terms.terms, edges)


def test_config_rejects_unknown_relation():
    with pytest.raises(ValueError, match="has_part"):
        EnrichmentConfig(relations=("is_a", "has_part"))


def test_size_filter_counts_tested_genes_only(flat_annotations):
    tested = np.ones(400, dtype=bool)
    tested[:5] = False  # term GO:0000101 keeps 5 tested genes, the root 395
    config = EnrichmentConfig(keep="all", min_size=6, max_size=394)
    table = enrich(np.arange(10, 20), tested, flat_annotations, config)
    assert len(table) == 39
    assert "GO:0000101" not in table["go_id"] and ROOT not in table["go_id"]
    assert set(table["n_in_term"]) == {10}


def test_p_values_are_the_hypergeometric_tails(flat_annotations):
    candidates = np.r_[0:6, 10:12, 200:204]
    table = enrich(candidates, np.ones(400, dtype=bool), flat_annotations, ALL)
    k, K = table["n_de_in_term"].to_numpy(), table["n_in_term"].to_numpy()
    np.testing.assert_allclose(table["p_over"], hypergeom.sf(k - 1, 400, K, 12), rtol=1e-12)
    np.testing.assert_allclose(table["p_under"], hypergeom.cdf(k, 400, K, 12), rtol=1e-12)


def test_leading_edge_lists_de_genes_of_the_term_by_gene_index(flat_annotations):
    tested = np.ones(400, dtype=bool)
    tested[:3] = False
    table = enrich(np.r_[3, 7, 15, 300], tested, flat_annotations, ALL)
    edges = dict(zip(table["go_id"], table["leading_edge"].to_list(), strict=True))
    assert edges["GO:0000101"] == [3, 7]
    assert edges["GO:0000102"] == [15]
    assert edges[ROOT] == [3, 7, 15, 300]
    assert edges["GO:0000140"] == []


def test_fwer_is_a_fraction_of_random_sets(flat_annotations):
    config = EnrichmentConfig(keep="all", n_randsets=50)
    table = enrich(np.r_[0:10, 100:105], np.ones(400, dtype=bool), flat_annotations, config)
    for column in ("fwer_over", "fwer_under"):
        values = table[column].to_numpy()
        assert ((values >= 0) & (values <= 1)).all()
        np.testing.assert_allclose(values * 50, np.round(values * 50), atol=1e-9)


def test_fwer_grows_with_the_p_value(flat_annotations):
    table = enrich(np.r_[0:10, 100:105, 300], np.ones(400, dtype=bool), flat_annotations, ALL)
    ordered = table.sort("p_over")
    assert (np.diff(ordered["fwer_over"].to_numpy()) >= 0).all()


def test_fwer_equals_a_term_by_term_loop_over_the_same_random_sets():
    """Two namespaces, so each random set's minimum is taken per namespace (GOfuncR roots)."""
    bp = [f"GO:00002{i:02d}" for i in range(20)]
    mf = [f"GO:00003{i:02d}" for i in range(20)]
    terms = pl.DataFrame(
        {
            "go_id": bp + mf,
            "name": bp + mf,
            "namespace": ["biological_process"] * 20 + ["molecular_function"] * 20,
            "is_obsolete": [False] * 40,
        }
    )
    edges = pl.DataFrame(schema={"child": pl.String, "parent": pl.String, "relation": pl.String})
    rng = np.random.default_rng(11)
    genes = np.arange(300)
    annotations = pl.DataFrame(
        {
            "gene_index": np.r_[genes, genes],
            "go_id": [bp[g % 20] for g in genes] + [mf[i] for i in rng.integers(0, 20, 300)],
        }
    )
    propagated = Ontology(terms, edges).propagate(annotations, n_genes=300)
    tested = np.ones(300, dtype=bool)
    config = EnrichmentConfig(keep="all", n_randsets=30, seed=5)
    table = enrich(np.r_[0:40:2, 100:110], tested, propagated, config)

    random_sets = _shuffled_prefixes(np.random.default_rng(5), 30, 300, 30)
    matrix = propagated.matrix.toarray()
    namespace = dict(zip(propagated.go_ids, propagated.namespaces, strict=True))
    column = {go: i for i, go in enumerate(propagated.go_ids)}
    minima = {}
    for ns in ("biological_process", "molecular_function"):
        cols = [column[go] for go in table["go_id"] if namespace[go] == ns]
        K = matrix[:, cols].sum(axis=0)
        for tail in ("over", "under"):
            mins = []
            for members in random_sets:
                k = matrix[members][:, cols].sum(axis=0)
                p = (
                    hypergeom.sf(k - 1, 300, K, 30)
                    if tail == "over"
                    else hypergeom.cdf(k, 300, K, 30)
                )
                mins.append(p.min())
            minima[ns, tail] = np.array(mins)
    for row in table.iter_rows(named=True):
        ns = namespace[row["go_id"]]
        for tail in ("over", "under"):
            # the same p-value computed two ways may differ in the last bits
            expected = np.mean(minima[ns, tail] <= row[f"p_{tail}"] * (1 + 1e-9))
            assert row[f"fwer_{tail}"] == pytest.approx(expected), (row["go_id"], tail)


def test_a_fully_hit_term_has_fwer_zero_and_a_missed_term_fwer_one(flat_annotations):
    table = enrich(np.r_[0:10, 55, 123], np.ones(400, dtype=bool), flat_annotations, ALL)
    by_term = {row["go_id"]: row for row in table.iter_rows(named=True)}
    assert by_term["GO:0000101"]["fwer_over"] == 0.0
    assert by_term["GO:0000140"]["p_over"] == 1.0
    assert by_term["GO:0000140"]["fwer_over"] == 1.0


def test_default_keeps_over_represented_terms_by_fwer(flat_annotations):
    table = enrich(np.r_[0:10, 55, 123], np.ones(400, dtype=bool), flat_annotations)
    assert table["go_id"].to_list() == ["GO:0000101"]


def test_fwer_either_also_keeps_under_represented_terms(flat_annotations):
    # 200 DE genes, none in the first four terms: depletion expected 5 of each 10
    candidates = np.arange(40, 240)
    either = enrich(
        candidates, np.ones(400, dtype=bool), flat_annotations, EnrichmentConfig(keep="fwer_either")
    )
    over = enrich(candidates, np.ones(400, dtype=bool), flat_annotations, EnrichmentConfig())
    assert len(over) < len(either)
    assert (either.filter(pl.col("fwer_over") >= 0.05)["fwer_under"] < 0.05).all()


def test_candidates_as_mask_or_indices_agree(flat_annotations):
    mask = np.zeros(400, dtype=bool)
    mask[[1, 2, 50, 333]] = True
    tested = np.ones(400, dtype=bool)
    by_mask = enrich(mask, tested, flat_annotations, ALL)
    by_index = enrich(np.array([1, 2, 50, 333]), tested, flat_annotations, ALL)
    assert by_mask.equals(by_index)


def test_candidates_must_be_tested(flat_annotations):
    tested = np.ones(400, dtype=bool)
    tested[7] = False
    with pytest.raises(ValueError, match="not tested genes"):
        enrich(np.array([7, 8]), tested, flat_annotations)


def test_batch_rows_equal_single_contrast_runs(flat_annotations):
    rng = np.random.default_rng(3)
    tested = rng.random(400) < 0.9
    masks = np.zeros((5, 400), dtype=bool)
    for row, size in enumerate([12, 3, 40, 12, 0]):
        masks[row, rng.choice(np.flatnonzero(tested), size, replace=False)] = True
    stacked = sparse.csr_matrix(masks)  # contrasts × genes, sparse or dense
    batch = enrich_batch(stacked, tested, flat_annotations, ALL, contrast_ids=list("abcde"))
    for row, contrast in enumerate("abcde"):
        single = enrich(masks[row], tested, flat_annotations, ALL)
        assert batch.filter(pl.col("contrast_id") == contrast).drop("contrast_id").equals(single)


def test_no_de_genes_gives_p_one(flat_annotations):
    table = enrich(np.array([], dtype=int), np.ones(400, dtype=bool), flat_annotations, ALL)
    assert table["n_de"].unique().to_list() == [0]
    assert (table["p_over"] == 1.0).all() and (table["fwer_over"] == 1.0).all()


def test_gene_sets_from_a_de_table():
    de = pl.DataFrame({"gene_index": [0, 1, 3], "adj_p_value": [0.01, 0.2, float("nan")]})
    candidates, tested = gene_sets(de, n_genes=5)
    assert candidates.tolist() == [True, False, False, False, False]
    assert tested.tolist() == [True, True, False, False, False]


def test_benjamini_hochberg_matches_r_p_adjust():
    # p.adjust(c(0.01, 0.04, 0.03, 0.2), "BH") in R
    adjusted = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.2]))
    np.testing.assert_allclose(adjusted, [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2])


@settings(max_examples=200, deadline=None)
@given(
    universe=st.integers(1, 3000),
    drawn_fraction=st.floats(0, 1),
    sizes=st.lists(st.integers(0, 500), min_size=1, max_size=6),
    max_k=st.none() | st.integers(0, 500) | st.lists(st.integers(0, 500), min_size=6, max_size=6),
)
def test_hypergeom_tails_equal_scipy(universe, drawn_fraction, sizes, max_k):
    drawn = round(drawn_fraction * universe)
    K = np.unique(np.minimum(sizes, universe))
    if isinstance(max_k, list):
        max_k = np.array(max_k[: len(K)])
    over, under = hypergeom_tails(universe, drawn, K, max_k=max_k)
    for row, size in enumerate(K):
        row_max = over.shape[1] - 1 if max_k is None else np.broadcast_to(max_k, K.shape)[row]
        k = np.arange(min(drawn, size, row_max) + 1)
        np.testing.assert_allclose(
            over[row, k], hypergeom.sf(k - 1, universe, size, drawn), rtol=1e-10, atol=1e-300
        )
        np.testing.assert_allclose(
            under[row, k], hypergeom.cdf(k, universe, size, drawn), rtol=1e-10, atol=1e-300
        )


def test_hypergeom_tails_truncated_at_max_k_keep_the_whole_upper_tail():
    over, _ = hypergeom_tails(48_978, 5_000, np.array([400, 500]), max_k=3)
    assert over.shape == (2, 4)
    k = np.arange(4)
    np.testing.assert_allclose(over[1], hypergeom.sf(k - 1, 48_978, 500, 5_000), rtol=1e-12)
