"""The significance thresholds of the pipeline, each written once.

Python uses these constants; SQL uses them through the macros `warehouse.schema` creates from
them (`core.de_adj_p()`, ...), so a view and a config default can never disagree.
"""

# A gene is differentially expressed below this Benjamini-Hochberg adjusted p-value (limma's
# adj.P.Val; the reference study's candidate genes).
DE_ADJ_P = 0.05

# A GO term is enriched below this family-wise error rate (GOfuncR's FWER; the study's labels).
GO_FWER = 0.05

# Enrichment rows stored: every tested term with an over-representation p-value below this.
GO_STORED_P = 0.05

# The SQL macros made from them: name -> value.
SQL_MACROS = {"de_adj_p": DE_ADJ_P, "go_fwer": GO_FWER, "go_stored_p": GO_STORED_P}
