"""Risk heat maps and correction-effect curves, with small groups suppressed (k-anonymity).

The supervision centre reads two pictures (风险热力图, 矫正效果曲线):

- :func:`risk_grid` counts alerts per square cell of a local metric frame
  (cells aligned to multiples of ``cell_m`` in that frame, so maps of
  different days line up); :func:`plot_risk_map` draws it over the offices'
  jurisdictions and :meth:`RiskGrid.to_geojson` writes it as polygons.
- :func:`alert_curves` counts alerts per week (or day) per office or per
  subject; :func:`plot_curves` draws them.

A map shared beyond an office must never point at one person: any cell (or
office-week) whose alerts come from fewer than ``k`` distinct subjects is
*suppressed*: left out of the GeoJSON and the picture, and counted only in
the totals printed with it (``k`` is configurable; ``k=1`` turns suppression
off). Subject curves are one person's record by nature: they are labelled with
keyed pseudonyms (:mod:`geomon.io.export`) and are for the office's casework, not
for sharing.

Pictures are written with matplotlib's object API (no pyplot, no global
state), so they can be made from any thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geomon.geo.crs import LocalFrame, choose_frame
from geomon.tracks.stays import positive_number

__all__ = ["CURVE_SCHEMA", "GRID_SCHEMA", "RiskGrid", "alert_curves", "plot_curves", "plot_risk_map",
           "risk_grid"]

CST = timezone(timedelta(hours=8))

#: Rows of :attr:`RiskGrid.cells`: cell indices in the frame (cell ``(ix, iy)``
#: covers ``[ix * cell_m, (ix + 1) * cell_m) x [iy * cell_m, (iy + 1) * cell_m)``),
#: its centre in WGS84 degrees, the alerts in it, their distinct subjects, and
#: whether it is suppressed (``n_subjects < k``).
GRID_SCHEMA = pa.schema([
    pa.field("ix", pa.int64(), nullable=False), pa.field("iy", pa.int64(), nullable=False),
    pa.field("lon", pa.float64(), nullable=False), pa.field("lat", pa.float64(), nullable=False),
    pa.field("n_alerts", pa.int64(), nullable=False), pa.field("n_subjects", pa.int64(), nullable=False),
    pa.field("suppressed", pa.bool_(), nullable=False)])

#: Rows of :func:`alert_curves`: the group (office id, or subject pseudonym),
#: the first day of the bin (China Standard Time; weeks start on Monday), the
#: alerts and distinct subjects in it, alerts per supervised subject (when a
#: roster is given), and whether it is suppressed (``0 < n_subjects < k``;
#: its counts are then null).
CURVE_SCHEMA = pa.schema([
    pa.field("group", pa.string(), nullable=False), pa.field("period", pa.date32(), nullable=False),
    pa.field("n_alerts", pa.int64(), nullable=True), pa.field("n_subjects", pa.int64(), nullable=True),
    pa.field("alerts_per_subject", pa.float64(), nullable=True), pa.field("suppressed", pa.bool_(), nullable=False)])


def _check_k(k: int) -> int:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    return int(k)


@dataclass(frozen=True)
class RiskGrid:
    """Alerts counted per cell; see :func:`risk_grid`.

    Attributes
    ----------
    cells : pyarrow.Table
        :data:`GRID_SCHEMA`, one row per cell holding at least one alert,
        suppressed ones included (never export this table as is: use
        :meth:`shown` or :meth:`to_geojson`).
    frame : LocalFrame
        The metric frame the cells are square in.
    cell_m, k : float, int
        Cell side in metres of the frame; the suppression threshold.
    """

    cells: pa.Table
    frame: LocalFrame
    cell_m: float
    k: int

    def shown(self) -> pa.Table:
        """The cells that may be shared: those with at least ``k`` distinct subjects."""
        return self.cells.filter(pc.invert(self.cells.column("suppressed")))

    @property
    def n_alerts(self) -> int:
        """All alerts counted, suppressed cells included."""
        return int(pc.sum(self.cells.column("n_alerts")).as_py() or 0)

    @property
    def n_suppressed_cells(self) -> int:
        return self.cells.num_rows - self.shown().num_rows

    @property
    def n_suppressed_alerts(self) -> int:
        shown = self.shown().column("n_alerts")
        return self.n_alerts - int(pc.sum(shown).as_py() or 0)

    def cell_polygon(self, ix: int, iy: int, *, per_side: int = 4) -> list[list[float]]:
        """The cell's outline as a closed ring of [lon, lat] (``per_side`` points per side, counter-clockwise)."""
        x0, y0, c = ix * self.cell_m, iy * self.cell_m, self.cell_m
        s = np.arange(per_side) / per_side
        xs = np.concatenate([x0 + c * s, np.full(per_side, x0 + c), x0 + c - c * s, np.full(per_side, x0)])
        ys = np.concatenate([np.full(per_side, y0), y0 + c * s, np.full(per_side, y0 + c), y0 + c - c * s])
        lon, lat = self.frame.unproject(xs, ys)
        ring = [[float(a), float(b)] for a, b in zip(lon, lat)]
        return ring + [ring[0]]

    def to_geojson(self) -> dict:
        """The shown cells as a GeoJSON FeatureCollection; suppression totals in its ``suppressed`` member."""
        features = [{"type": "Feature",
                     "geometry": {"type": "Polygon", "coordinates": [self.cell_polygon(r["ix"], r["iy"])]},
                     "properties": {"n_alerts": r["n_alerts"], "n_subjects": r["n_subjects"],
                                    "cell_m": self.cell_m}}
                    for r in self.shown().to_pylist()]
        return {"type": "FeatureCollection", "features": features,
                "k": self.k, "frame": self.frame.crs,
                "suppressed": {"cells": self.n_suppressed_cells, "alerts": self.n_suppressed_alerts}}


def risk_grid(alerts: pa.Table, *, cell_m: float = 1000.0, k: int = 5, frame: LocalFrame | None = None) -> RiskGrid:
    """Count alerts and their distinct subjects per square cell, and mark cells below ``k`` subjects suppressed.

    Parameters
    ----------
    alerts : pyarrow.Table
        With ``subject_id``, ``lon`` and ``lat`` (degrees, WGS84), e.g.
        :meth:`geomon.store.alert_store.AlertStore.list_alerts`.
    cell_m : float
        Cell side in metres (of ``frame``).
    k : int
        Cells whose alerts come from fewer than ``k`` distinct subjects are
        suppressed.
    frame : LocalFrame, optional
        Default: :func:`geomon.geo.crs.choose_frame` of the alert positions. Pass
        the same frame (e.g. chosen from the county's zones) to compare maps.
    """
    cell_m = positive_number("cell_m", cell_m)
    k = _check_k(k)
    lon = np.asarray(alerts.column("lon").to_numpy(zero_copy_only=False), dtype=np.float64)
    lat = np.asarray(alerts.column("lat").to_numpy(zero_copy_only=False), dtype=np.float64)
    subject = np.asarray(alerts.column("subject_id").to_pylist(), dtype=object)
    if frame is None:
        frame = choose_frame(lon, lat) if lon.size else LocalFrame(32650)
    if not lon.size:
        return RiskGrid(GRID_SCHEMA.empty_table(), frame, cell_m, k)
    x, y = frame.project(lon, lat)
    ix = np.floor(x / cell_m).astype(np.int64)
    iy = np.floor(y / cell_m).astype(np.int64)
    _, subject_code = np.unique(subject, return_inverse=True)
    cells, cell_of = np.unique(np.stack([ix, iy], axis=1), axis=0, return_inverse=True)
    cell_of = cell_of.ravel()
    n_alerts = np.bincount(cell_of, minlength=len(cells))
    pairs = np.unique(np.stack([cell_of, subject_code], axis=1), axis=0)
    n_subjects = np.bincount(pairs[:, 0], minlength=len(cells))
    c_lon, c_lat = frame.unproject((cells[:, 0] + 0.5) * cell_m, (cells[:, 1] + 0.5) * cell_m)
    table = pa.table([cells[:, 0], cells[:, 1], c_lon, c_lat, n_alerts.astype(np.int64),
                      n_subjects.astype(np.int64), n_subjects < k], schema=GRID_SCHEMA)
    return RiskGrid(table, frame, cell_m, k)


def _jurisdictions(zones):
    """(office_id, shapely geometry) of every jurisdiction zone of a ZoneLoad."""
    office = zones.properties.column("office_id").to_pylist()
    return [(office[i] or zones.zone_id[i], zones.geometry[i]) for i in np.flatnonzero(zones.kind == "jurisdiction")]


def _rings(geometry):
    polys = getattr(geometry, "geoms", [geometry])
    for poly in polys:
        yield np.asarray(poly.exterior.coords)


def risk_map_array(grid: RiskGrid) -> tuple[np.ma.MaskedArray, tuple[float, float, float, float]]:
    """The shown cells as a masked count image over their bounding box, and its extent (x0, x1, y0, y1) in m."""
    shown = grid.shown()
    if not shown.num_rows:
        return np.ma.masked_all((1, 1)), (0.0, grid.cell_m, 0.0, grid.cell_m)
    ix = shown.column("ix").to_numpy()
    iy = shown.column("iy").to_numpy()
    image = np.ma.masked_all((int(iy.max() - iy.min()) + 1, int(ix.max() - ix.min()) + 1))
    image[iy - iy.min(), ix - ix.min()] = shown.column("n_alerts").to_numpy()
    c = grid.cell_m
    return image, (ix.min() * c, (ix.max() + 1) * c, iy.min() * c, (iy.max() + 1) * c)


def plot_risk_map(grid: RiskGrid, out: str | Path, *, zones=None, title: str | None = None) -> Path:
    """Write the heat map of ``grid`` as a PNG: shown cells coloured by alerts (log scale), offices outlined.

    Parameters
    ----------
    zones : geomon.io.load.ZoneLoad, optional
        Its ``jurisdiction`` zones are drawn and labelled with their office.
    """
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(9, 8), dpi=110)
    ax = fig.add_subplot()
    image, (x0, x1, y0, y1) = risk_map_array(grid)
    km = 1000.0
    if image.count():
        vmax = max(2.0, float(image.max()))
        norm = LogNorm(vmin=1, vmax=vmax) if vmax > 100 else Normalize(vmin=0, vmax=vmax)
        mesh = ax.imshow(image, origin="lower", extent=(x0 / km, x1 / km, y0 / km, y1 / km), cmap="YlOrRd",
                         norm=norm, interpolation="nearest", zorder=1)
        bar = fig.colorbar(mesh, ax=ax, shrink=0.8, label=f"alerts per {grid.cell_m:g} m cell")
        if vmax <= 100:
            bar.locator = MaxNLocator(integer=True)
            bar.update_ticks()
    if zones is not None:
        for office, geometry in _jurisdictions(zones):
            for ring in _rings(geometry):
                x, y = grid.frame.project(ring[:, 0], ring[:, 1])
                ax.plot(x / km, y / km, color="0.25", linewidth=0.9, zorder=2)
            label = geometry.representative_point()
            lx, ly = grid.frame.project([label.x], [label.y])
            ax.annotate(office, (lx[0] / km, ly[0] / km), fontsize=7, color="0.15", ha="center", zorder=3)
    ax.set_aspect("equal")
    ax.set_xlabel(f"easting, km ({grid.frame.crs})")
    ax.set_ylabel("northing, km")
    ax.set_title(title or f"Risk heat map: {grid.n_alerts} alerts")
    ax.text(0.01, 0.01, f"cells with fewer than {grid.k} distinct subjects not shown: "
                        f"{grid.n_suppressed_cells} cells, {grid.n_suppressed_alerts} alerts",
            transform=ax.transAxes, fontsize=8, color="0.3")
    out = Path(out)
    fig.savefig(out, bbox_inches="tight")
    return out


def _bin_start(day: date, bin: str) -> date:
    return day - timedelta(days=day.weekday()) if bin == "week" else day


def alert_curves(alerts: pa.Table, *, by: str = "office", bin: str = "week", k: int = 5, key: bytes | None = None,
                 roster=None) -> pa.Table:
    """Alerts per week (or day) per office or subject, zero-filled between the first and last bin.

    Parameters
    ----------
    alerts : pyarrow.Table
        With ``subject_id``, ``office_id`` and ``onset_ts`` (the bin is the
        onset's day in China Standard Time).
    by : {"office", "subject"}
        Office curves suppress bins whose alerts come from ``1 .. k-1``
        distinct subjects. Subject curves are labelled ``pseudonym(id, key)``
        (a key is required) and are not suppressed: they are one person's record.
    bin : {"week", "day"}
    roster : pyarrow.Table, optional
        ``subject_id``, ``office_id``: adds alerts per supervised subject (office curves).

    Returns
    -------
    pyarrow.Table
        :data:`CURVE_SCHEMA`, ordered by group and period.
    """
    from geomon.io.export import pseudonym

    if by not in ("office", "subject"):
        raise ValueError(f"by must be office or subject, not {by!r}")
    if bin not in ("week", "day"):
        raise ValueError(f"bin must be week or day, not {bin!r}")
    if by == "subject" and key is None:
        raise ValueError("subject curves are labelled with pseudonyms: a pseudonym key is required")
    k = _check_k(k) if by == "office" else 1
    rows = alerts.select(["subject_id", "office_id", "onset_ts"]).to_pylist()
    counts: dict[tuple[str, date], int] = {}
    subjects: dict[tuple[str, date], set] = {}
    for r in rows:
        group = (r["office_id"] or "(none)") if by == "office" else pseudonym(r["subject_id"], key)
        cell = (group, _bin_start(r["onset_ts"].astimezone(CST).date(), bin))
        counts[cell] = counts.get(cell, 0) + 1
        subjects.setdefault(cell, set()).add(r["subject_id"])
    supervised = {}
    if roster is not None and by == "office":
        for r in roster.select(["office_id"]).to_pylist():
            supervised[r["office_id"]] = supervised.get(r["office_id"], 0) + 1
    out = []
    if counts:
        step = timedelta(days=7 if bin == "week" else 1)
        first, last = min(p for _, p in counts), max(p for _, p in counts)
        for group in sorted({g for g, _ in counts}):
            period = first
            while period <= last:
                n, who = counts.get((group, period), 0), subjects.get((group, period), ())
                hidden = 0 < len(who) < k
                per = n / supervised[group] if supervised.get(group) else None
                out.append({"group": group, "period": period, "n_alerts": None if hidden else n,
                            "n_subjects": None if hidden else len(who),
                            "alerts_per_subject": None if hidden else per, "suppressed": hidden})
                period += step
    return pa.Table.from_pylist(out, schema=CURVE_SCHEMA)


def plot_curves(curves: pa.Table, out: str | Path, *, bin: str = "week", title: str | None = None,
                per_subject: bool = False, panels_from: int = 7) -> Path:
    """Write the curves of :func:`alert_curves` as a PNG; suppressed bins are gaps.

    Up to ``panels_from - 1`` groups share one set of axes; more get one small
    panel each (shared axes), which stays readable for a county's offices.
    """
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    column = "alerts_per_subject" if per_subject else "n_alerts"
    groups = curves.column("group").to_pylist()
    periods = curves.column("period").to_pylist()
    values = curves.column(column).to_pylist()
    suppressed = curves.column("suppressed").to_pylist()
    names = list(dict.fromkeys(groups))
    panels = len(names) >= panels_from
    ncols = 4 if panels else 1
    nrows = -(-len(names) // ncols) if panels else 1
    fig = Figure(figsize=(12, 2.2 * nrows + 1) if panels else (10, 5.5), dpi=110)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for i, name in enumerate(names):
        ax = axes[i] if panels else axes[0]
        idx = [j for j, g in enumerate(groups) if g == name]
        y = np.array([np.nan if values[j] is None else values[j] for j in idx], dtype=float)
        ax.plot([periods[j] for j in idx], y, marker="o", markersize=3, linewidth=1.2,
                color="C0" if panels else f"C{i % 10}", label=name)
        hidden = [periods[j] for j in idx if suppressed[j]]
        if hidden:   # where a point is withheld, not what it was
            ax.plot(hidden, [0.03] * len(hidden), "x", color="0.5", markersize=4, transform=ax.get_xaxis_transform())
        if panels:
            ax.set_title(name, fontsize=9)
    for ax in axes[len(names):] if panels else ():
        ax.set_visible(False)
    if len(set(periods)) == 1:   # one bin: give the (shared) axis a width the date locator can tick
        axes[0].set_xlim(periods[0] - timedelta(days=4), periods[0] + timedelta(days=4))
    for ax in axes:
        ax.grid(alpha=0.3)
        locator = AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    label = "alerts per supervised subject" if per_subject else "alerts"
    when = ("week starting" if bin == "week" else "day") + " (China Standard Time)"
    if panels:
        fig.supylabel(label)
        fig.supxlabel(when)
    else:
        axes[0].set_ylabel(label)
        axes[0].set_xlabel(when)
        if names:
            axes[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    n_hidden = int(pc.sum(curves.column("suppressed")).as_py() or 0) if curves.num_rows else 0
    fig.suptitle((title or "Alerts over time") + (f"\n{n_hidden} point(s) from fewer than k distinct subjects "
                                                 "withheld (grey x)" if n_hidden else ""), fontsize=11)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, bbox_inches="tight")
    return out
