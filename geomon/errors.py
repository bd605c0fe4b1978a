"""Errors geomon raises on purpose: each names the input and the problem in one line."""

from __future__ import annotations


class GeomonError(Exception):
    """Base class of every error geomon raises on purpose."""


class InputError(GeomonError, ValueError):
    """An input file or table is not what it claims to be.

    The message names the file (or table), and where known the row and field,
    and says what is wrong, so the CLI can print it as one line.
    """

    def __init__(self, source: str, problem: str, *, row: int | None = None, field: str | None = None):
        self.source = str(source)
        self.problem = problem
        self.row = row
        self.field = field
        where = self.source
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")


class StoreError(GeomonError):
    """The alert store could not be opened or written: busy (another writer), not permitted, or the disk failed.

    The message names the store and says what happened and what was kept: a
    failed write rolls its whole transaction back, so everything committed
    before it is intact.
    """
