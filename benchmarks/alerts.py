"""Alerts suite: false alerts and detection delay, plain point-in-polygon on raw fixes against geomon's Monitor.

One ``"mixed"`` scenario (:func:`geomon.sim.scenarios.scenario`: subjects living
5-20 m inside the permitted edge, walking along it, parked, and routine
subjects of whom about half breach for 2.5-19 minutes) is fed to

* **raw PIP**, the way popular trackers decide zone events: each raw fix,
  projected to the scenario's frame, is tested with ``shapely.contains_xy``
  against every zone; an alert starts at a fix on the wrong side (outside the
  permitted area, inside a forbidden zone) whose previous fix was on the right
  side (or that is the subject's first fix), is confirmed at once, and ends at
  the next fix back on the right side (:func:`raw_pip_alerts`);
* **geomon**: ``fold_alerts(Monitor(zones, subjects, frame=sc.frame).process(fixes))``, deciding breaches by
  their evidence against a false-alarm budget (the default rule);
* **geomon, legacy rule**: the same Monitor with ``breach_by_fixes`` in every profile, the engine before the
  evidence rule (fixes and seconds above ``breach_p``).

The evidence rule is also swept over its budget (every profile's ``breach_budget_per_day`` scaled so the
ordinary profile's is each value of ``sweep``): false alerts per subject-day against the p95 delay, with the
other two methods as points, in a PNG beside the JSON (``--docs``: docs/img/alerts_tradeoff.png).

Both are scored with :func:`geomon.office.evaluate.score` against the exact truth: an
alert is a true positive when its onset lies within the true interval widened
by ``slack_s`` (same subject, kind and zone); every other alert is false.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from rich.console import Console
from rich.table import Table

from benchmarks import harness, report, tracks

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "alerts.json"
SCENARIO = "mixed"
#: Zone kind -> the alert kind a violation of it raises; other kinds (jurisdictions) raise none.
ALERT_KIND = {"permitted": "permitted_exit", "forbidden": "forbidden_entry"}
KINDS = tuple(ALERT_KIND.values())
METHODS = {"geomon": "geomon Monitor", "legacy": "geomon, legacy rule", "raw_pip": "raw PIP"}
#: The ordinary profile's false-alarm budgets the trade-off curve sweeps (false alerts per subject-day).
SWEEP = (0.001, 0.003, 0.01, 0.02, 0.05, 0.1, 0.3, 1.0, 3.0)
DOCS_PNG = Path(__file__).resolve().parents[1] / "docs" / "img" / "alerts_tradeoff.png"
FALSE_PER_SUBJECT_DAY_TARGET = 0.01
DELAY_P95_TARGET_S = 30.0
#: The zones' GeoJSON, projected with the scenario's frame, must lie this close to ``zone_geometry_m``.
FRAME_TOLERANCE_M = 0.5

#: What :func:`raw_pip_alerts` returns; the columns :func:`geomon.office.evaluate.score` reads, and the end.
RAW_ALERT_SCHEMA = pa.schema([
    pa.field("kind", pa.string(), nullable=False),
    pa.field("subject_id", pa.string(), nullable=False),
    pa.field("zone_id", pa.string(), nullable=False),
    pa.field("onset_ts", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("confirmed_ts", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("ended_ts", pa.timestamp("ms", tz="UTC")),
])


@dataclass(frozen=True)
class AlertsConfig(harness.QuickRun):
    """Sizes, scoring and timing policy of one run of the suite."""

    n_subjects: int = 140
    hours: float = 24.0
    seed: int = 1
    interval_s: float = 15.0
    slack_s: float = 120.0
    #: True breaches at least this long must all be confirmed.
    long_breach_s: float = 120.0
    repeat: int = 3
    min_time_s: float = 1.0
    quick: bool = False
    #: Rules file for the Monitor (TOML); the defaults when None.
    rules: str | None = None
    #: Profile applied to every subject instead of their levels' (e.g. "special_period").
    profile: str | None = None
    #: Budgets of the trade-off curve (the ordinary profile's; the others scale alike); empty: no sweep.
    sweep: tuple[float, ...] = SWEEP
    #: Write the trade-off PNG to docs/img as well.
    docs: bool = False

    #: Smoke-run sizes: 14 subjects x 6 h, one timed run, a two-point sweep.
    QUICK: ClassVar[dict] = {"n_subjects": 14, "hours": 6.0, "repeat": 1, "min_time_s": 0.0, "sweep": (0.02, 1.0)}

    @property
    def subject_days(self) -> float:
        return self.n_subjects * self.hours / 24.0


# --- the raw point-in-polygon baseline ------------------------------------------


def raw_pip_alerts(subject_id, t_ms, x_m, y_m, zones: Mapping[str, tuple[str, shapely.Geometry]]) -> pa.Table:
    """Zone alerts from raw fixes by plain point-in-polygon, one row per alert (:data:`RAW_ALERT_SCHEMA`).

    Parameters
    ----------
    subject_id : array_like of str, shape (n,)
    t_ms : array_like of int64, shape (n,)
        Fix times, epoch ms UTC; fixes may come in any order.
    x_m, y_m : array_like of float64, shape (n,)
        Fix positions in the zones' projected frame (m).
    zones : mapping of str to (str, shapely geometry)
        Zone id -> (kind, geometry in the same frame); every zone applies to
        every subject. Kinds other than ``permitted`` and ``forbidden`` are ignored.

    Returns
    -------
    pyarrow.Table
        Per (subject, zone), an alert at every fix on the wrong side whose
        predecessor was on the right side or that is the subject's first fix;
        ``confirmed_ts`` = ``onset_ts`` (no confirmation); ``ended_ts`` is the
        next fix on the right side, null when the track ends first.
    """
    ids = np.asarray(subject_id, dtype=object)
    names, codes = np.unique(ids, return_inverse=True) if ids.size else (np.array([], object), np.zeros(0, np.int64))
    t_ms = np.asarray(t_ms, dtype=np.int64)
    order = np.lexsort((t_ms, codes.ravel()))
    code, t, x, y = codes.ravel()[order], t_ms[order], np.asarray(x_m)[order], np.asarray(y_m)[order]
    n = t.size
    new_track = np.ones(n, bool)
    new_track[1:] = code[1:] != code[:-1]
    columns = {name: [] for name in ("kind", "subject_id", "zone_id", "onset_ts", "ended_ts", "ended_ok")}
    for zone_id, (zone_kind, geometry) in zones.items():
        if zone_kind not in ALERT_KIND:
            continue
        inside = shapely.contains_xy(geometry, x, y)
        wrong = ~inside if zone_kind == "permitted" else inside
        previous_wrong = np.concatenate([[False], wrong[:-1]])
        onset = np.flatnonzero(wrong & (new_track | ~previous_wrong))
        stop = np.flatnonzero(~wrong | new_track)  # a run of wrong fixes ends at the first of these after it
        after = np.append(stop, n)[np.searchsorted(stop, onset, side="right")]  # n: no stop after the onset
        back = after < n
        back[back] = ~new_track[after[back]]  # the track ending first leaves the alert open
        columns["kind"].append(np.full(onset.size, ALERT_KIND[zone_kind], dtype=object))
        columns["subject_id"].append(names[code[onset]])
        columns["zone_id"].append(np.full(onset.size, zone_id, dtype=object))
        columns["onset_ts"].append(t[onset])
        columns["ended_ts"].append(np.where(back, t[np.minimum(after, n - 1)], 0))
        columns["ended_ok"].append(back)
    if not columns["kind"]:
        return RAW_ALERT_SCHEMA.empty_table()
    data = {name: np.concatenate(parts) for name, parts in columns.items() if parts}
    timestamp = RAW_ALERT_SCHEMA.field("onset_ts").type
    onset_ts = pa.array(data["onset_ts"].astype(np.int64), pa.int64()).cast(timestamp)
    arrays = [
        *(pa.array(data[c].tolist(), pa.string()) for c in ("kind", "subject_id", "zone_id")),
        onset_ts,
        onset_ts,  # confirmed at once
        pa.array(data["ended_ts"].astype(np.int64), pa.int64(), mask=~data["ended_ok"]).cast(timestamp),
    ]
    table = pa.Table.from_arrays(arrays, schema=RAW_ALERT_SCHEMA)
    return table.sort_by([("subject_id", "ascending"), ("onset_ts", "ascending"), ("zone_id", "ascending")])


def scenario_zones(sc) -> dict[str, tuple[str, shapely.Geometry]]:
    """Zone id -> (kind, geometry in ``sc.frame`` metres), checked against the GeoJSON the Monitor reads."""
    zones = {}
    for feature in sc.zones["features"]:
        zone_id, kind = feature["properties"]["zone_id"], feature["properties"]["kind"]
        lonlat = shapely.geometry.shape(feature["geometry"])
        projected = shapely.transform(lonlat, lambda c: np.column_stack(sc.frame.project(c[:, 0], c[:, 1])))
        geometry = sc.zone_geometry_m[zone_id]
        gap_m = shapely.hausdorff_distance(projected, geometry)
        if not gap_m <= FRAME_TOLERANCE_M:
            raise RuntimeError(f"zone {zone_id!r}: its GeoJSON projected with the scenario's frame is {gap_m:.3g} m "
                               "from zone_geometry_m; the raw baseline would test the wrong outline")
        zones[zone_id] = (kind, geometry)
    return zones


def raw_pip_for_scenario(fixes: pa.Table, frame, zones) -> pa.Table:
    """:func:`raw_pip_alerts` on a fix table, projected with ``frame`` (timed as part of the baseline)."""
    x, y = tracks.projected(fixes, frame)
    return raw_pip_alerts(fixes.column("subject_id").to_numpy(zero_copy_only=False), tracks.times_ms(fixes), x, y,
                          zones)


# --- scoring --------------------------------------------------------------------


def _counts(n_truth: int, n_alerts: int, tp: int, delays: np.ndarray, subject_days: float) -> dict:
    false = n_alerts - tp
    return {
        "n_truth": n_truth,
        "n_alerts": n_alerts,
        "true_positives": tp,
        "recall": tp / n_truth if n_truth else None,
        "precision": tp / n_alerts if n_alerts else None,
        "false_alerts": false,
        "false_per_subject_day": false / subject_days,
        "delay_s": report.quantiles(delays, (50, 95, 100)),
    }


def geofence_only(alerts: pa.Table) -> pa.Table:
    """The Monitor's geofence alerts (the suite scores geofencing; behaviour kinds have their own tests)."""
    return alerts.filter(pc.is_in(alerts.column("kind"), pa.array(list(KINDS))))


def summarise(alerts: pa.Table, truth: pa.Table, *, slack_s: float, subject_days: float) -> dict:
    """Per alert kind and in total: counts, recall, false alerts (per subject-day) and delay quantiles."""
    from geomon.office.evaluate import score

    scores = {s.kind: s for s in score(alerts, truth, slack_s=slack_s)}
    kinds = {}
    for kind in dict.fromkeys(KINDS + tuple(scores)):
        s = scores.get(kind)
        kinds[kind] = (_counts(s.n_truth, s.n_alerts, s.true_positives, s.delays_s, subject_days) if s
                       else _counts(0, 0, 0, np.zeros(0), subject_days))
    delays = np.concatenate([s.delays_s for s in scores.values()]) if scores else np.zeros(0)
    total = _counts(*(sum(k[c] for k in kinds.values()) for c in ("n_truth", "n_alerts", "true_positives")),
                    delays, subject_days)
    return {"kinds": kinds, "total": total}


def _of_subjects(table: pa.Table, subjects: list[str]) -> pa.Table:
    return table.filter(pc.is_in(table.column("subject_id"), pa.array(subjects, pa.string())))


def false_by_subject_kind(alerts: pa.Table, truth: pa.Table, kind_of_subject: Mapping[str, str], *,
                          slack_s: float, hours: float) -> dict:
    """False alerts per subject kind; matching is per subject, so the kinds add up to the total."""
    from geomon.office.evaluate import score

    out = {}
    for kind in dict.fromkeys(kind_of_subject.values()):
        subjects = [s for s, k in kind_of_subject.items() if k == kind]
        scores = score(_of_subjects(alerts, subjects), _of_subjects(truth, subjects), slack_s=slack_s)
        false = sum(s.n_alerts - s.true_positives for s in scores)
        days = len(subjects) * hours / 24.0
        out[kind] = {"n_subjects": len(subjects), "subject_days": days, "false_alerts": false,
                     "false_per_subject_day": false / days}
    return out


def long_breaches(truth: pa.Table, min_s: float) -> pa.Table:
    """True violations lasting at least ``min_s`` seconds."""
    start, end = (pc.cast(truth.column(c), pa.int64()).to_numpy() for c in ("true_start", "true_end"))
    return truth.filter(pa.array(end - start >= min_s * 1000.0))


def _method(label: str, timing: harness.Measurement, alerts: pa.Table, sc, config: AlertsConfig, long: pa.Table):
    from geomon.office.evaluate import score

    n = sc.fixes.num_rows
    return {
        "label": label,
        "timing": {**timing.to_json(n), "fixes_per_s": n / timing.median_s},
        **summarise(alerts, sc.truth, slack_s=config.slack_s, subject_days=config.subject_days),
        "long_breaches_confirmed": sum(s.true_positives for s in score(alerts, long, slack_s=config.slack_s)),
        "false_by_subject_kind": false_by_subject_kind(alerts, sc.truth, sc.kind_of_subject,
                                                       slack_s=config.slack_s, hours=config.hours),
    }


def _targets(geo: dict, raw: dict, n_long: int) -> list[dict]:
    return [
        report.target("geomon false alerts per subject-day", geo["total"]["false_per_subject_day"], "<=",
                      FALSE_PER_SUBJECT_DAY_TARGET, key="false_alerts_per_subject_day",
                      peer_measured=raw["total"]["false_per_subject_day"]),
        report.target(f"true breaches >= 2 min missed (of {n_long})",
                      n_long - geo["long_breaches_confirmed"] if n_long else None, "<=", 0, key="long_breaches_missed",
                      peer_measured=n_long - raw["long_breaches_confirmed"] if n_long else None),
        report.target("geomon p95 detection delay", geo["total"]["delay_s"]["p95"], "<=", DELAY_P95_TARGET_S,
                      key="p95_delay_s", unit=" s", peer_measured=raw["total"]["delay_s"]["p95"]),
    ]


def budget_scaled(rules, scale: float):
    """The rules with every profile's false-alarm budget multiplied by ``scale`` (the trade-off's sweep)."""
    return dataclasses.replace(rules, profiles={
        name: {**prof, "breach_budget_per_day": prof["breach_budget_per_day"] * scale}
        for name, prof in rules.profiles.items()})


def tradeoff(sc, zones, subjects, rules, config: AlertsConfig, long: pa.Table, progress,
             at_rules: pa.Table) -> list[dict]:
    """The evidence rule at each budget of ``config.sweep``: false alerts per subject-day, p95 delay, misses.
    ``at_rules``: the alerts at the rules' own budgets (the suite's geomon run), reused for that point."""
    from geomon.engine.monitor import Monitor, fold_alerts
    from geomon.office.evaluate import score

    base = rules.profile("ordinary")["breach_budget_per_day"]
    points = []
    for budget in config.sweep:
        with report.step(progress, f"trade-off: the evidence rule at {budget:g} false alerts per subject-day"):
            if budget == base:
                alerts = at_rules
            else:
                monitor = Monitor(zones, subjects, budget_scaled(rules, budget / base), profile=config.profile,
                                  frame=sc.frame)
                alerts = geofence_only(fold_alerts(monitor.process(sc.fixes)))
        s = summarise(alerts, sc.truth, slack_s=config.slack_s, subject_days=config.subject_days)["total"]
        confirmed = sum(x.true_positives for x in score(alerts, long, slack_s=config.slack_s))
        points.append({"budget_per_day": budget, "false_per_subject_day": s["false_per_subject_day"],
                       "p95_delay_s": s["delay_s"]["p95"], "recall": s["recall"],
                       "long_breaches_missed": long.num_rows - confirmed})
    return points


def plot_tradeoff(payload: dict, path: Path) -> None:
    """False alerts per subject-day against p95 delay: the evidence rule's curve, the other methods as points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve, methods, config = payload["tradeoff"], payload["methods"], payload["config"]
    floor = 1.0 / (10 * config["subject_days"])     # zero false alerts, drawn at a tenth of one

    def x(v):
        return max(v, floor)

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ax.plot([x(p["false_per_subject_day"]) for p in curve], [p["p95_delay_s"] for p in curve], "o-",
            color="tab:blue", label="geomon, evidence rule (budget swept)")
    for p in curve:
        ax.annotate(f"{p['budget_per_day']:g}", (x(p["false_per_subject_day"]), p["p95_delay_s"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=7, color="tab:blue")
    for key, style in (("legacy", ("s", "tab:orange")), ("raw_pip", ("^", "tab:red"))):
        m = methods[key]
        ax.plot([x(m["total"]["false_per_subject_day"])], [m["total"]["delay_s"]["p95"]], style[0], color=style[1],
                label=m["label"])
    ax.axvline(FALSE_PER_SUBJECT_DAY_TARGET, color="grey", ls=":", lw=1)
    ax.axhline(DELAY_P95_TARGET_S, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("false geofence alerts per subject-day (log; none drawn at a tenth of one)")
    ax.set_ylabel("p95 delay from the true start, s")
    ax.set_title(f"{payload['scenario']['name']} scenario, seed {config['seed']}, "
                 f"{config['subject_days']:g} subject-days, a fix every {config['interval_s']:g} s", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_alerts(config: AlertsConfig, *, out: Path | None = DEFAULT_OUT, console: Console | None = None) -> dict:
    """Run the suite, print its tables on ``console`` and write JSON to ``out`` (each if given); return the payload."""
    from geomon.engine.monitor import Monitor, fold_alerts
    from geomon.io.load import load_rules, load_subjects, load_zones
    from geomon.rules.load import default_rules
    from geomon.sim.scenarios import scenario

    progress = report.progress_console(console)
    machine = harness.machine_info()
    with report.step(progress, f"simulating {SCENARIO}: {config.n_subjects} subjects x {config.hours:g} h"):
        sc = scenario(SCENARIO, n_subjects=config.n_subjects, hours=config.hours, interval_s=config.interval_s,
                      seed=config.seed)
        zones_m = scenario_zones(sc)
        zones, subjects = load_zones(sc.zones), load_subjects(sc.subjects)
    timing = {"repeat": config.repeat, "min_time_s": config.min_time_s}
    rules = load_rules(config.rules) if config.rules else default_rules()
    with report.step(progress, f"geomon Monitor on {sc.fixes.num_rows:,} fixes"):
        geo_timing = harness.measure_fresh("geomon.engine.monitor.Monitor.process",
                                           lambda: Monitor(zones, subjects, rules, profile=config.profile,
                                                           frame=sc.frame),
                                           lambda monitor: monitor.process(sc.fixes), **timing)
    legacy_rules = rules.with_values(breach_by_fixes=True)
    with report.step(progress, f"geomon Monitor, legacy rule, on {sc.fixes.num_rows:,} fixes"):
        legacy_timing = harness.measure_fresh("geomon.engine.monitor.Monitor.process (breach_by_fixes)",
                                              lambda: Monitor(zones, subjects, legacy_rules, profile=config.profile,
                                                              frame=sc.frame),
                                              lambda monitor: monitor.process(sc.fixes), repeat=1, min_time_s=0.0)
    with report.step(progress, f"raw point-in-polygon on {sc.fixes.num_rows:,} fixes"):
        raw_timing = harness.measure("shapely.contains_xy on raw fixes",
                                     lambda: lambda: raw_pip_for_scenario(sc.fixes, sc.frame, zones_m), **timing)
    long = long_breaches(sc.truth, config.long_breach_s)
    methods = {
        "geomon": _method(METHODS["geomon"], geo_timing, geofence_only(fold_alerts(geo_timing.last_result)), sc,
                          config, long),
        "legacy": _method(METHODS["legacy"], legacy_timing, geofence_only(fold_alerts(legacy_timing.last_result)),
                          sc, config, long),
        "raw_pip": _method(METHODS["raw_pip"], raw_timing, raw_timing.last_result, sc, config, long),
    }
    curve = tradeoff(sc, zones, subjects, rules, config, long, progress,
                     geofence_only(fold_alerts(geo_timing.last_result)))
    targets = _targets(methods["geomon"], methods["raw_pip"], long.num_rows)
    payload = {
        "suite": "alerts",
        "schema_version": 1,
        "machine": machine,
        "config": {**dataclasses.asdict(config), "subject_days": config.subject_days},
        "scenario": {"name": SCENARIO, "n_fixes": sc.fixes.num_rows, "n_truth": sc.truth.num_rows,
                     "n_long_breaches": long.num_rows, "long_breach_s": config.long_breach_s,
                     "subject_kinds": {k: list(sc.kind_of_subject.values()).count(k)
                                       for k in dict.fromkeys(sc.kind_of_subject.values())}},
        "methods": methods,
        "tradeoff": curve,
        "targets": targets,
    }
    if curve:
        for path in ([out.with_name("alerts_tradeoff.png")] if out is not None else []) + (
                [DOCS_PNG] if config.docs else []):
            plot_tradeoff(payload, path)
    return harness.publish(payload, targets, out=out, console=console, print_report=print_report)


# --- printing -------------------------------------------------------------------


def _score_cells(c: dict) -> list[str]:
    d = c["delay_s"]
    return [f"{c['n_truth']:,}", f"{c['n_alerts']:,}", f"{c['true_positives']:,}", report.fmt(c["recall"], ".3f"),
            report.fmt(c["precision"], ".3f"), f"{c['false_alerts']:,}", f"{c['false_per_subject_day']:.3f}",
            *(report.fmt(d[k], ",.0f") for k in ("p50", "p95", "max"))]


def print_report(payload: dict, console: Console, *, out: Path | None = None) -> None:
    """Score, breach, per-subject-kind, speed and target tables, geomon beside raw PIP."""
    machine, config, sc, methods = payload["machine"], payload["config"], payload["scenario"], payload["methods"]
    console.print(f"[bold]Alerts: raw point-in-polygon vs geomon Monitor on one {sc['name']} scenario[/]\n"
                  f"{report.machine_line(machine)}")
    scores = Table(title=f"Alerts against the truth: {config['n_subjects']} subjects x {config['hours']:g} h "
                         f"({config['subject_days']:g} subject-days), seed {config['seed']}, {sc['n_fixes']:,} fixes; "
                         f"onset within {config['slack_s']:g} s of the true interval")
    for name in ["kind", "method", "truth", "alerts", "true pos.", "recall", "precision", "false",
                 "false / subj-day", "delay p50 s", "p95 s", "max s"]:
        scores.add_column(name, justify="left" if name in ("kind", "method") else "right")
    for kind in [*methods["geomon"]["kinds"], "total"]:
        for key, m in methods.items():
            cells = m["total"] if kind == "total" else m["kinds"][kind]
            scores.add_row(kind, m["label"], *_score_cells(cells), end_section=key == "raw_pip")
    console.print(scores)
    if payload.get("tradeoff"):
        curve = Table(title="Trade-off: the evidence rule over its budget (the ordinary profile's; the others scale "
                            "alike)")
        for name in ["budget / subj-day", "false / subj-day", "p95 delay s", "recall", "breaches >= 2 min missed"]:
            curve.add_column(name, justify="right")
        for p in payload["tradeoff"]:
            curve.add_row(f"{p['budget_per_day']:g}", f"{p['false_per_subject_day']:.3f}",
                          report.fmt(p["p95_delay_s"], ",.0f"), report.fmt(p["recall"], ".3f"),
                          f"{p['long_breaches_missed']:,}")
        console.print(curve)

    breaches = Table(title=f"True breaches lasting >= {sc['long_breach_s']:g} s, and speed (median of repeats)")
    for name in ["method", "breaches", "confirmed", "missed", "fixes", "first call s", "median s", "fixes/s"]:
        breaches.add_column(name, justify="left" if name == "method" else "right")
    n_long = sc["n_long_breaches"]
    for m in methods.values():
        t = m["timing"]
        breaches.add_row(m["label"], f"{n_long:,}", f"{m['long_breaches_confirmed']:,}",
                         f"{n_long - m['long_breaches_confirmed']:,}", f"{sc['n_fixes']:,}",
                         f"{t['first_call_s']:.3f}", f"{t['median_s']:.3f}", f"{t['fixes_per_s']:,.0f}")
    console.print(breaches)

    by_kind = Table(title="False alerts by subject kind")
    for name in ["subject kind", "subjects", "subject-days"] + [f"{m['label']} {c}" for m in methods.values()
                                                                for c in ("false", "/ subj-day")]:
        by_kind.add_column(name, justify="left" if name == "subject kind" else "right")
    for kind in methods["geomon"]["false_by_subject_kind"]:
        g = methods["geomon"]["false_by_subject_kind"][kind]
        cells = [kind, f"{g['n_subjects']:,}", f"{g['subject_days']:g}"]
        for m in methods.values():
            f = m["false_by_subject_kind"][kind]
            cells += [f"{f['false_alerts']:,}", f"{f['false_per_subject_day']:.3f}"]
        by_kind.add_row(*cells)
    console.print(by_kind)
    report.warn_if_loaded(machine, console)
    console.print(report.targets_table(payload["targets"], peer=METHODS["raw_pip"]))
    if out is not None:
        console.print(f"JSON written to {out}")
