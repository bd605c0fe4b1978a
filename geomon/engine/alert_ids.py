"""Deterministic alert ids: the same event always gets the same id, so replays are idempotent."""

from __future__ import annotations

import hashlib

__all__ = ["alert_id"]


def alert_id(kind: str, subject_id: str, zone_id: str | None, onset_ms: int) -> str:
    """Id of the alert of ``kind`` for ``subject_id`` (and ``zone_id``, if any) that began at ``onset_ms``.

    Examples
    --------
    >>> alert_id("lost_contact", "S0001", None, 0) == alert_id("lost_contact", "S0001", "", 0)
    True
    """
    key = f"{kind}|{subject_id}|{zone_id or ''}|{int(onset_ms)}"
    return hashlib.sha1(key.encode()).hexdigest()[:20]
