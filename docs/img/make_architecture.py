"""Draw docs/img/architecture.png: geomon's wings, the arrows between them, and the modules of each.

Run from the repository root after a module is added, moved or removed::

    python docs/img/make_architecture.py

An arrow means "may import" (and, through it, what that wing may import), except that store/ imports
io/ alone. The exact rule is the table in tests/test_layers.py (ALLOWED), which the tests hold the code to.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "architecture.png"

#: wing -> (centre x, centre y, width, height, job, colour)
BOXES = {
    "cli": (7.0, 12.6, 7.0, 0.9, "Typer commands (geomon.cli): parsing, progress, printing", "#e0e0e0"),
    "run": (3.0, 10.6, 5.0, 1.3, "replay, live watch, checkpoints, Dask", "#f6d8ae"),
    "sim": (11.0, 10.6, 5.0, 1.5, "simulator, labelled scenarios (tests, benches)", "#f6d8ae"),
    "office": (7.0, 8.6, 5.0, 1.1, "reports, pictures, look-back, scoring", "#f6d8ae"),
    "engine": (4.6, 6.4, 6.0, 1.6, "the Monitor and its detectors (one contract)", "#b9d7ea"),
    "store": (11.0, 6.4, 4.6, 1.2, "DuckDB: alerts, lifecycle, runs, checkpoints", "#d5c4e8"),
    "tracks": (4.6, 4.3, 4.6, 1.1, "fusion, stay points, encounters", "#b9d7ea"),
    "io": (7.0, 2.6, 8.0, 1.1, "loaders, quarantine, Parquet streaming, exports", "#c8e6c9"),
    "geo": (4.6, 0.7, 4.6, 1.1, "frames, datums, point-in-polygon, schedules", "#c8e6c9"),
    "rules": (10.5, 0.7, 4.4, 1.1, "rules file, profiles, special periods", "#c8e6c9"),
}
#: kernels/ (centre x, centre y, width, height), drawn apart: it is not a wing of geomon/.
KERNELS = (0.9, 2.5, 1.6, 3.6)
#: "may import" arrows; with them a wing reaches what its targets reach (store/ excepted: io/ only).
ARROWS = [("cli", "run"), ("cli", "sim"), ("run", "office"), ("sim", "office"), ("office", "engine"),
          ("office", "store"), ("engine", "tracks"), ("tracks", "io"), ("store", "io"), ("io", "geo"), ("io", "rules"),
          ("geo", "kernels")]


def modules(wing: str) -> str:
    folder = REPO / "geomon" / wing
    if wing == "cli":
        folder = REPO / "cli"
    names = sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
    return textwrap.fill(", ".join(names), width=int(BOXES[wing][2] * 13))


def edge_point(wing: str, towards: tuple[float, float]) -> tuple[float, float]:
    """Where the line from a box's centre towards a point leaves the box."""
    x, y, w, h = BOXES[wing][:4] if wing in BOXES else KERNELS
    dx, dy = towards[0] - x, towards[1] - y
    scale = min((w / 2) / abs(dx) if dx else float("inf"), (h / 2) / abs(dy) if dy else float("inf"))
    return x + dx * scale, y + dy * scale



def main() -> None:
    fig, ax = plt.subplots(figsize=(11, 10.5))
    ax.set_xlim(-0.3, 14.3)
    ax.set_ylim(-1.6, 13.4)
    ax.axis("off")
    for wing, (x, y, w, h, job, colour) in BOXES.items():
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.15",
                                    facecolor=colour, edgecolor="#444444", linewidth=1.0))
        title = "cli/" if wing == "cli" else f"geomon/{wing}/"
        ax.text(x, y + h / 2 - 0.2, title, ha="center", va="top", fontsize=10.5, fontweight="bold")
        ax.text(x, y + h / 2 - 0.5, job, ha="center", va="top", fontsize=8, style="italic")
        if wing != "cli":
            ax.text(x, y + h / 2 - 0.78, modules(wing), ha="center", va="top", fontsize=6.5, family="monospace",
                    color="#333333")
    kx, ky, kw, kh = KERNELS
    ax.add_patch(FancyBboxPatch((kx - kw / 2, ky - kh / 2), kw, kh, boxstyle="round,pad=0.02,rounding_size=0.15",
                                facecolor="#fff3b0", edgecolor="#444444"))
    ax.text(kx, ky + kh / 2 - 0.2, "kernels/", ha="center", va="top", fontsize=10.5, fontweight="bold")
    ax.text(kx, ky + kh / 2 - 0.55, "geomon.kernels\nnumba over\nnumpy arrays;\nimports only\nitself\n\nopen to geo,\n"
            "io, tracks,\nengine, office,\nrun, sim", ha="center", va="top", fontsize=7)
    for a, b in ARROWS:
        ca = BOXES[a][:2] if a in BOXES else KERNELS[:2]
        cb = BOXES[b][:2] if b in BOXES else KERNELS[:2]
        start, end = edge_point(a, cb), edge_point(b, ca)
        style = dict(arrowstyle="-|>", mutation_scale=14, linewidth=1.3, color="#333333")
        if a == "store":
            style.update(linestyle="--", color="#6a3d9a")
        ax.add_patch(FancyArrowPatch(start, end, shrinkA=2, shrinkB=2, **style))
    ax.text(9.6, 4.6, "store/ imports io/ only\n(pseudonyms), never geo or rules;\n"
            "only run/, office/ and sim/ reach it", fontsize=7.5, color="#6a3d9a", ha="left", va="center")
    ax.add_patch(FancyBboxPatch((2.0, -1.45), 10.0, 0.75, boxstyle="round,pad=0.02,rounding_size=0.15",
                                facecolor="#f5f5f5", edgecolor="#888888", linestyle=":"))
    ax.text(7.0, -1.07, "geomon/schema.py (Arrow schemas, ALERT_SCHEMA)  +  geomon/errors.py\n"
            "every wing may import them; they import no wing", ha="center", va="center", fontsize=8.5)
    ax.text(14.2, 13.3, "arrow: may import (and what the target may)", ha="right", va="top", fontsize=7.5,
            color="#555555")
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
