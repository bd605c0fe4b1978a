"""The fusion matrix as people read it: a terminal table (a line per cell), a markdown table, a heat map (PNG).

Each reads the ``matrix`` part of a fusion suite's JSON
(:func:`benchmarks.fusion_matrix.run_matrix`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks import fusion_matrix, report

#: The scopes' titles: the held-out row and column named by their family.
SCOPE_TITLES = {"all": "every cell", "training": "training cells",
                "held_out_motion": "held-out row: {motion}", "held_out_noise": "held-out column: {noise}"}


def _scope_title(name: str, matrix: dict) -> str:
    return SCOPE_TITLES[name].format(**matrix["hold_out"])


#: Columns of a cell: (title, function of the row), all in the markdown table.
CELL_COLUMNS = (
    *((f"raw {k}", lambda r, k=k: report.fmt(r["raw_error_m"][k], ".1f")) for k in ("p50", "p90", "p95", "p99")),
    *((f"fused {k}", lambda r, k=k: report.fmt(r["fused_error_m"][k], ".1f")) for k in ("p50", "p90", "p95", "p99")),
    ("p90 ratio", lambda r: report.fmt(r["p90_ratio"], ".2f")),
    ("p99 ratio", lambda r: report.fmt(r["p99_ratio"], ".2f")),
    ("mean NEES", lambda r: report.fmt(r["nees_mean"], ".2f")),
    ("out 95 %", lambda r: report.fmt(100 * r["outside95"], ".1f")),
    ("rejected %", lambda r: f"{100 * r['status_counts'].get('rejected', 0) / max(r['n_fixes'], 1):.1f}"),
)
#: The terminal's subset, so that a cell fits on one line.
COMPACT = ("raw p90", "raw p99", "fused p50", "fused p90", "fused p99", "p90 ratio", "p99 ratio", "mean NEES",
           "out 95 %", "rejected %")


def _cell_values(r: dict, columns=None) -> list[str]:
    return [value(r) for title, value in CELL_COLUMNS if columns is None or title in columns]


def _params_text(matrix: dict) -> str:
    params = matrix["params"]
    return ", ".join(f"{k}={v:g}" for k, v in params.items()) if params else "the kernel's defaults"


def _summary_table(matrix: dict) -> Table:
    bars = [name for name, _, _ in fusion_matrix.BARS]
    table = Table(title=f"Cells missing each bar, and the worst cells (held out: {matrix['hold_out']['motion']} row, "
                        f"{matrix['hold_out']['noise']} column)", title_justify="left")
    for name in ["scope", "cells", "missing", *bars, "worst p90 ratio", "NEES range", "out 95 % range"]:
        table.add_column(name, justify="left" if name == "scope" else "right")
    for name, s in matrix["summaries"].items():
        w = s["worst"]
        table.add_row(
            _scope_title(name, matrix), str(s["n_cells"]),
            report.styled_status("FAIL" if s["n_cells_missing"] else "PASS", f" {s['n_cells_missing']}"),
            *(str(s["misses"][b]) for b in bars),
            f"{report.fmt(w['p90_ratio_max']['value'], '.2f')} {w['p90_ratio_max']['cell'] or ''}",
            f"{report.fmt(w['nees_mean_min']['value'], '.2f')}-{report.fmt(w['nees_mean_max']['value'], '.2f')}",
            f"{report.fmt(_pct(w['outside95_min']['value']), '.1f')}-"
            f"{report.fmt(_pct(w['outside95_max']['value']), '.1f')}",
        )
    return table


def _pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def print_matrix(matrix: dict, config: dict, console: Console) -> None:
    """The matrix (a line per cell, with the bars it misses), the tuning, the scopes' summary, the departures."""
    title = (f"Fusion matrix: {config['n_tracks']} tracks, about {config['fixes_per_cell']:,} fixes per cell, "
             f"seed {config['seed']}, parameters: {_params_text(matrix)}; {matrix.get('seconds', 0):.0f} s")
    table = Table(title=title, title_justify="left", caption="H: held out (m motion, n noise, b both)",
                  caption_justify="left")
    for name in ["motion", "noise", "dt s", *COMPACT, "H", "misses"]:
        table.add_column(name, justify="left" if name in ("motion", "noise", "H", "misses") else "right",
                         no_wrap=True)
    marks = {"training": "", "held_out_motion": "m", "held_out_noise": "n", "held_out_both": "b"}
    for r in matrix["cells"]:
        missed = ",".join(r["missed"])
        table.add_row(r["motion"], r["noise"], str(r["interval_s"]), *_cell_values(r, COMPACT), marks[r["scope"]],
                      f"[bold red]{missed}[/]" if missed else "[green]-[/]")
    console.print(table)
    tuning = matrix["tuning"]
    if tuning:
        tt = Table(title="Tuning on the training cells (fewest violations, then mean |ln(NEES/2)|, then mean p90 "
                         "ratio)", title_justify="left")
        for name in ["parameters", "violations", "mean |ln(NEES/2)|", "mean p90 ratio", "chosen"]:
            tt.add_column(name, justify="left" if name == "parameters" else "right")
        for i, p in enumerate(tuning["points"]):
            tt.add_row(", ".join(f"{k}={v:g}" for k, v in p["params"].items()) or "defaults", str(p["violations"]),
                       f"{p['nees_log_dev']:.3f}", f"{p['p90_ratio_mean']:.3f}", "<-" if i == tuning["chosen"] else "")
        console.print(tt)
        if tuning["dropped"]:
            console.print(f"[yellow]grid names the kernel no longer knows, dropped:[/] {', '.join(tuning['dropped'])}")
    console.print(_summary_table(matrix))
    dep = matrix["departure"]
    ok = dep["error_sigma_max"] is not None and dep["error_sigma_max"] <= fusion_matrix.DEPARTURE_BAR
    console.print(f"Departures ({dep['n_trials']} trials, 10 min still then 10-15 m/s, {dep['interval_s']:g} s "
                  f"fixes): worst fused error after the second moving fix {report.fmt(dep['error_sigma_max'])} "
                  f"sigma (median trial {report.fmt(dep['error_sigma_p50'])}), {dep['trials_over_bar']} trials "
                  f"over {fusion_matrix.DEPARTURE_BAR:g} sigma: " + report.styled_status("PASS" if ok else "FAIL"))
    console.print(f"  (the raw fix at the second moving fix, for reference: worst "
                  f"{report.fmt(dep['raw_second_sigma_max'])} sigma, {dep['raw_second_trials_over_bar']} trials "
                  f"over {fusion_matrix.DEPARTURE_BAR:g})")


def markdown_table(matrix: dict) -> str:
    """The docs' table: a row per cell with the bars it misses, then the scopes' summary and the departures."""
    lines = [f"Parameters: {_params_text(matrix)}. Held out: the `{matrix['hold_out']['motion']}` row and the "
             f"`{matrix['hold_out']['noise']}` column.", "",
             "| motion | noise | interval s | " + " | ".join(t for t, _ in CELL_COLUMNS) + " | misses |",
             "|" + " --- |" * (len(CELL_COLUMNS) + 4)]
    for r in matrix["cells"]:
        held = "" if r["scope"] == "training" else " (held out)"
        lines.append(f"| {r['motion']} | {r['noise']}{held} | {r['interval_s']} | " + " | ".join(_cell_values(r))
                     + f" | {', '.join(r['missed']) or '-'} |")
    bars = [name for name, _, _ in fusion_matrix.BARS]
    lines += ["", "| cells | count | missing a bar | " + " | ".join(bars) + " | worst p90 ratio | NEES range |"
              " out 95 % range |", "|" + " --- |" * (len(bars) + 6)]
    for name, s in matrix["summaries"].items():
        w = s["worst"]
        lines.append(
            f"| {_scope_title(name, matrix)} | {s['n_cells']} | {s['n_cells_missing']} | "
            + " | ".join(str(s["misses"][b]) for b in bars)
            + f" | {report.fmt(w['p90_ratio_max']['value'], '.2f')} ({w['p90_ratio_max']['cell']}) | "
            f"{report.fmt(w['nees_mean_min']['value'], '.2f')}-{report.fmt(w['nees_mean_max']['value'], '.2f')} | "
            f"{report.fmt(_pct(w['outside95_min']['value']), '.1f')}-"
            f"{report.fmt(_pct(w['outside95_max']['value']), '.1f')} |")
    dep = matrix["departure"]
    lines += ["", f"Departures: {dep['n_trials']} trials at {dep['interval_s']:g} s, worst fused error after the "
              f"second moving fix {report.fmt(dep['error_sigma_max'])} sigma (bar {fusion_matrix.DEPARTURE_BAR:g}), "
              f"{dep['trials_over_bar']} trials over; the raw fix at the second moving fix alone: worst "
              f"{report.fmt(dep['raw_second_sigma_max'])} sigma, {dep['raw_second_trials_over_bar']} trials "
              "over.", ""]
    return "\n".join(lines)


def _grid(matrix: dict, field: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Values of ``field`` as (motion x interval) rows by noise columns, with the labels."""
    motions = list(dict.fromkeys(r["motion"] for r in matrix["cells"]))
    noises = list(dict.fromkeys(r["noise"] for r in matrix["cells"]))
    intervals = list(matrix["intervals_s"])
    values = np.full((len(motions) * len(intervals), len(noises)), np.nan)
    for r in matrix["cells"]:
        i = motions.index(r["motion"]) * len(intervals) + intervals.index(r["interval_s"])
        values[i, noises.index(r["noise"])] = np.nan if r[field] is None else r[field]
    rows = [f"{m} {s} s" for m in motions for s in intervals]
    return values, rows, noises


def heat_map(matrix: dict, path: Path) -> Path:
    """PNG of fused/raw p90 (centred on 1) and mean NEES (centred on 2, log scale) per cell, values written in.

    The held-out row and column are framed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle

    panels = (("p90_ratio", "fused p90 / raw p90 (bar <= 1; 0.7 for walk and drive in white at <= 15 s)", 1.0),
              ("nees_mean", f"mean NEES (2 is honest; bar {fusion_matrix.NEES_BAR[0]:g}-"
                            f"{fusion_matrix.NEES_BAR[1]:g})", 2.0))
    _, rows, noises = _grid(matrix, panels[0][0])
    fig, axes = plt.subplots(1, 2, figsize=(15, 0.32 * len(rows) + 2.5))
    hold = matrix["hold_out"]
    for ax, (field, title, centre) in zip(axes, panels):
        values = _grid(matrix, field)[0]
        # Colours on a log scale around the bar, so 0.5x and 2x are equally far from it.
        shown = np.log2(np.where(values > 0, values, np.nan) / centre)
        reach = max(float(np.nanmax(np.abs(shown))) if np.isfinite(shown).any() else 1.0, 0.5)
        image = ax.imshow(shown, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -reach, reach), aspect="auto")
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, "n/a" if not np.isfinite(v) else f"{v:.2f}" if v < 100 else f"{v:.0f}",
                    ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(noises)), noises, rotation=30, ha="right")
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.set_title(title, fontsize=10)
        held_rows = [i for i, r in enumerate(rows) if r.split(" ")[0] == hold["motion"]]
        if held_rows:
            ax.add_patch(Rectangle((-0.5, held_rows[0] - 0.5), len(noises), len(held_rows), fill=False, lw=2))
        if hold["noise"] in noises:
            ax.add_patch(Rectangle((noises.index(hold["noise"]) - 0.5, -0.5), 1, len(rows), fill=False, lw=2))
        bar = fig.colorbar(image, ax=ax, fraction=0.04)
        bar.set_label(f"log2(value / {centre:g})")
    fig.suptitle(f"Fusion matrix ({_params_text(matrix)}); framed: held out ({hold['motion']} row, "
                 f"{hold['noise']} column)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
