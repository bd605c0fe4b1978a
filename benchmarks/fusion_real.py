"""The fusion filter on a real drive: single-point GNSS fixes of a car in town against a PPK reference.

The data (``data/field/gnss_benchmark_drive.csv``, made by
``data/field/make_gnss_benchmark_drive.py``; provenance and licence in
``data/field/README.md``): a 20-minute drive near 41.64 N 2.35 E on
2020-11-29, one epoch a second; the fixes are RTKLIB single-point solutions of
a Septentrio mosaic-X5's observations, each with its per-axis 1-sigma, and the
truth is the same receiver's PPK solution (centimetre level; not an
independent instrument, but two orders of magnitude better than the fixes).

The fixes are projected to the local metric frame geomon picks for them
(:func:`geomon.geo.crs.choose_frame`, as :func:`geomon.fuse` does) and fused
exactly as the matrix fuses a cell (:func:`benchmarks.fusion_matrix.run_filter`:
``fuse_tracks`` with the sigma of :func:`benchmarks.fusion_matrix.filter_sigma_m`;
the SPP sigma is kind ``sigma``, source ``gnss``) at one fix a second and
subsampled to one fix per 5 s and per 15 s. Every phase of a subsampling is a
track of its own (15 tracks at 15 s, offsets 0-14 s) and their errors are
pooled. A fix with no reference epoch is fed to the filter but not scored. Each
interval's row has the matrix's metrics (:func:`benchmarks.fusion_matrix.cell_metrics`)
and is judged on the matrix's bars (:func:`benchmarks.fusion_matrix.missed_bars`).

This drive is a held-out check: it is never used to choose a parameter (the
suite passes it the parameters chosen on the matrix's training cells, or the
kernel's defaults), so that it says how the filter does on data it was not
fitted to.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks import fusion_matrix, fusion_matrix_report, report

DRIVE = Path(__file__).resolve().parents[1] / "data" / "field" / "gnss_benchmark_drive.csv"
#: Reporting intervals of the real rows, seconds.
INTERVALS_S = (1, 5, 15)
#: The rows' motion and noise names (their label is ``real_drive/spp/15s``).
MOTION, NOISE = "real_drive", "spp"
#: What the SPP sigma is to :func:`geomon.io.accuracy.sigma_from_accuracy`, and the fixes' source.
ACCURACY_KIND, SOURCE = "sigma", "gnss"
#: The gated metrics of each row: (row field, op, threshold, what). The thresholds are the matrix's bars
#: (:data:`benchmarks.fusion_matrix.BARS`: fused/raw p90 and p99 at most 1, NEES and the 95 % ellipse).
REAL_BARS = (
    ("p90_ratio", "<=", 1.0, "fused/raw p90"),
    ("p99_ratio", "<=", 1.0, "fused/raw p99"),
    ("nees_mean", "in", fusion_matrix.NEES_BAR, "mean NEES"),
    ("outside95", "in", fusion_matrix.OUTSIDE95_BAR, "share outside the 95 % ellipse"),
)
COLUMNS = ("t_utc", "ref_lon", "ref_lat", "spp_lon", "spp_lat", "spp_sdn_m", "spp_sde_m", "spp_sigma_m", "n_sat")


@dataclass(frozen=True)
class Drive:
    """The drive, one row per 1 Hz epoch; NaN where the reference or the fix is missing."""

    t_ms: np.ndarray
    ref_lon: np.ndarray
    ref_lat: np.ndarray
    fix_lon: np.ndarray
    fix_lat: np.ndarray
    #: Per-axis 1-sigma (m) of each fix: the RMS of RTKLIB's sdn and sde.
    sigma_m: np.ndarray
    #: Satellites in the fix (0 where there is none).
    n_sat: np.ndarray

    @property
    def has_fix(self) -> np.ndarray:
        return np.isfinite(self.fix_lon) & np.isfinite(self.fix_lat)

    @property
    def has_truth(self) -> np.ndarray:
        return np.isfinite(self.ref_lon) & np.isfinite(self.ref_lat)


def load_drive(path: Path | str = DRIVE) -> Drive:
    """Read the drive's CSV; a fix must come with a finite sigma, or the file is refused."""
    import pyarrow as pa
    from pyarrow import csv

    types = {name: pa.float64() for name in COLUMNS} | {"t_utc": pa.timestamp("ms", tz="UTC"), "n_sat": pa.int64()}
    table = csv.read_csv(path, convert_options=csv.ConvertOptions(column_types=types, include_columns=COLUMNS))

    def col(name: str) -> np.ndarray:
        return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)

    drive = Drive(np.asarray(table.column("t_utc").cast(pa.int64()).to_numpy(), dtype=np.int64),
                  col("ref_lon"), col("ref_lat"), col("spp_lon"), col("spp_lat"), col("spp_sigma_m"),
                  np.asarray(table.column("n_sat").fill_null(0).to_numpy(), dtype=np.int64))
    bad = drive.has_fix & ~(np.isfinite(drive.sigma_m) & (drive.sigma_m > 0))
    if bad.any() or np.any(np.diff(drive.t_ms) <= 0):
        raise ValueError(f"{path}: {int(bad.sum())} fixes without a sigma, or epochs out of order")
    return drive


def project(drive: Drive) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reference and fix positions in geomon's local metric frame for the drive: ``ref_x, ref_y, fix_x, fix_y``."""
    from geomon.geo.crs import choose_frame

    lon = np.concatenate([drive.ref_lon[drive.has_truth], drive.fix_lon[drive.has_fix]])
    lat = np.concatenate([drive.ref_lat[drive.has_truth], drive.fix_lat[drive.has_fix]])
    frame = choose_frame(lon, lat)
    ref_x, ref_y = frame.project(drive.ref_lon, drive.ref_lat)
    fix_x, fix_y = frame.project(drive.fix_lon, drive.fix_lat)
    return ref_x, ref_y, fix_x, fix_y


def phases(t_ms: np.ndarray, has_fix: np.ndarray, interval_s: int) -> tuple[np.ndarray, np.ndarray]:
    """Epoch indexes of every phase of a subsampling to one fix per ``interval_s``, phase after phase, and the
    offsets of the phases (CSR): phase ``p`` keeps the fixes at ``p, p + interval_s, ...`` s after the first epoch.
    """
    slot = (t_ms - t_ms[0]) // 1000
    parts = [np.flatnonzero(has_fix & (slot % interval_s == p)) for p in range(interval_s)]
    offsets = np.concatenate([[0], np.cumsum([p.size for p in parts])]).astype(np.int64)
    return np.concatenate(parts), offsets


def interval_row(drive: Drive, xy: tuple, interval_s: int, params: dict) -> dict:
    """One interval's row: the matrix's metrics over the fixes with a reference, and the bars it misses."""
    from geomon.sim.field import FieldTruth
    from geomon.sim.field_noise import FieldFixes

    ref_x, ref_y, fix_x, fix_y = xy
    idx, offsets = phases(drive.t_ms, drive.has_fix, interval_s)
    n = idx.size
    nan = np.full(n, np.nan)
    truth = FieldTruth(MOTION, float(interval_s), offsets, drive.t_ms[idx], ref_x[idx], ref_y[idx], nan)
    fixes = FieldFixes(NOISE, fix_x[idx], fix_y[idx], drive.sigma_m[idx], ACCURACY_KIND,
                       np.full(n, SOURCE, dtype=object), nan, np.zeros(n, bool))
    fused = fusion_matrix.run_filter(truth, fixes, params)
    # Score where there is a reference: the same metrics on the scored fixes (the filter saw every fix).
    scored = drive.has_truth[idx]
    truth_s = dataclasses.replace(truth, t_ms=truth.t_ms[scored], x_m=truth.x_m[scored], y_m=truth.y_m[scored],
                                  speed_mps=nan[scored])
    fixes_s = dataclasses.replace(fixes, x_m=fixes.x_m[scored], y_m=fixes.y_m[scored])
    cell = fusion_matrix.Cell(MOTION, NOISE, interval_s)
    row = fusion_matrix.cell_metrics(cell, truth_s, fixes_s, tuple(np.asarray(a)[scored] for a in fused))
    row |= {"key": f"{MOTION}_{interval_s}s", "n_fed": int(n), "n_unscored": int(n - scored.sum()),
            "sigma_p50_m": float(np.median(fixes.accuracy_m))}
    row["missed"] = fusion_matrix.missed_bars(cell, row)
    return row


def real_rows(params: dict, drive: Drive | None = None) -> list[dict]:
    """A row per interval of :data:`INTERVALS_S` with ``params`` for ``fuse_tracks`` (never tuned on this drive)."""
    drive = load_drive() if drive is None else drive
    xy = project(drive)
    return [interval_row(drive, xy, k, params) for k in INTERVALS_S]


def real_targets(rows: list[dict]) -> list[dict]:
    """The gated metrics of each row (:data:`REAL_BARS`), keyed ``p90_ratio@real_drive_15s`` and so on."""
    targets = []
    for r in rows:
        for field, op, threshold, what in REAL_BARS:
            void = "" if r[field] is not None else "nothing measured"
            targets.append(report.target(f"real drive, {r['interval_s']} s fixes: {what}", r[field], op, threshold,
                                         key=f"{field}@{r['key']}", void=void, row=r["label"]))
    return targets


def print_real(rows: list[dict], console: Console) -> None:
    """A line per interval, in the matrix's compact columns, with the bars it misses."""
    columns = [(t, value) for t, value in fusion_matrix_report.CELL_COLUMNS if t in fusion_matrix_report.COMPACT]
    first = rows[0] if rows else {"n_fed": 0, "n_unscored": 0, "sigma_p50_m": float("nan")}
    table = Table(title="Real drive (held out, never tuned on): SPP fixes of a car in town against PPK",
                  title_justify="left", caption_justify="left",
                  caption=f"{first['n_fed']:,} fixes fed, {first['n_unscored']} without a reference (not scored); "
                          f"median sigma {first['sigma_p50_m']:.1f} m; at 5 and 15 s every phase is a track, pooled")
    for name in ["dt s", "scored", *(t for t, _ in columns), "misses"]:
        table.add_column(name, justify="left" if name == "misses" else "right", no_wrap=True)
    for r in rows:
        missed = ",".join(r["missed"])
        table.add_row(str(r["interval_s"]), f"{r['n_fixes']:,}", *(value(r) for _, value in columns),
                      f"[bold red]{missed}[/]" if missed else "[green]-[/]")
    console.print(table)
