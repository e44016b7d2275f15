"""Where trial results go as they finish: a CSV file that a long sweep appends to and resumes from
after an interruption, without losing, redoing or mixing a trial (emcee's backends, for tidy
tables), or memory when there is no file, so callers run one code path either way.

What the file holds, and why:

- Provenance. Every row records the versions that pin its numbers (:data:`PROVENANCE`):
  ``meanfield_version``, since releases change results in the last bits (the CHANGELOG records
  each such change); ``numpy_version``, since under NEP 19 the streams of ``numpy.random.Generator``
  may change between numpy releases, and numpy's wheels bundle the BLAS that the float32 trials
  multiply with; ``numba_version``, since some compiled kernels let LLVM reassociate their sums, in
  an order that can change with the compiler. The CPU is not recorded: BLAS and numba pick kernels
  by CPU, which can move float32 results in the last bits between machines, but that is not
  something a resumed run changes by installing — a sweep on a mixed cluster mixes CPUs anyway.
- Refusal across versions. A store whose rows were written with other versions than this
  process's is refused when opened (``ValueError`` naming the file, the versions and what to
  do) rather than recomputed: recomputing would have to rewrite or discard rows the user kept,
  and appending would mix numbers of two versions in one table, silently.
- Torn lines. A writer killed mid-write can leave a last line without its newline. Such a line is
  never parsed (it may be cut inside a number); its trial is not stored, so it is recomputed.
  Opening a store only reads it: the tail is cut (``ftruncate``) on the first append.
- Keys. Rows are matched by the text of their key values in the file: a value is written as
  ``repr(float(v))`` for floats (the shortest text that reads back to the same double), ``str(int(v))``
  for integers, ``True``/``False`` for booleans, ``str(v)`` otherwise, and a value looked up is
  formatted the same way — so a float computed now and the float read back compare equal, and
  no float equality after a round trip through pandas is involved. Give a key value the type it
  was stored with: ``1`` and ``1.0`` are different keys.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numba
import numpy as np

from .._validate import InputError, InputTypeError, check_path
from .._version import __version__

#: The columns each row records besides its results: the versions that pin its numbers.
PROVENANCE = ("meanfield_version", "numpy_version", "numba_version")


def provenance():
    """This process's values of :data:`PROVENANCE`."""


    return {"meanfield_version": __version__, "numpy_version": np.__version__,
            "numba_version": numba.__version__}


def format_value(value):
    """The text a value is written as, and compared as when it is part of a key."""
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def _write_all(fd, data):
    """``os.write`` until every byte is written: a write may write fewer bytes than asked for."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(f"os.write wrote {written} of {len(view)} bytes")
        view = view[written:]


class TrialStore:
    """Rows of results keyed by the ``key`` columns, in a CSV file or (``path=None``) in memory.

    Parameters
    ----------
    path : str, path-like or None
        The CSV file (created on the first append) or None: rows kept in memory only, for runs
        that need no resume.
    key : sequence of str
        The columns that identify a row. A trial written as several rows (one per layer, one per
        epoch) is stored when its last row is: rows are written in order, so look that one up.

    Raises
    ------
    ValueError
        The file lacks a key column, holds a row with the wrong number of fields, or was written
        with other versions than this process's (see the module's notes).

    Notes
    -----
    One process writes a store at a time; an append that finds the file changed since this object
    last wrote it is refused rather than interleaved.
    """

    def __init__(self, path, key):
        if isinstance(key, str) or not all(isinstance(k, str) for k in key) or not len(key):
            raise InputTypeError(f"`key` == {key!r}: must be a non-empty sequence of column names")
        check_path("store", path)
        self.path = None if path is None else Path(path)
        self.key = tuple(key)
        self.provenance = provenance()
        self.columns = None  # the result columns, fixed by the file's header or the first append
        self._stored = None  # pandas.DataFrame of the rows read from the file
        self._new = []  # rows appended by this object
        self._done = set()
        self._size = 0  # bytes of the file's complete lines, as this object last saw it
        self._seen = 0  # bytes of the file, torn tail included, as this object last saw it
        if self.path is not None:
            self._read()

    def _name(self):
        return f"`store` == {str(self.path)!r}"

    def _read(self):
        import pandas as pd  # lazy: `import meanfield` stays light (tests/test_package.py)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise InputError(f"{self._name()}: cannot read ({exc.strerror})") from None
        self._size = data.rfind(b"\n") + 1
        self._seen = len(data)
        text = data[:self._size].decode("utf-8")
        records = [r for r in csv.reader(io.StringIO(text)) if r]
        if not records:
            return
        header, rows = records[0], records[1:]
        missing = [k for k in self.key + PROVENANCE if k not in header]
        if missing:
            why = ("records no versions, so whether its rows match this meanfield cannot be "
                   "checked" if set(missing) & set(PROVENANCE) else "is not a store of these results")
            raise InputError(f"{self._name()}: has columns {header}, not {missing}: it {why}; "
                             f"give another file")
        for lineno, row in enumerate(rows, start=2):
            if len(row) != len(header):
                raise InputError(f"{self._name()}: line {lineno} has {len(row)} fields, the header "
                                 f"{len(header)}: the file was edited or written by something "
                                 f"else; repair or remove that line")
        self._check_provenance(header, rows)
        self.columns = [c for c in header if c not in PROVENANCE]
        where = [header.index(k) for k in self.key]
        self._done = {tuple(row[i] for i in where) for row in rows}
        if rows:

            # "nan" is how a float nan is written; no other text is missing
            frame = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=["", "nan"])
            self._stored = frame.drop_duplicates(subset=list(self.key))[self.columns]

    def _check_provenance(self, header, rows):
        differ = []
        for name in PROVENANCE:
            i = header.index(name)
            found = sorted({row[i] for row in rows})
            if found and found != [self.provenance[name]]:
                differ.append(f"{name} {' and '.join(map(repr, found))} "
                              f"(this process: {self.provenance[name]!r})")
        if differ:
            raise InputError(
                f"{self._name()}: its rows were written with {'; '.join(differ)}. Results of "
                f"different versions can differ in the last bits, so they are not mixed in one "
                f"store: finish this sweep with the versions that wrote it, or give a new store "
                f"file (this one stays readable with pandas.read_csv)")

    def _key(self, row):
        try:
            return tuple(format_value(row[k]) for k in self.key)
        except KeyError as exc:
            raise InputError(f"row {row!r}: lacks the key column {exc.args[0]!r} (key: "
                             f"{list(self.key)})") from None

    def has(self, row):
        """Whether a row with the key values of ``row`` (a dict) is stored."""
        return self._key(row) in self._done

    @property
    def frame(self):
        """The stored rows (earlier runs' and this one's), one per key, as a pandas DataFrame of
        the result columns (every row's provenance is this process's: see the module's notes)."""

        import pandas as pd  # lazy: `import meanfield` stays light (tests/test_package.py)
        parts = [p for p in (self._stored, pd.DataFrame(self._new, columns=self.columns))
                 if p is not None and len(p)]
        if not parts:
            return pd.DataFrame(columns=self.columns)
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)

    def append(self, rows):
        """Store ``rows`` (dicts with the same columns), written to the file at once.

        The first append to a new store fixes the columns; a row whose key is already stored is
        not written again (the rows of a trial cut short by a kill and recomputed are completed,
        not duplicated).
        """
        rows = list(rows)
        if self.columns is None and rows:
            taken = [c for c in rows[0] if c in PROVENANCE]
            if taken:
                raise InputError(f"`rows`: the columns {taken} are the store's own (provenance)")
            self.columns = list(rows[0])
        new, keys = [], set()
        for row in rows:
            if set(row) != set(self.columns):
                raise InputError(f"`rows`: a row has columns {sorted(row)}, the store "
                                 f"{sorted(self.columns)}")
            k = self._key(row)
            if k not in self._done and k not in keys:
                keys.add(k)
                new.append(row)
        if not new:
            return
        if self.path is not None:
            self._write(new)
        self._new += new
        self._done |= keys

    def _write(self, rows):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        header = self._size == 0
        if header:
            writer.writerow(self.columns + list(PROVENANCE))
        tail = [self.provenance[p] for p in PROVENANCE]
        for row in rows:
            fields = [format_value(row[c]) for c in self.columns] + tail
            if any("\n" in f or "\r" in f for f in fields):
                raise InputError(f"`rows`: a value of {row!r} contains a line break; a store "
                                 f"holds one row per line")
            writer.writerow(fields)
        data = buf.getvalue().encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(f"{self._name()}: cannot write ({exc.strerror})") from None
        try:
            size = os.fstat(fd).st_size
            if size != self._seen:
                raise InputError(f"{self._name()}: has {size} bytes, {self._seen} when this "
                                 f"process last read or wrote it: is another process writing to "
                                 f"it? One process per store file; rerun to resume")
            if self._seen > self._size:
                os.ftruncate(fd, self._size)  # the torn last line; its trial is recomputed
                self._seen = self._size
            _write_all(fd, data)
            self._size = self._seen = self._size + len(data)
        finally:
            os.close(fd)
