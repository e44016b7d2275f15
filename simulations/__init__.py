"""The studies behind the paper's figures: each module runs one study with
``python -m simulations.<study> [--quick]`` and writes a tidy CSV to ``results/``."""
