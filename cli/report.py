"""Printing for the CLI: progress bars and summary tables. No engine logic lives here."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console()


class _CompileProgress:
    """A second bar while numba compiles kernels (only on a first run: a cached kernel loads without compiling),
    naming the kernel at work, and the seconds spent compiling (``seconds``)."""

    def __init__(self, bar: Progress):
        from numba.core import event

        class Listener(event.Listener):
            def on_start(inner, ev):
                self._start(ev.data["dispatcher"])

            def on_end(inner, ev):
                self._end()

        self.bar, self.listener, self.task = bar, Listener(), None
        self.depth, self.compiled, self.seconds, self._since = 0, 0, 0.0, 0.0

    def _start(self, dispatcher) -> None:
        import time

        if self.task is None:
            # How many there will be is not known beforehand (a kernel compiles once per argument types).
            self.task = self.bar.add_task("compiling kernels (first run only)", total=None, unit="kernels")
        if self.depth == 0:
            self._since = time.perf_counter()
        self.depth += 1
        func = getattr(dispatcher, "py_func", None)
        name = f"{func.__module__.rsplit('.', 1)[-1]}.{func.__name__}" if func is not None else "kernel"
        self.bar.update(self.task, description=f"compiling kernels (first run only): {name}")

    def _end(self) -> None:
        import time

        self.depth -= 1
        self.compiled += 1
        if self.depth == 0:
            self.seconds += time.perf_counter() - self._since
        self.bar.update(self.task, completed=self.compiled)

    def __enter__(self):
        from numba.core import event

        event.register("numba:compile", self.listener)
        return self

    def __exit__(self, *exc) -> None:
        from numba.core import event

        event.unregister("numba:compile", self.listener)
        if self.task is not None:
            self.bar.update(self.task, description=f"compiled (first run only) {self.seconds:.0f} s",
                            total=self.compiled, completed=self.compiled)


def run_replay(fixes, zones, subjects, rules, **kwargs):
    """geomon.run.replay.replay with a progress bar over the fixes fed to the engine, and one over the kernels
    numba compiles on a first run. The result's ``seconds["compile"]`` is the time compiling took."""
    from geomon.run.replay import replay

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("replay", total=None, unit="fixes")

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        from geomon.kernels import _warm

        helper = _warm.start()   # a first run: a second process compiles the kernels from the other end
        try:
            with _CompileProgress(bar) as compiling:
                result = replay(fixes, zones, subjects, rules, progress=progress, **kwargs)
        finally:
            _warm.stop(helper)
        result.seconds["compile"] = compiling.seconds
        return result


def _table(title: str, columns: list[str], rows: list[list]) -> Table:
    # Cells too wide for the terminal (80 columns in a log or a pipe) wrap onto a second line; an ellipsis would
    # leave "office…" and "night_…", which cannot be told apart.
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right", overflow="fold")
    for row in rows:
        table.add_row(*[str(v) for v in row])
    return table


def print_sla(table, period: str) -> None:
    """The service-level view, one row per office and period."""
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f} %"

    def sec(v):
        return "-" if v is None else f"{v:,.0f}"

    rows = [[r["office_id"], str(r["period"]), r["n_alerts"], r["n_received"], pct(r["share_received_30s"]),
             sec(r["median_receipt_s"]), r["n_dispatched"], pct(r["share_dispatched_5min"]),
             sec(r["median_dispatch_s"]), r["n_open"], r["n_closed"]] for r in table.to_pylist()]
    console.print(_table(f"Service levels per office and {period}: received within 30 s, dispatched within 5 min",
                         ["office", period, "alerts", "received", "in 30 s", "median s", "dispatched", "in 5 min",
                          "median s", "open", "closed"], rows))


def print_lifecycle(target: str, moved: list, refused: list) -> None:
    """What a lifecycle step did: the alerts moved, and why the others were refused."""
    console.print(f"{len(moved)} alert(s) now {target}.")
    for alert_id, reason in refused:
        console.print(f"refused {alert_id}: {reason}")


def print_meetings(alerts) -> None:
    """Contact alerts, one row each."""
    import json

    rows = []
    for r in alerts.to_pylist():
        d = json.loads(r["details"])
        rows.append([r["kind"], r["subject_id"], d.get("person_id") or d.get("victim_id"), r["severity"],
                     r["onset_ts"].isoformat(timespec="seconds"), d.get("meeting_count", "-"),
                     d.get("min_distance_m", "-")])
    console.print(_table(f"Contact alerts: {alerts.num_rows}", ["kind", "subject", "with", "severity", "onset",
                                                               "meetings", "closest m"], rows))


def print_near(table, *, title: str) -> None:
    """The look-back's ranked subjects."""
    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    rows = [[r["subject_id"], r["status"], fmt(r["min_distance_m"], ",.0f"),
             "-" if r["closest_at"] is None else r["closest_at"].isoformat(timespec="seconds"),
             f"{r['p_within']:.3f}", fmt(r["sigma_m"], ",.0f"), f"{r['silent_s']:,.0f}",
             "yes" if r["reachable"] else "no"] for r in table.to_pylist()]
    console.print(_table(title, ["subject", "status", "closest m", "at", "p within", "sigma m", "silent s",
                                 "reachable while silent"], rows))


def print_replay(result, *, truth: Path | None = None, db: Path | None = None) -> None:
    alerts = result.alerts
    kinds = alerts.column("kind").to_pylist() if alerts.num_rows else []
    offices = alerts.column("office_id").to_pylist() if alerts.num_rows else []
    by = Counter(zip(kinds, offices))
    kind_names = sorted(set(kinds))
    office_names = sorted({o or "-" for o in offices})
    rows = [[office] + [by.get((k, None if office == "-" else office), 0) for k in kind_names]
            + [sum(by.get((k, None if office == "-" else office), 0) for k in kind_names)] for office in office_names]
    rows.append(["all"] + [kinds.count(k) for k in kind_names] + [len(kinds)])
    console.print(_table("Alerts by supervising office and kind", ["office"] + kind_names + ["total"], rows))

    reasons = Counter(result.quarantine.column("reason").to_pylist()) if result.quarantine.num_rows else Counter()
    console.print(_table("Quarantine", ["reason", "rows"], [[r, n] for r, n in sorted(reasons.items())]
                         + [["read = accepted + quarantined",
                             f"{result.n_read:,} = {result.n_accepted:,} + {result.n_quarantined:,}"]]))

    if truth is not None:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from geomon.office.evaluate import score

        labels = pq.read_table(truth)
        # Score only the kinds the truth labels: an unlabelled kind's alerts are neither right nor wrong here.
        labelled = pa.array(sorted(set(labels.column("kind").to_pylist())), pa.string())
        scores = score(alerts.filter(pc.is_in(alerts.column("kind"), labelled)), labels)
        unlabelled = sorted(set(alerts.column("kind").to_pylist()) - set(labelled.to_pylist()))
        console.print(_table(f"Against ground truth ({truth})",
                             ["kind", "truth", "alerts", "hit", "prec.", "recall", "p50 s", "p90 s"],
                             [[s.kind, s.n_truth, s.n_alerts, s.true_positives, f"{s.precision:.3f}",
                               f"{s.recall:.3f}", f"{s.median_delay_s:.0f}", f"{s.p90_delay_s:.0f}"] for s in scores]))
        if unlabelled:
            console.print(f"Not labelled in this truth, so not scored: {', '.join(unlabelled)} "
                          "(`python -m benchmarks behaviour` scores them against labelled simulations).")

    seconds = result.seconds
    stages = ["load", "admit", "project", "behaviour", "fuse", "zones", "crossings", "detect", "alerts", "store"]
    console.print(_table("Speed", ["stage", "seconds"],
                         [[s, f"{seconds.get(s, 0.0):.3f}"] for s in stages]
                         + [["total (incl. setup)", f"{seconds.get('total', 0.0):.3f}"],
                            ["fixes per second, end to end", f"{result.fixes_per_s:,.0f}"]]
                         + ([["of the total, compiling kernels (first run only)", f"{seconds['compile']:.3f}"],
                             ["fixes per second, compiling left out",
                              f"{result.n_read / max(seconds['total'] - seconds['compile'], 1e-9):,.0f}"]]
                            if seconds.get("compile") else [])))
    if db is not None:
        console.print(f"{result.new_alert_rows} new alert rows written to {db} (run {result.run_id}); "
                      f"{result.alerts.num_rows} alerts in this replay.")


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


#: Columns of `alerts list` as a table, at any width; the wide ones join from WIDE_COLUMNS on.
_ALERT_COLUMNS = [("id", "alert_id"), ("onset", "onset_ts"), ("kind", "kind"), ("subject", "subject_id"),
                  ("office", "office_id"), ("status", "status")]
_WIDE_ALERT_COLUMNS = [("confirmed", "confirmed_ts"), ("ended", "ended_ts"), ("severity", "severity"),
                       ("zone", "zone_id"), ("where", "location_office_id")]
WIDE_COLUMNS = 140


def _zone_label(tz) -> str:
    offset = datetime.now(tz).strftime("%z")
    name = getattr(tz, "key", None)
    utc = f"UTC{offset[:3]}:{offset[3:]}"
    return f"{name}, {utc}" if name else utc


def print_alerts(db: Path, *, since=None, until=None, limit: int = 50, tz="Asia/Shanghai", fmt: str = "table",
                 **filters) -> None:
    """The newest alerts matching ``filters``: a table at the console's width (times in ``tz``, short ids), or
    every column as CSV or JSON lines on stdout (times ISO 8601 with their offset)."""
    import csv
    import json
    import sys

    from geomon.engine.night import as_tzinfo
    from geomon.store.alert_store import AlertStore
    from geomon.store.lifecycle import SHORT_ID

    if fmt not in ("table", "csv", "json"):
        raise ValueError(f"--format must be table, csv or json, not {fmt!r}")
    zone = as_tzinfo(tz)
    with AlertStore(db, read_only=True) as store:
        table = store.list_alerts(since=_utc(since), until=_utc(until), limit=limit, newest_first=True, **filters)
    rows = table.to_pylist()
    if fmt != "table":
        out = [{k: (v.astimezone(zone).isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
               for r in rows]
        if fmt == "json":
            for r in out:
                sys.stdout.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
        else:
            writer = csv.DictWriter(sys.stdout, fieldnames=table.schema.names, lineterminator="\n")
            writer.writeheader()
            writer.writerows(out)
        return
    columns = _ALERT_COLUMNS + (_WIDE_ALERT_COLUMNS if console.width >= WIDE_COLUMNS else [])

    def cell(column: str, value) -> str:
        if value is None:
            return "-"
        if isinstance(value, datetime):
            return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        return value[:SHORT_ID] if column == "alert_id" else str(value)

    view = Table(title=f"{len(rows)} alerts, newest first; times in {_zone_label(zone)}", title_justify="left",
                 box=None, pad_edge=False, header_style="bold underline")
    for name, column in columns:
        view.add_column(name, overflow="fold", no_wrap=column.endswith("_ts"))
    for r in rows:
        view.add_row(*[cell(column, r[column]) for _, column in columns])
    console.print(view)
    if rows:
        console.print(f"ack, dispatch or close one: geomon alerts ack {rows[0]['alert_id'][:SHORT_ID]} --db {db}")


def print_simulation(result) -> None:
    rows = [[k, v] for k, v in vars(result).items()]
    console.print(_table("Simulation", ["item", "value"], rows))


def live_status(every_s: float = 5.0):
    """An on_tick callback printing one status line every ``every_s`` seconds and on every tick with alerts."""
    import time

    state = {"last": 0.0, "alerts": 0}

    def on_tick(result) -> None:
        state["alerts"] += result.alerts.num_rows
        now = time.monotonic()
        if result.alerts.num_rows or now - state["last"] >= every_s:
            state["last"] = now
            wm = datetime.fromtimestamp(result.watermark_ms / 1000, timezone.utc).isoformat(timespec="seconds") \
                if result.watermark_ms >= 0 else "-"
            worst = f", slowest {result.latency_s.max():.3f} s" if result.latency_s.size else ""
            console.print(f"watermark {wm}: {result.n_released} fixes run, {result.n_held} held, "
                          f"{result.alerts.num_rows} alert events{worst} ({state['alerts']} so far)")

    return on_tick


def print_watch_summary(live, ticks: int) -> None:
    """Counts of a watch: read = refused on load + held + run (the Monitor's own refusals among them)."""
    c = live.counts
    m = live.monitor
    console.print(_table(f"Stream {live.stream_id!r}: {ticks} micro-batches this process", ["", "fixes"], [
        ["read from the sources (since the stream began)", f"{c.n_read:,}"],
        ["refused on load (quarantine)", f"{c.n_refused_on_load:,}"],
        ["held for lateness", f"{live.n_held:,}"],
        ["run through the Monitor", f"{m.n_accepted:,}"],
        ["refused by the Monitor (late_fix, subject_unknown)", f"{m.n_read - m.n_accepted:,}"],
    ]))


def print_purge(counts: dict, what: str) -> None:
    """Rows removed per table (the subject is never printed)."""
    rows = [[table, f"{n:,}"] for table, n in sorted(counts.items())]
    rows.append(["total", f"{sum(counts.values()):,}"])
    console.print(_table(f"Removed {what} (recorded in the purges table)", ["table", "rows"], rows))


def print_distributed(result, *, db=None, out=None) -> None:
    """A distributed replay's alerts by kind, its counts and speed."""
    kinds: dict = {}
    for k in result.alerts.column("kind").to_pylist():
        kinds[k] = kinds.get(k, 0) + 1
    console.print(_table("Alerts by kind", ["kind", "alerts"], [[k, f"{n:,}"] for k, n in sorted(kinds.items())]))
    console.print(f"read = accepted + quarantined: {result.n_read:,} = {result.n_accepted:,} "
                  f"+ {result.n_quarantined:,}")
    slowest = max(result.partition_seconds, default=0.0)
    console.print(f"{result.n_read:,} fixes in {result.seconds:.1f} s ({result.fixes_per_s:,.0f} fixes/s); "
                  f"{len(result.partition_seconds)} partitions, the slowest {slowest:.1f} s")
    if db is not None:
        console.print(f"{result.alerts.num_rows} alerts written to {db} (run {result.run_id})")
    if out is not None:
        console.print(f"{result.alerts.num_rows} alerts, the stays and the quarantine written to {out}/ (a file per "
                      f"partition)")
