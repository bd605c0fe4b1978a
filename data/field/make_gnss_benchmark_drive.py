"""Make ``data/field/gnss_benchmark_drive.csv``: a real 20-minute car drive, single-point fixes against a PPK truth.

Sources, both fetched through their ordinary clients and checked by SHA-256:

- PyPI ``gnss-benchmark==2.3.0`` (Rokubun; the package metadata states the MIT
  licence, http://opensource.org/licenses/MIT), the wheel
  ``gnss_benchmark-2.3.0-py3-none-any.whl``. Its folder
  ``gnss_benchmark/datasets/mosaicx5_multi_dynamic/`` holds a Septentrio
  mosaic-X5 rover's RINEX 3.04 observations
  (``CARD00ESP_R_20203341240_20M_01S_MO.rnx``, 1 Hz, 2020-11-29 12:40-13:00
  GPST, a car in town near 41.64 N 2.35 E), the broadcast navigation
  (``CARD00ESP_R_20203340900_15H_MN.rnx``) and ``reference_trajectory.csv``
  (the PPK solution of the same receiver against the MARE00ESP base: GPS week,
  seconds of week, lat, lon, height, sdn/sde/sdu).
- Debian ``rtklib`` 2.4.3.b34+dfsg-1+b1 (amd64): its ``rnx2rtkp`` computes the
  single-point (SPP) fixes: ``rnx2rtkp -p 0 -o spp.pos OBS NAV``, every other
  option RTKLIB's default (GPS only, 15 degree elevation mask, broadcast
  ephemerides, Klobuchar ionosphere, Saastamoinen troposphere). It prints per
  epoch lat/lon/height, Q (5 = single), the number of satellites and the
  north/east/up 1-sigma from its least-squares covariance.

One row per epoch of the rover's observation file (the ``>`` epoch lines of the
RINEX; every one, none dropped):

``t_utc``
    The epoch in UTC, ISO 8601 with ``Z`` (GPS time minus the 18 leap seconds
    in force in 2020).
``ref_lon``, ``ref_lat``
    The PPK reference (WGS84 degrees); empty where the reference has no epoch.
``spp_lon``, ``spp_lat``
    The SPP fix (WGS84 degrees); empty where rnx2rtkp has no solution.
``spp_sdn_m``, ``spp_sde_m``
    rnx2rtkp's north and east 1-sigma (m).
``spp_sigma_m``
    The per-axis 1-sigma the benchmark feeds the filter: the RMS of the two,
    ``sqrt((sdn^2 + sde^2) / 2)`` (it keeps the expected squared 2-D error,
    ``sdn^2 + sde^2``; the larger of the two would overstate it).
``n_sat``
    Satellites in the SPP solution.

The fetch, from the repository root (network: PyPI and Debian only)::

    pip download --no-deps -d /tmp/dl gnss-benchmark==2.3.0
    (cd /tmp/dl && apt-get download rtklib && dpkg-deb -x rtklib_*.deb rtklib)
    python data/field/make_gnss_benchmark_drive.py --wheel /tmp/dl/gnss_benchmark-2.3.0-py3-none-any.whl \
        --rnx2rtkp /tmp/dl/rtklib/usr/bin/rnx2rtkp

The same inputs always give a byte-identical file. The truth is the same
receiver's PPK (centimetre level), not an independent instrument: see
``data/field/README.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import subprocess
import tempfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "gnss_benchmark_drive.csv"
WHEEL_SHA256 = "75a0a69642e5d5f863ac8e7d9bd2fc9c9d2444eb70b539a9da3ec93128054e0f"
RTKLIB_VERSION = "ver.2.4.3 b34"
DATASET = "gnss_benchmark/datasets/mosaicx5_multi_dynamic/"
OBS = "CARD00ESP_R_20203341240_20M_01S_MO.rnx"
NAV = "CARD00ESP_R_20203340900_15H_MN.rnx"
REFERENCE = "reference_trajectory.csv"
#: GPS time minus UTC on 2020-11-29 (leap seconds since 1980-01-06).
GPS_MINUS_UTC_S = 18
GPS_EPOCH = datetime(1980, 1, 6, tzinfo=UTC)
SECONDS_PER_WEEK = 604_800
#: RTKLIB's quality flag of a single-point solution.
Q_SINGLE = 5
COLUMNS = ("t_utc", "ref_lon", "ref_lat", "spp_lon", "spp_lat", "spp_sdn_m", "spp_sde_m", "spp_sigma_m", "n_sat")


def gps_seconds(week: int, sow: float) -> float:
    """Seconds since the GPS epoch."""
    return week * SECONDS_PER_WEEK + sow


def utc_iso(gps_s: float) -> str:
    """GPS seconds since the GPS epoch as ISO 8601 UTC (whole seconds: the data are at 1 Hz)."""
    t = GPS_EPOCH + timedelta(seconds=round(gps_s) - GPS_MINUS_UTC_S)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def rinex_epochs(path: Path) -> np.ndarray:
    """GPS seconds of every ``>`` epoch line of a RINEX 3 observation file (epoch flag 0 only)."""
    out = []
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            fields = line[1:].split()
            year, month, day, hour, minute = (int(v) for v in fields[:5])
            sec, flag = float(fields[5]), int(fields[6])
            if flag != 0:
                raise ValueError(f"{path.name}: unexpected epoch flag {flag}: {line!r}")
            t = datetime(year, month, day, hour, minute, tzinfo=UTC) + timedelta(seconds=sec)
            out.append((t - GPS_EPOCH).total_seconds())  # the RINEX time system here is GPS
    return np.array(out)


def read_reference(path: Path) -> dict[float, tuple[float, float]]:
    """GPS seconds -> (lon, lat) of the PPK reference."""
    rows = np.loadtxt(path, delimiter=",", comments="#")
    return {gps_seconds(int(r[0]), r[1]): (r[3], r[2]) for r in rows}


def run_spp(rnx2rtkp: Path, obs: Path, nav: Path, work: Path) -> dict[float, tuple]:
    """GPS seconds -> (lon, lat, sdn, sde, n_sat) of rnx2rtkp's single-point solution."""
    pos = work / "spp.pos"
    subprocess.run([str(rnx2rtkp), "-p", "0", "-o", str(pos), str(obs), str(nav)], check=True,
                   stderr=subprocess.DEVNULL)
    text = pos.read_text()
    if RTKLIB_VERSION not in text.splitlines()[0]:
        raise RuntimeError(f"expected rnx2rtkp {RTKLIB_VERSION}, got {text.splitlines()[0]!r}")
    out = {}
    for line in text.splitlines():
        if line.startswith("%") or not line.strip():
            continue
        f = line.split()
        if int(f[5]) != Q_SINGLE:
            raise ValueError(f"not a single-point solution: {line!r}")
        out[gps_seconds(int(f[0]), float(f[1]))] = (float(f[3]), float(f[2]), float(f[7]), float(f[8]), int(f[6]))
    return out


def _num(value: float, digits: int) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def build(wheel: Path, rnx2rtkp: Path, out: Path = OUT) -> dict:
    """Write the CSV; return counts (epochs, with reference, with a fix, with both)."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise ValueError(f"{wheel}: SHA-256 {digest}, expected {WHEEL_SHA256} (gnss-benchmark 2.3.0)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with zipfile.ZipFile(wheel) as z:
            for name in (OBS, NAV, REFERENCE):
                z.extract(DATASET + name, work)
        data = work / DATASET
        epochs = rinex_epochs(data / OBS)
        reference = read_reference(data / REFERENCE)
        spp = run_spp(rnx2rtkp, data / OBS, data / NAV, work)
    if np.unique(epochs).size != epochs.size:
        raise ValueError("repeated epochs in the observation file")
    for what, found in (("reference", reference), ("SPP", spp)):
        stray = set(found) - set(epochs.tolist())
        if stray:
            raise ValueError(f"{len(stray)} {what} epochs are not epochs of the observation file")
    lines = [",".join(COLUMNS)]
    counts = {"epochs": 0, "with_reference": 0, "with_fix": 0, "with_both": 0}
    nan = math.nan
    for t in epochs:
        ref_lon, ref_lat = reference.get(t, (nan, nan))
        lon, lat, sdn, sde, n_sat = spp.get(t, (nan, nan, nan, nan, None))
        sigma = math.sqrt((sdn * sdn + sde * sde) / 2.0)
        lines.append(",".join([utc_iso(t), _num(ref_lon, 9), _num(ref_lat, 9), _num(lon, 9), _num(lat, 9),
                               _num(sdn, 4), _num(sde, 4), _num(sigma, 4), "" if n_sat is None else str(n_sat)]))
        counts["epochs"] += 1
        counts["with_reference"] += not math.isnan(ref_lon)
        counts["with_fix"] += not math.isnan(lon)
        counts["with_both"] += not (math.isnan(ref_lon) or math.isnan(lon))
    out.write_text("\n".join(lines) + "\n")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--wheel", type=Path, required=True, help="gnss_benchmark-2.3.0-py3-none-any.whl")
    parser.add_argument("--rnx2rtkp", type=Path, required=True, help="RTKLIB 2.4.3 b34 rnx2rtkp")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    counts = build(args.wheel, args.rnx2rtkp, args.out)
    print(f"{args.out}: {counts['epochs']} epochs, {counts['with_reference']} with a reference, "
          f"{counts['with_fix']} with an SPP fix, {counts['with_both']} with both")


if __name__ == "__main__":
    main()
