# limma's own pipeline, the reference degae_tools.de is compared with.
#
# Usage: Rscript limma_reference.R in.tsv groups.tsv B-A out.tsv [log|counts|voom]
#   in.tsv      genes x samples, header row, first column gene IDs, NA for missing values
#   groups.tsv  one column headed "group", one row per sample (in the order of in.tsv's columns)
#   B-A         the contrast: logFC = mean(B) - mean(A)
#   mode        log: lmFit on the values as given (also the reference study's raw-count mode)
#               counts: lmFit on log2((count + 0.5) / (lib.size + 1) * 1e6)
#               voom: voom(counts, design) then lmFit with its weights
# Writes topTable(number = Inf, sort.by = "none") with 17 significant digits.

suppressPackageStartupMessages(library(limma))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 4) stop("usage: limma_reference.R in.tsv groups.tsv B-A out.tsv [mode]")
mode <- if (length(args) >= 5) args[5] else "log"

tab <- read.delim(args[1], check.names = FALSE, na.strings = "NA", colClasses = c("character"))
expr <- as.matrix(data.frame(lapply(tab[, -1, drop = FALSE], as.numeric)))
rownames(expr) <- tab[[1]]
groups <- read.delim(args[2], colClasses = "character")$group
parts <- strsplit(args[3], "-", fixed = TRUE)[[1]]

g <- factor(groups)
design <- model.matrix(~ 0 + g)
colnames(design) <- levels(g)
cm <- matrix(0, ncol(design), 1, dimnames = list(levels(g), args[3]))
cm[parts[1], 1] <- 1
cm[parts[2], 1] <- -1

if (mode == "log") {
  fit <- lmFit(expr, design)
} else if (mode == "counts") {
  lib <- colSums(expr)
  fit <- lmFit(t(log2(t(expr + 0.5) / (lib + 1) * 1e6)), design)
} else if (mode == "voom") {
  fit <- lmFit(voom(expr, design), design)
} else {
  stop("mode must be log, counts or voom")
}
fit <- eBayes(contrasts.fit(fit, cm))
top <- topTable(fit, coef = 1, number = Inf, sort.by = "none")

out <- data.frame(gene = rownames(top), lapply(
  top[, c("logFC", "AveExpr", "t", "P.Value", "adj.P.Val", "B")],
  function(x) sprintf("%.17g", x)
), check.names = FALSE)
write.table(out, args[4], sep = "\t", quote = FALSE, row.names = FALSE)
