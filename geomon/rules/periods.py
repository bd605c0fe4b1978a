"""Special periods (特殊时期): rule values that apply over a date-time range.

A rules file may declare ``[[periods]]`` (parsed and validated by
:mod:`geomon.rules.load`): a half-open range ``[start, end)`` of event time,
optionally limited to some offices and/or subjects, naming a profile and/or
inline overrides. Inside the range the values a fix is judged by are, key by
key, the subject's level profile (which holds every key: the packaged defaults
under it), overridden by the values the period's profile sets in the file
(through its ``inherits``), overridden by the period's inline ``overrides``
(see docs/rules.md).

The Monitor asks for the values of millions of fixes, and periods are few, so
the values are resolved once per *threshold set* — one per pair (base profile,
period or none) — and each fix only gets the index of its set
(:meth:`ThresholdSets.set_of_fixes`, one vectorised pass per period).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from statistics import NormalDist
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["Period", "ThresholdSets"]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MS = _dt.timedelta(milliseconds=1)


@dataclass(frozen=True, kw_only=True)
class Period:
    """One special period of a rules file.

    Attributes
    ----------
    name : str
        Unique name, recorded in the ``details.period`` of the alerts it decides.
    start, end : datetime.datetime
        Time-zone aware bounds; the period covers event times in ``[start, end)``.
    profile : str or None
        Profile whose resolved values override the subject's level profile.
    overrides : Mapping[str, object]
        Inline values overriding both (validated like profile values).
    offices, subjects : frozenset of str, or None
        Scope: when given, only subjects of these offices / only these
        subjects; both given, a subject must satisfy both. None: everyone.
    description : str or None
        Free text.
    """

    name: str
    start: _dt.datetime
    end: _dt.datetime
    profile: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    offices: frozenset[str] | None = None
    subjects: frozenset[str] | None = None
    description: str | None = None

    @property
    def start_ms(self) -> int:
        """Start, ms since the epoch (UTC)."""
        return (self.start - _EPOCH) // _MS

    @property
    def end_ms(self) -> int:
        """End (excluded), ms since the epoch (UTC)."""
        return (self.end - _EPOCH) // _MS

    def applies_to(self, subject_id: str, office_id: str | None) -> bool:
        """Is the subject within the period's office and subject scope?"""
        return ((self.offices is None or office_id in self.offices)
                and (self.subjects is None or subject_id in self.subjects))

    def may_share_subjects(self, other: Period) -> bool:
        """Could both periods apply to one subject, judging by their scopes alone?"""
        if self.offices is not None and other.offices is not None and not (self.offices & other.offices):
            return False
        if self.subjects is not None and other.subjects is not None and not (self.subjects & other.subjects):
            return False
        return True

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (for configuration hashes and reports)."""
        return {"name": self.name, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "profile": self.profile, "overrides": dict(self.overrides),
                "offices": sorted(self.offices) if self.offices is not None else None,
                "subjects": sorted(self.subjects) if self.subjects is not None else None}


class ThresholdSets:
    """Effective rule values per (base profile, period) and the set each fix falls in.

    Parameters
    ----------
    rules : geomon.rules.load.Rules
        Resolved profiles and periods.
    base_profile : sequence of str, one per subject
        The profile each subject uses outside periods (its level's, or one
        forced for everyone).
    subject_ids, subject_office : sequence of str, one per subject
        Used for the periods' scopes.

    Attributes
    ----------
    values : list of Mapping[str, object]
        Effective values of each set.
    profile : numpy.ndarray of object
        Per set, the profile that decided it: the period's profile if it
        names one, else the base profile.
    period : numpy.ndarray of object
        Per set, the period's name, or None outside periods.

    Notes
    -----
    Set ``b * (n_periods + 1) + p + 1`` is base profile ``b`` (of the sorted
    distinct base profiles) in period ``p`` (``p = -1``: no period). The rules
    loader guarantees that periods that could apply to the same subject do not
    overlap in time, so each fix is in at most one period.
    """

    def __init__(self, rules, base_profile: Sequence[str], subject_ids: Sequence[str],
                 subject_office: Sequence[str | None]):
        periods: tuple[Period, ...] = tuple(getattr(rules, "periods", ()))
        bases = sorted(set(base_profile))
        n_slots = len(periods) + 1
        base_index = {name: b for b, name in enumerate(bases)}
        self.n_periods = len(periods)
        self._base_set = np.array([base_index[p] * n_slots for p in base_profile], dtype=np.int64)
        self._start_ms = np.array([p.start_ms for p in periods], dtype=np.int64)
        self._end_ms = np.array([p.end_ms for p in periods], dtype=np.int64)
        self._in_scope = np.array([[p.applies_to(s, o) for s, o in zip(subject_ids, subject_office)]
                                   for p in periods], dtype=bool).reshape(len(periods), len(subject_ids))
        self.values: list[Mapping[str, Any]] = []
        profile, period = [], []
        for name in bases:
            base = dict(rules.profile(name))
            self.values.append(MappingProxyType(base))
            profile.append(name)
            period.append(None)
            for p in periods:
                values = dict(base)
                if p.profile is not None:  # the values its inherits chain sets in the file, not the packaged defaults
                    values.update({k: v for k, v in rules.file_values(p.profile).items() if k != "description"})
                values.update(p.overrides)
                self.values.append(MappingProxyType(values))
                profile.append(p.profile or name)
                period.append(p.name)
        self.profile = np.array(profile, dtype=object)
        self.period = np.array(period, dtype=object)

    @property
    def n_sets(self) -> int:
        """Number of threshold sets."""
        return len(self.values)

    def per_set(self, key: str, *, scale: float = 1.0, dtype=np.float64) -> np.ndarray:
        """One value of ``key`` per set, times ``scale``, as an array of ``dtype``.

        The rules hold every key (:func:`geomon.rules.load.load_rules` starts
        every profile from the packaged defaults), so there is no default:
        ``per_set("confirm_s", scale=1000, dtype=np.int64)``.

        Raises
        ------
        KeyError
            Naming ``key`` and the set's profile and period if a set lacks it
            (rules not from :func:`~geomon.rules.load.load_rules`, or a key a
            detector declares that the rules file does not set).
        """
        out = []
        for i, values in enumerate(self.values):
            if key not in values:
                raise KeyError(f"threshold {key!r} is not set in threshold set {i} (profile {self.profile[i]!r}, "
                               f"period {self.period[i]!r})")
            out.append(values[key] * scale)
        return np.array(out, dtype=dtype)

    def normal_quantile(self, key: str) -> np.ndarray:
        """The standard normal quantile of probability ``key`` per set (``breach_p`` 0.95: 1.645): how many
        sigmas a position must clear to be on a side with that probability."""
        return np.array([NormalDist().inv_cdf(p) for p in self.per_set(key)])

    def set_of_fixes(self, code: np.ndarray, t_ms: np.ndarray) -> np.ndarray:
        """Threshold set of each fix from its subject code and event time (int64 ms, UTC).

        Returns
        -------
        numpy.ndarray of int64
            Index into the sets, one per fix. A fix at exactly a period's
            ``end`` is outside it; one at its ``start`` is inside.
        """
        code = np.asarray(code, dtype=np.int64)
        t_ms = np.asarray(t_ms, dtype=np.int64)
        base = self._base_set[code]
        if self.n_periods == 0 or code.size == 0:
            return base
        out = base.copy()
        t_lo, t_hi = t_ms.min(), t_ms.max()
        for p in range(self.n_periods):
            if self._start_ms[p] > t_hi or self._end_ms[p] <= t_lo:
                continue
            inside = (t_ms >= self._start_ms[p]) & (t_ms < self._end_ms[p]) & self._in_scope[p, code]
            out[inside] = base[inside] + p + 1
        return out
