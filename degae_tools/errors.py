"""Every error degae raises on purpose, in one place.

Errors about input files carry the file, the line and what was expected, so that
one line of output tells the user what to fix.
"""

from __future__ import annotations

from pathlib import Path


class DegaeError(Exception):
    """Base class: an error degae explains to the user (the CLI prints it without a traceback)."""


class InputFileError(DegaeError):
    """A file that could not be read as the format it claims to be."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{Path(self.path).name} line {line}" if line is not None else Path(self.path).name
        super().__init__(f"{type(self).__name__}: {where}: {message}")


class DEE2MetadataError(InputFileError):
    """A DEE2 metadata table (``<species>_metadata.tsv.cut`` or ``MetadataSummary.tsv``)."""


class DEE2CountsError(InputFileError):
    """A DEE2 gene count table (long ``SRR/gene/count`` or getDEE2's wide matrix) or gene info."""


class GEOSeriesMatrixError(InputFileError):
    """A GEO ``GSExxx_series_matrix.txt[.gz]`` file."""


class OBOError(InputFileError):
    """A Gene Ontology OBO file."""


class AnnotationError(InputFileError):
    """A GO annotation file (GAF 2.x or NCBI gene2go)."""


class ResultTableError(InputFileError):
    """A precomputed limma ``topTable`` or GOfuncR ``go_enrich`` results table."""


class SignatureFileError(InputFileError):
    """A wide signature matrix (one row per signature, one column per gene) or a gene ID table."""


class DesignError(DegaeError):
    """A linear model that cannot be fitted: too few replicates, not full rank, no counts."""


class WarehouseError(DegaeError):
    """The warehouse is missing, locked, read-only or not migrated."""


class DamagedWarehouseError(WarehouseError):
    """A block of the warehouse file fails its checksum; `detail` is DuckDB's line saying where."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


class NothingToDo(DegaeError):
    """A step that found nothing to compute: the message says why and what to change (the CLI
    prints it on one line and exits 0, or 2 under --strict)."""


class ModelError(DegaeError):
    """A model directory or configuration that cannot be used."""


class ReduceError(DegaeError):
    """A dimension reduction that cannot run: too few contrasts or genes, an unknown colouring."""


class Log2FCTableError(InputFileError):
    """A new experiment's log2FC table (``gene_id<TAB>log2fc`` lines) given to ``predict``."""


class GroundTruthError(InputFileError):
    """The simulator's ``ground_truth/perturbations.tsv`` (driver genes per contrast and term)."""


class FetchError(DegaeError):
    """A download from DEE2 or GEO that failed: an HTTP error, or too many broken transfers."""


class OfflineError(FetchError):
    """DEE2 or GEO cannot be reached at all (no DNS, connection refused): `fetch` needs internet."""
