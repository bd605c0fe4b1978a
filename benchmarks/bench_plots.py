"""The pictures of a ``geomon bench`` run: throughput against problem size, and latency distributions (PNG).

They are drawn from the suites' JSON in the run's folder. A suite that did not
run, or that measured nothing to draw, leaves its panel out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def read_suite(out_dir: Path, payload: dict, suite: str) -> dict | None:
    """The JSON of a suite's first run in a bench run's folder (None: the suite did not run)."""
    s = payload["suites"].get(suite)
    if not s:
        return None
    return json.loads((out_dir / s["files"][0]).read_text())


def _pip_panel(ax, data: dict, title: str) -> bool:
    rows = [r for r in data["cases"] if r["outline"] != "zones"]
    if not rows:
        return False
    for outline, marker in (("smooth", "o"), ("spiky", "s")):
        mine = sorted((r for r in rows if r["outline"] == outline), key=lambda r: r["n_vertices"])
        if not mine:
            continue
        v = [r["n_vertices"] for r in mine]
        ax.plot(v, [r["geomon"]["points_per_s"] for r in mine], marker=marker, label=f"geomon, {outline}")
        ax.plot(v, [r["reference"]["points_per_s"] for r in mine], marker=marker, linestyle="--",
                label=f"shapely (prepared), {outline}")
    ax.set(xscale="log", yscale="log", xlabel="polygon vertices", ylabel="points per second", title=title)
    return True


def _encounter_panel(ax, data: dict, title: str) -> bool:
    rows = [r for r in data.get("growth") or [] if "fixes_per_s" in r]
    if not rows:
        return False
    n = [r["n_tracks"] for r in rows]
    ax.plot(n, [r["fixes_per_s"] for r in rows], marker="o", label="geomon encounter search")
    peer = data.get("peer") or {}
    if peer.get("extrapolated_s") and data.get("n_fixes"):
        ax.plot([data["config"]["n_tracks"]], [data["n_fixes"] / peer["extrapolated_s"]], marker="s", linestyle="",
                color="C1", label="shapely STRtree dwithin per instant")
    ax.set(xscale="log", yscale="log", xlabel="tracks (a day each)", ylabel="fixes per second", title=title)
    return True


def _bars_panel(ax, fusion: dict | None, stay: dict | None, replay: dict | None, title: str) -> bool:
    labels, values, colours = [], [], []
    if fusion:
        t = fusion["throughput"]
        labels.append("fuse_tracks")
        values.append(t["geomon"]["fixes_per_s"])
        colours.append("C0")
        if t.get("filterpy"):
            labels.append("filterpy")
            values.append(t["filterpy"]["fixes_per_s"])
            colours.append("C1")
    if stay:
        labels.append("find_staypoints")
        values.append(stay["kernel"]["fixes_per_s"])
        colours.append("C0")
        for peer in ("trackintel", "movingpandas"):
            p = stay["peers"].get(peer) or {}
            if p.get("fixes_per_s") and not p.get("skipped"):
                labels.append(peer)
                values.append(p["fixes_per_s"])
                colours.append("C1")
    if replay:
        labels.append("geomon replay\n(end to end)")
        values.append(replay["runs"][0]["fixes_per_s"])
        colours.append("C2")
    if not labels:
        return False
    ax.barh(labels, values, color=colours)
    ax.set(xscale="log", xlabel="fixes per second (blue geomon, orange peer, green end to end)", title=title)
    ax.invert_yaxis()
    return True


def _latency_figure(data: dict, path: Path) -> bool:
    import matplotlib.pyplot as plt

    runs = [r for r in data["runs"] if r.get("samples")]
    if not runs:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r in runs:
        for ax, key in zip(axes, ("alert_latency_s", "batch_s")):
            v = np.sort(np.asarray(r["samples"][key], dtype=float))
            if v.size:
                ax.plot(v, np.arange(1, v.size + 1) / v.size, label=f"{r['subjects']:,} subjects")
    axes[0].axvline(1.0, color="grey", linestyle=":", label="target p99 1 s")
    axes[0].set(xlabel="fix taken -> alert committed (s)", ylabel="share of alerts", title="Alert latency")
    axes[1].set(xscale="log", xlabel="micro-batch processing (s)", ylabel="share of micro-batches",
                title="Micro-batch time")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def draw(payload: dict, out_dir: Path) -> list[str]:
    """Draw the run's pictures into ``out_dir``; their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    scenario = payload["bench"]
    made = []
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    drawn = [
        _pip_panel(axes[0], read_suite(out_dir, payload, "pip") or {"cases": []}, "Point in polygon"),
        _encounter_panel(axes[1], read_suite(out_dir, payload, "encounters") or {}, "Encounter search"),
        _bars_panel(axes[2], read_suite(out_dir, payload, "fusion"), read_suite(out_dir, payload, "stay"),
                    read_suite(out_dir, payload, "replay"), "Throughput beside the peers"),
    ]
    if any(drawn):
        for ax, ok in zip(axes, drawn):
            if ok:
                ax.grid(alpha=0.3, which="both")
                if ax.get_legend_handles_labels()[0]:
                    ax.legend(fontsize=8)
            else:
                ax.set_visible(False)
        fig.suptitle(f"geomon bench --scenario {scenario}: throughput against problem size")
        fig.tight_layout()
        name = f"bench-{scenario}-throughput.png"
        fig.savefig(out_dir / name, dpi=110)
        made.append(name)
    plt.close(fig)
    latency = read_suite(out_dir, payload, "latency")
    if latency is not None:
        name = f"bench-{scenario}-latency.png"
        if _latency_figure(latency, out_dir / name):
            made.append(name)
    return made
