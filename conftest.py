"""Collection rules for the whole checkout: the optional PyTorch wing's doctests are collected only
where the ``[torch]`` extra is installed (the README's test command installs it)."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("torch") else ["meanfield/torch/*"]
