"""Office reports: the daily morning, noon and evening reports, and monthly or quarterly reviews.

The supervision centre's day (智慧矫正中心): a morning reminder (alerts still
open, and the check-ins due today when the caller passes the roster and the
rules), a noon trajectory review (subjects with alerts
since the morning), an evening summary (the day's alerts by kind and status,
and the day's service levels); monthly and quarterly reviews per office.
:func:`daily_report` and :func:`period_report` build each as plain data
(JSON-ready); :func:`render` writes it as Markdown, HTML or JSON. Subjects
appear under keyed pseudonyms unless the caller passes ``clear_ids=True``
(:mod:`geomon.io.export`).
"""

from __future__ import annotations

import html
import json
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone

import numpy as np

from geomon.io.export import pseudonym

__all__ = ["checkins_due", "daily_report", "period_report", "render"]

CST = timezone(timedelta(hours=8))


def _who(subject_id: str, key: bytes | None, clear_ids: bool) -> str:
    return subject_id if clear_ids or key is None else pseudonym(subject_id, key)


def _alert_rows(alerts, key, clear_ids):
    return [{"alert_id": a["alert_id"], "kind": a["kind"], "severity": a["severity"],
             "subject": _who(a["subject_id"], key, clear_ids), "status": a["status"],
             "onset": a["onset_ts"].astimezone(CST).isoformat(timespec="seconds"),
             "where_office": a["location_office_id"]} for a in alerts]


def checkins_due(subjects, rules, office_id: str, day: date, *, profile: str | None = None) -> list[dict]:
    """Each subject of ``office_id`` and the deadline of their check-in (签到) on ``day`` (China Standard Time).

    Parameters
    ----------
    subjects : geomon.io.load.SubjectLoad, pyarrow.Table or path
        The roster (``subject_id``, ``level``, ``office_id``).
    rules : geomon.rules.load.Rules
        The deadline is the ``checkin_due`` of the subject's level profile (or
        ``profile`` for everyone), replaced by a special period's when one is
        in force at that deadline (:class:`geomon.rules.periods.ThresholdSets`).

    Returns
    -------
    list of dict
        ``subject_id``, ``level``, ``due`` (local "HH:MM") and ``period``
        (the special period that set it, or None), ordered by deadline then id.
    """
    from geomon.engine.checkins import minute_of_day
    from geomon.io.load import load_subjects
    from geomon.rules.periods import ThresholdSets

    if not hasattr(subjects, "table"):
        subjects = load_subjects(subjects)
    roster = [r for r in subjects.table.select(["subject_id", "level", "office_id"]).to_pylist()
              if r["office_id"] == office_id]
    if not roster:
        return []
    sets = ThresholdSets(rules, [profile or r["level"] for r in roster], [r["subject_id"] for r in roster],
                         [r["office_id"] for r in roster])
    midnight_ms = int(datetime.combine(day, time(0, 0), CST).timestamp() * 1000)
    code = np.arange(len(roster), dtype=np.int64)
    due = [None] * len(roster)
    for _ in range(2):  # the base deadline, then the one in force at it (a period may move it)
        at_ms = np.array([midnight_ms + (minute_of_day(d) if d else 0) * 60_000 for d in due], dtype=np.int64)
        which = sets.set_of_fixes(code, at_ms)
        due = [sets.values[s]["checkin_due"] for s in which]
    out = [{"subject_id": r["subject_id"], "level": r["level"], "due": d, "period": sets.period[s]}
           for r, d, s in zip(roster, due, which)]
    return sorted(out, key=lambda r: (r["due"], r["subject_id"]))


def daily_report(store, office_id: str, day: date, *, key: bytes | None = None, clear_ids: bool = False,
                 subjects=None, rules=None, profile: str | None = None) -> dict:
    """The three reports of ``day`` (China Standard Time) for ``office_id``, as one dict.

    With ``subjects`` (the roster) the morning reminder also lists the
    check-ins due today (:func:`checkins_due`, with ``rules``, by default the
    bundled rules).
    """
    start = datetime.combine(day, time(0, 0), CST)
    noon = datetime.combine(day, time(12, 0), CST)
    morning = datetime.combine(day, time(6, 0), CST)
    end = start + timedelta(days=1)
    open_before = [a for a in store.list_alerts(office_id=office_id, status="open", until=start).to_pylist()]
    today = store.list_alerts(office_id=office_id, since=start, until=end).to_pylist()
    since_morning = [a for a in today if morning <= a["onset_ts"] < noon]
    sla = [r for r in store.service_levels("day", office_id).to_pylist() if r["period"] == day]
    morning_part = {"open_alerts": _alert_rows(open_before, key, clear_ids)}
    if subjects is not None:
        if rules is None:
            from geomon.rules.load import default_rules
            rules = default_rules()
        morning_part["checkins_due"] = [dict(r, subject_id=_who(r["subject_id"], key, clear_ids))
                                        for r in checkins_due(subjects, rules, office_id, day, profile=profile)]
    return {
        "office_id": office_id, "date": day.isoformat(),
        "morning": morning_part,
        "noon": {"subjects_with_alerts": sorted({_who(a["subject_id"], key, clear_ids) for a in since_morning}),
                 "alerts": _alert_rows(since_morning, key, clear_ids)},
        "evening": {"alerts_by_kind": dict(sorted(Counter(a["kind"] for a in today).items())),
                    "alerts_by_status": dict(sorted(Counter(a["status"] for a in today).items())),
                    "service_levels": {k: v for k, v in (sla[0] if sla else {}).items()
                                       if k not in ("office_id", "period")}},
    }


def period_report(store, office_id: str, period: str, first_day: date) -> dict:
    """The monthly (``month``) or quarterly (``quarter``) review of ``office_id`` starting on ``first_day``."""
    rows = [r for r in store.service_levels(period, office_id).to_pylist() if r["period"] == first_day]
    months = 1 if period == "month" else 3
    year, month = first_day.year + (first_day.month - 1 + months) // 12, (first_day.month - 1 + months) % 12 + 1
    end = datetime(year, month, 1, tzinfo=CST)
    alerts = store.list_alerts(office_id=office_id, since=datetime.combine(first_day, time(0, 0), CST),
                               until=end).to_pylist()
    return {"office_id": office_id, "period": period, "from": first_day.isoformat(),
            "alerts_by_kind": dict(sorted(Counter(a["kind"] for a in alerts).items())),
            "service_levels": {k: v for k, v in (rows[0] if rows else {}).items() if k not in ("office_id", "period")}}


def render(report: dict, fmt: str) -> str:
    """``md``, ``html`` or ``json`` text of a report from :func:`daily_report` or :func:`period_report`."""
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False, default=str)
    lines = _markdown(report, 1)
    text = "\n".join(lines) + "\n"
    if fmt == "md":
        return text
    if fmt == "html":
        body = []
        for line in lines:
            if line.startswith("#"):
                level = len(line) - len(line.lstrip("#"))
                body.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
            elif line.startswith("- "):
                body.append(f"<li>{html.escape(line[2:])}</li>")
            elif line:
                body.append(f"<p>{html.escape(line)}</p>")
        return "<!doctype html><html><meta charset=\"utf-8\"><body>\n" + "\n".join(body) + "\n</body></html>\n"
    raise ValueError(f"format must be md, html or json, not {fmt!r}")


def _text(value) -> str:
    return "-" if value is None else str(value)


def _markdown(value, depth: int, title: str | None = None) -> list[str]:
    lines = []
    if title is not None:
        lines.append("#" * min(depth, 6) + " " + title.replace("_", " "))
    if isinstance(value, dict):
        scalars = {k: v for k, v in value.items() if not isinstance(v, (dict, list))}
        if title is None:
            lines.append("# Report: " + ", ".join(f"{k} {v}" for k, v in scalars.items()))
        else:
            lines += [f"- {k.replace('_', ' ')}: {_text(v)}" for k, v in scalars.items()]
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                lines += [""] + _markdown(v, depth + 1, k)
    elif isinstance(value, list):
        if not value:
            lines.append("- none")
        for item in value:
            lines.append("- " + (", ".join(f"{k} {_text(v)}" for k, v in item.items()) if isinstance(item, dict)
                                 else _text(item)))
    return lines
