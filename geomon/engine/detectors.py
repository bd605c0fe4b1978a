"""The behaviour detectors the Monitor runs beside geofencing, wired in one place.

- :class:`geomon.engine.lost_contact.ContactDetector`: lost contact, stuck device,
  location degraded, on every admitted fix (a vague cell fix is contact);
- :class:`geomon.engine.checkins.CheckinDetector`: missed daily check-ins and
  check-ins from outside the permitted area, on every admitted fix;
- :class:`geomon.engine.stays.DwellDetector`: stays (kept for reports), stays at
  places of concern and unexplained night stays away from home and work, and
  :class:`geomon.engine.night.NightDetector`: curfew and night activity, both on the
  fused positions of fixes precise enough to decide (a cell fix hundreds of
  metres off would end any stay or fake a night out).

All share the Monitor's threshold sets (profiles and special periods, per fix)
and one event-time watermark: the newest admitted fix, or the caller's
``now_ms`` when live, so events that need no fix (silence, a deadline, a night
window opening) are noticed in a replay exactly as in live operation.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import shapely

from geomon.engine.checkins import CheckinDetector
from geomon.engine.lost_contact import ContactDetector
from geomon.engine.stays import DwellDetector, places_of_concern
from geomon.tracks.fusion import SOURCE_CODE
from geomon.engine.night import NightDetector

__all__ = ["Behaviour", "DETECTORS", "DEFAULT_DETECTORS"]

#: The behaviour detectors a Monitor can run.
DETECTORS = ("contact", "checkins", "dwell", "night")
#: Those it runs by default. Check-ins are opt-in: a deployment that does not use app check-ins would get a missed
#: check-in per subject per day. Dwell and night are on since their labelled simulations score precision >= 0.95
#: in every noise regime (docs/performance.md, "Behaviour detectors"); they need places of concern and home zones.
DEFAULT_DETECTORS = ("contact", "dwell", "night")


class Behaviour:
    """The behaviour detectors of one Monitor.

    Parameters
    ----------
    monitor : geomon.engine.monitor.Monitor
        Its threshold sets, subjects and compiled zones are used.
    home_zone_id : sequence of str or None
        Per subject code, the zone id of its home (None: no home, no curfew,
        no night stay).
    work_zone_id : sequence of str or None, optional
        Per subject code, the zone id of its workplace (None: none).
    tz : str
        Local time of night windows (a zoneinfo name or "+08:00").
    detectors : iterable of str
        Which to run, of :data:`DETECTORS`; by default
        :data:`DEFAULT_DETECTORS` (check-ins are opt-in: a deployment without
        check-in data would get a missed check-in per subject per day).
    """

    def __init__(self, monitor, home_zone_id, tz: str = "Asia/Shanghai", detectors=DEFAULT_DETECTORS,
                 work_zone_id=None):
        unknown = set(detectors) - set(DETECTORS)
        if unknown:
            raise ValueError(f"unknown detectors {sorted(unknown)}; expected some of {list(DETECTORS)}")
        self.detectors = frozenset(detectors)
        m = monitor
        args = (m._sets, m.subject_ids, m.subject_level, m.subject_office)
        zones = m.zones
        self._zones = zones
        self._permitted_of = m._permitted_of
        self.contact = ContactDetector(*args)
        self.checkins = CheckinDetector(*args)
        code_of_zone = {z: i for i, z in enumerate(zones.zone_id)}
        home = [zones.geometry_m[code_of_zone[h]] if h in code_of_zone else None for h in home_zone_id]
        work = [zones.geometry_m[code_of_zone[w]] if w in code_of_zone else None
                for w in (work_zone_id if work_zone_id is not None else [None] * len(home))]
        self.dwell = DwellDetector(*args, **places_of_concern(zones), home_geometry_m=home, work_geometry_m=work,
                                   tz=tz)
        self.night = NightDetector(*args, home, frame=zones.frame, tz=tz)

    @property
    def watermark_ms(self) -> int:
        return self.contact.watermark_ms

    def _inside_permitted(self, f: dict, checkin: np.ndarray) -> np.ndarray:
        local = self._permitted_of[f["code"]]
        inside = np.ones(checkin.size, bool)
        i = np.flatnonzero(checkin & (local >= 0))
        if i.size:
            geoms = self._zones.geometry_m[self._zones.permitted.codes[local[i]]]
            inside[i] = shapely.intersects_xy(geoms, f["x"][i], f["y"][i])
        return inside

    def admitted(self, f: dict, now_ms: int | None, run_id: str) -> list[pa.Table]:
        """Contact and check-in events over all admitted fixes (sorted by subject code, time)."""
        self.contact.run_id = self.checkins.run_id = run_id
        satellite = f["source"] == SOURCE_CODE["gnss"]
        # Contact always runs: it keeps the watermark the others read.
        out = [self.contact.step(f["code"], f["t"], satellite, f["lon"], f["lat"], f["tset"], now_ms)]
        if "contact" not in self.detectors:
            out = []
        if "checkins" in self.detectors:
            checkin = f["source"] == SOURCE_CODE["checkin"]
            out.append(self.checkins.step(f["code"], f["t"], checkin, self._inside_permitted(f, checkin), f["tset"],
                                          self.watermark_ms, lon=f["lon"], lat=f["lat"]))
        return out

    def fused(self, f: dict, run_id: str) -> list[pa.Table]:
        """Dwell and night events over the fused, decidable fixes (the same dict the geofence reads).

        The dwell detector also keeps the stays that ended (:meth:`take_stays`).
        """
        self.dwell.run_id = self.night.run_id = run_id
        now = self.watermark_ms
        out = []
        if not {"dwell", "night"} & self.detectors:
            return out
        # The trusted 1-sigma of each fix (geomon.tracks.fusion.trusted_sigma_m), and the points both detectors measure from.
        sigma = f["sigma"]
        points = shapely.points(f["x"], f["y"])
        if "dwell" in self.detectors:
            out.append(self.dwell.step(f["code"], f["t"], f["x"], f["y"], f["tset"], now, sigma_m=sigma,
                                       points=points))
        if "night" in self.detectors:
            out.append(self.night.step(f["code"], f["t"], f["x"], f["y"], f["tset"], now, sigma_m=sigma,
                                       points=points))
        return out

    def take_stays(self) -> pa.Table:
        """Stays ended since the last call (:data:`geomon.store.alert_store.STAY_SCHEMA`); empty unless ``dwell`` runs."""
        return self.dwell.take_stays()

    @staticmethod
    def empty_fused() -> dict:
        """The fused-fix dict of a batch with no decidable fix (the watermark may still move)."""
        z = np.zeros(0)
        return {"code": np.zeros(0, np.int64), "t": np.zeros(0, np.int64), "x": z, "y": z,
                "tset": np.zeros(0, np.int64), "sigma": z}
