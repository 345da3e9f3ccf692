"""`degae-tools`: a thin Click skin over the library; every command calls one library function.

Commands live by what they touch: `data` (make and load the warehouse), `results` (DE and GO),
`models` (train and use autoencoders), `figures` (reduce, report, the study comparison).
"""

from degae_tools.cli import data, figures, models, results  # noqa: F401  (registers commands)
from degae_tools.cli.base import main

__all__ = ["main"]
