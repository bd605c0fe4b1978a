"""geomon's Typer command-line app (installed as ``geomon.cli``)."""
