"""Scoring alerts against a simulator's ground truth: precision, recall and detection delay per kind.

A truth row is an injected violation (subject, kind, zone, true start and
end). An alert *matches* it when subject, kind and zone agree and the alert's
onset falls inside the true interval widened by ``slack_s`` on both sides.
Each alert matches at most one truth row and vice versa. Detection delay is
the alert's confirmation time minus the true start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class KindScore:
    """Score of one alert kind."""

    kind: str
    n_truth: int
    n_alerts: int
    true_positives: int
    delays_s: np.ndarray

    @property
    def precision(self) -> float:
        return self.true_positives / self.n_alerts if self.n_alerts else float("nan")

    @property
    def recall(self) -> float:
        return self.true_positives / self.n_truth if self.n_truth else float("nan")

    @property
    def median_delay_s(self) -> float:
        return float(np.median(self.delays_s)) if self.delays_s.size else float("nan")

    @property
    def p90_delay_s(self) -> float:
        return float(np.percentile(self.delays_s, 90)) if self.delays_s.size else float("nan")


def _ms(column: pa.ChunkedArray) -> np.ndarray:
    return column.cast(pa.int64()).to_numpy(zero_copy_only=False)


def score(alerts: pa.Table, truth: pa.Table, *, slack_s: float = 120.0) -> list[KindScore]:
    """Match alerts (one row per alert) to truth rows, per kind.

    Parameters
    ----------
    alerts : pyarrow.Table
        Columns ``kind, subject_id, zone_id, onset_ts, confirmed_ts``.
    truth : pyarrow.Table
        Columns ``subject_id, kind, zone_id, true_start, true_end``.
    slack_s : float
        Tolerance around the true interval for the alert's onset, seconds.
    """
    kinds = sorted(set(truth.column("kind").to_pylist()) | set(alerts.column("kind").to_pylist()))
    a_kind = np.array(alerts.column("kind").to_pylist(), dtype=object)
    a_subj = np.array(alerts.column("subject_id").to_pylist(), dtype=object)
    # Alerts without a zone (contact kinds) have a null zone_id; truth an empty one.
    a_zone = np.array([z or "" for z in alerts.column("zone_id").to_pylist()], dtype=object)
    a_onset = _ms(alerts.column("onset_ts"))
    a_conf = _ms(alerts.column("confirmed_ts"))
    t_kind = np.array(truth.column("kind").to_pylist(), dtype=object)
    t_subj = np.array(truth.column("subject_id").to_pylist(), dtype=object)
    t_zone = np.array(truth.column("zone_id").to_pylist(), dtype=object)
    t_start = _ms(truth.column("true_start"))
    t_end = _ms(truth.column("true_end"))
    slack = int(slack_s * 1000)
    scores = []
    for kind in kinds:
        ai = np.flatnonzero(a_kind == kind)
        ti = np.flatnonzero(t_kind == kind)
        used = set()
        delays = []
        for t in ti[np.argsort(t_start[ti])]:
            cand = ai[(a_subj[ai] == t_subj[t]) & (a_zone[ai] == t_zone[t])
                      & (a_onset[ai] >= t_start[t] - slack) & (a_onset[ai] <= t_end[t] + slack)]
            cand = [a for a in cand[np.argsort(a_onset[cand])] if a not in used]
            if cand:
                used.add(cand[0])
                delays.append((a_conf[cand[0]] - t_start[t]) / 1000.0)
        scores.append(KindScore(kind, int(ti.size), int(ai.size), len(used), np.asarray(delays, dtype=np.float64)))
    return scores
