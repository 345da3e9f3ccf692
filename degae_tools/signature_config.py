"""The settings of importing signatures and DE tables and of `similar`, as frozen dataclasses the
CLI generates its options from (kept apart from the steps, so `--help` loads no numerics)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from degae_tools.errors import DegaeError

# --value names the kind; core.de_results names the column.
VALUE_COLUMNS = {"z": "z", "t": "t", "log2fc": "log_fc"}
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_collection_name(name: str) -> None:
    """Collection names become contrast ID prefixes: letters, digits, `_ . -`; not `compendium`."""
    if not COLLECTION_NAME.match(name) or name == "compendium":
        raise DegaeError(
            f"collection name {name!r}: use letters, digits, '_', '.' or '-' (and not "
            "'compendium', the DEE2/GEO contrasts' own): choose another --collection"
        )


@dataclass(frozen=True)
class SignatureImport:
    """How to read a signature matrix: what its values are and how it names genes."""

    collection: str = field(metadata={"help": "Collection the signatures join (e.g. l1000)."})
    value: Literal["z", "t", "log2fc"] = field(
        default="z", metadata={"help": "What the values are: moderated z, t or log2 fold change."}
    )
    gene_id: Literal["entrez", "symbol", "ensembl"] = field(
        default="entrez", metadata={"help": "How the file names genes."}
    )
    species: Literal["human", "mouse"] = field(
        default="human", metadata={"help": "Species of the genes."}
    )
    transpose: bool = field(
        default=False, metadata={"help": "Rows are genes and columns signatures."}
    )
    gene_table: str | None = field(
        default=None,
        metadata={
            "help": "NCBI gene ID table (GeneID, Symbol, Ensembl) to map genes through "
            "(default: one ingest loaded, else human_gene_ids.tsv.gz beside FILE or above it)."
        },
    )

    def __post_init__(self) -> None:
        check_collection_name(self.collection)

    @property
    def column(self) -> str:
        """The core.de_results column the values go to."""
        return VALUE_COLUMNS[self.value]


@dataclass(frozen=True)
class DETableImport:
    """Where DE tables that belong to no compendium contrast go, and how their genes map."""

    collection: str = field(
        default="de_tables", metadata={"help": "Collection the tables join, one signature each."}
    )
    species: Literal["human", "mouse"] = field(
        default="human", metadata={"help": "Species (Ensembl IDs say it themselves)."}
    )
    gene_id: Literal["auto", "ensembl", "entrez", "symbol"] = field(
        default="auto", metadata={"help": "How the tables name genes (auto: from the IDs)."}
    )
    gene_table: str | None = field(
        default=None, metadata={"help": "NCBI gene ID table (GeneID, Symbol, Ensembl)."}
    )

    def __post_init__(self) -> None:
        check_collection_name(self.collection)


@dataclass(frozen=True)
class SimilarConfig:
    """Which collection to search, in which space, and how much to show."""

    collection: str | None = field(
        default=None, metadata={"help": "Collection searched (default: the only one imported)."}
    )
    space: Literal["genes", "latent"] = field(
        default="genes", metadata={"help": "Compare values over shared genes, or latent codes."}
    )
    model: str | None = field(
        default=None, metadata={"help": "Model (id or folder) whose encoder --space latent uses."}
    )
    top: int = field(default=10, metadata={"help": "Signatures shown each way."})
    rank_by: Literal["spearman", "cosine"] = field(
        default="spearman", metadata={"help": "Score the lists are ordered by."}
    )
    min_shared: int = field(
        default=20, metadata={"help": "Fewest shared genes for a signature to be scored."}
    )

    def __post_init__(self) -> None:
        if self.space == "latent" and not self.model:
            raise DegaeError("--space latent needs --model (a model id or folder)")
        if self.top < 1 or self.min_shared < 2:
            raise DegaeError(f"top={self.top}, min_shared={self.min_shared}: need >= 1 and >= 2")
