"""One script per figure: ``python -m figures.<figure>`` reads ``results/`` and writes PNG + PDF
to ``figures/out/``."""
