"""How the ``geomon`` commands report domain and input errors: one clear line, exit code 1."""

from __future__ import annotations

import functools

import typer

__all__ = ["one_line_errors"]


def one_line_errors(func):
    """Turn domain and input errors into one clear line on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from geomon.errors import GeomonError

        try:
            return func(*args, **kwargs)
        except (GeomonError, ValueError, FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError) as exc:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(code=1) from None

    return wrapper
