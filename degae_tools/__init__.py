"""degae: RNA-seq compendium warehouse, differential expression, GO enrichment and autoencoders."""

__version__ = "0.1.0"
