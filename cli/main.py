"""Entry point of the ``geomon`` command. Commands only parse, delegate and print."""

from __future__ import annotations

import typer

app = typer.Typer(help="geomon: fused tracks and geofence alerts for community supervision.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """geomon: fused tracks and geofence alerts for community supervision."""


@app.command()
def version() -> None:
    """Print geomon's version."""
    import geomon

    typer.echo(geomon.__version__)
