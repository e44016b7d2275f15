"""A CSV file that trial results are appended to as they finish, so a long sweep resumes after an
interruption without losing or redoing a trial (emcee's backends, for tidy tables)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd


def _format(value):
    if isinstance(value, (float, np.floating)):
        # shortest round-trip representation: resumed results are bit-identical
        return repr(float(value))
    if isinstance(value, (np.integer, np.bool_)):
        return str(value.item())
    return str(value)


class TrialStore:
    """Rows keyed by ``key`` columns; ``done`` holds the keys already stored.

    A row is written with a single ``os.write`` of a whole line; a line cut short by a kill (no
    final newline) is ignored on reading and rewritten.
    """

    def __init__(self, path, key):
        self.path = Path(path)
        self.key = tuple(key)
        self.columns = None
        self.frame = pd.DataFrame()
        if self.path.exists() and self.path.stat().st_size > 0:
            text = self.path.read_text()
            if not text.endswith("\n"):
                text = text[: text.rfind("\n") + 1]
                self.path.write_text(text)
            if text:
                self.frame = pd.read_csv(io.StringIO(text), keep_default_na=False,
                                         na_values=[""])
                self.columns = list(self.frame.columns)
                missing = [k for k in self.key if k not in self.columns]
                if missing:
                    raise ValueError(f"`store` == {str(self.path)!r}: has columns {self.columns}, "
                                     f"not the {missing} of these results; use another file")
        self.frame = self.frame.drop_duplicates(subset=list(self.key)) if len(self.frame) else self.frame
        self.done = {self._key(r) for r in self.frame.to_dict("records")}

    def _key(self, row):
        return tuple(_format(row[k]) if not isinstance(row[k], float) else row[k] for k in self.key)

    def has(self, row):
        """Whether a row with the key values of ``row`` (a dict) is stored."""
        return self._key(row) in self.done

    def append(self, rows):
        """Write ``rows`` (dicts) at once; the first write fixes the column order."""
        if not rows:
            return
        new_file = self.columns is None
        if new_file:
            self.columns = list(rows[0])
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if new_file:
            writer.writerow(self.columns)
        for row in rows:
            writer.writerow([_format(row[c]) for c in self.columns])
            self.done.add(self._key(row))
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ValueError(f"`store` == {str(self.path)!r}: cannot write ({exc.strerror})") from None
        try:
            os.write(fd, buf.getvalue().encode())
        finally:
            os.close(fd)
