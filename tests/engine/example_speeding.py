"""An example detector from outside the engine: speeding above a threshold.

It shows what adding a detector takes (geomon/engine/contract.py): a kernel, a module with a
:class:`~geomon.engine.contract.Detector` subclass decorated with
:func:`~geomon.engine.contract.register`, its rules entries (``speeding_mps``, set in the rules file the
deployment loads) and its tests (``test_example_detector.py``). No file of the engine is edited:
``Monitor(..., detectors=("speeding",))`` finds it in the registry, and the checkpoint saves its declared
state.

``speeding``: a satellite fix whose straight-line speed from the subject's previous satellite fix (as
reported, not fused) is above ``speeding_mps``; onset, confirmation and end at that fix, so each
offending fix is one alert. In the field one would confirm over several fixes; this one is kept small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa

from geomon.engine.contract import Batch, Detector, EngineContext, register, subject_state
from geomon.engine.rows import alert_table, details_json, subject_runs
from geomon.tracks.fusion import SOURCE_CODE

#: Columns of a subject's state row: its previous satellite fix (time in ms, position in m).
ST_T, ST_X, ST_Y = range(3)
N_STATE = 3
#: Columns of an event record.
REC_SUBJECT, REC_FIX = range(2)


@numba.njit(cache=True, nogil=True)
def speeding_step(offsets, subjects, t_ms, x_m, y_m, satellite, limit_mps, state):
    """Offending fixes of one batch, subject by subject (CSR ``offsets``), state carried per subject.

    Returns an (k, 2) int64 array of (subject code, fix index) records, in input order.
    """
    out = np.empty((t_ms.size, 2), np.int64)
    k = 0
    for r in range(subjects.size):
        s = subjects[r]
        for i in range(offsets[r], offsets[r + 1]):
            if not satellite[i]:
                continue
            if not np.isnan(state[s, ST_T]):
                dt_s = (t_ms[i] - state[s, ST_T]) / 1000.0
                dist = np.hypot(x_m[i] - state[s, ST_X], y_m[i] - state[s, ST_Y])
                if dt_s > 0 and dist / dt_s > limit_mps[i]:
                    out[k, REC_SUBJECT] = s
                    out[k, REC_FIX] = i
                    k += 1
            state[s, ST_T] = t_ms[i]
            state[s, ST_X] = x_m[i]
            state[s, ST_Y] = y_m[i]
    return out[:k]


def speeding_reference(code, t_ms, x_m, y_m, satellite, limit_mps):
    """The same rule as a plain loop over a whole stream (the slow reference the kernel is tested against)."""
    last = {}
    found = []
    for i in range(len(t_ms)):
        if not satellite[i]:
            continue
        s = int(code[i])
        if s in last:
            t0, x0, y0 = last[s]
            dt_s = (t_ms[i] - t0) / 1000.0
            if dt_s > 0 and math.hypot(x_m[i] - x0, y_m[i] - y0) / dt_s > limit_mps[i]:
                found.append((s, int(t_ms[i])))
        last[s] = (t_ms[i], x_m[i], y_m[i])
    return found


@dataclass
class SpeedingState:
    """Per subject: its previous satellite fix (``ST_*`` columns; NaN before the first)."""

    last_fix: np.ndarray = subject_state()


@register
class SpeedingDetector(Detector):
    """Satellite fixes implying a speed above ``speeding_mps`` from the previous one."""

    name = "speeding"
    kinds = ("speeding",)
    rule_keys = ("speeding_mps",)
    reads = "admitted"
    State = SpeedingState

    def __init__(self, ctx: EngineContext):
        self.sets, self.subject_ids, self.subject_level, self.subject_office = ctx.subjects
        self.limit_mps = self.sets.per_set("speeding_mps")
        self.frame = ctx.zones.frame
        self.state = SpeedingState(last_fix=np.full((len(self.subject_ids), N_STATE), np.nan))

    @classmethod
    def from_context(cls, ctx: EngineContext) -> SpeedingDetector:
        return cls(ctx)

    def detect(self, batch: Batch) -> pa.Table:
        f = batch.admitted
        _, offsets, subjects = subject_runs(f.code)
        satellite = f.source == SOURCE_CODE["gnss"]
        rec = speeding_step(offsets, subjects, f.t_ms, f.raw_x_m, f.raw_y_m, satellite, self.limit_mps[f.tset],
                            self.state.last_fix)
        subj, fix = rec[:, REC_SUBJECT], rec[:, REC_FIX]
        t = f.t_ms[fix]
        details = [details_json("confirmed", lv, self.sets.profile[s], self.sets.period[s],
                                limit_mps=float(self.limit_mps[s]))
                   for lv, s in zip(self.subject_level[subj], f.tset[fix])]
        return alert_table(["speeding"] * fix.size, ["medium"] * fix.size, self.subject_ids[subj],
                           [None] * fix.size, self.subject_office[subj], t, t, t, f.lon[fix], f.lat[fix], details,
                           batch.run_id)
