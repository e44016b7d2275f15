"""One progress bar for long work (tqdm), silent unless asked for."""

from __future__ import annotations

import contextlib

from tqdm.auto import tqdm


class _Silent:
    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass


@contextlib.contextmanager
def progress_bar(total, enabled, desc=None, initial=0, unit="trial", delay=0.0):
    """A tqdm bar over ``total`` items when ``enabled`` (on stderr), shown once ``delay`` seconds
    have passed; else an object whose ``update`` does nothing."""
    if not enabled:
        yield _Silent()
        return

    with tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True,
              delay=delay) as bar:
        yield bar
