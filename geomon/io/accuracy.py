"""What a fix's reported accuracy means, and its conversion to the per-axis sigma the engine reads.

geomon reads ``accuracy_m`` as the per-axis 1-sigma horizontal noise in metres
of a circular two-dimensional Gaussian. Devices report other things: Android
(``Location.getAccuracy``: "the radius of 68 % confidence"), iOS
(``CLLocation.horizontalAccuracy``) and the trackers that forward them
(Traccar, OsmAnd) report a 68 % radius; some receivers report CEP (the 50 %
radius) or a 95 % radius; NMEA and GPX give HDOP, a unitless dilution of
precision. :func:`sigma_from_accuracy` turns each kind into the per-axis sigma,
and :func:`geomon.io.load.load_fixes` applies it once, on load, so everything
downstream keeps one meaning.

For a circular Gaussian with per-axis sigma ``s`` the radial error follows a
Rayleigh distribution, so the radius holding probability ``p`` is
``s * sqrt(-2 ln(1 - p))`` (Kaplan & Hegarty, *Understanding GPS: Principles
and Applications*, 2nd ed., 2006, ch. 7, on accuracy measures). HDOP times
the user-equivalent range error (UERE, the 1-sigma pseudorange error) is the
horizontal DRMS, ``sqrt(s_e**2 + s_n**2)``, which is ``s * sqrt(2)`` for a
circular error.
"""

from __future__ import annotations

import math
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike

from geomon.errors import InputError

__all__ = [
    "ACCURACY_KINDS",
    "DEFAULT_UERE_M",
    "R50_PER_SIGMA",
    "R68_PER_SIGMA",
    "R95_PER_SIGMA",
    "accuracy_settings",
    "check_accuracy",
    "sigma_from_accuracy",
]


def _radius_per_sigma(p: float) -> float:
    """Radius holding probability ``p`` of a circular 2-D Gaussian, in units of its per-axis sigma."""
    return math.sqrt(-2.0 * math.log(1.0 - p))


#: Radius of 50 % (CEP) of a circular 2-D Gaussian over its per-axis sigma: ``sqrt(2 ln 2)``, about 1.1774.
R50_PER_SIGMA = _radius_per_sigma(0.50)
#: Radius of 68 % over the per-axis sigma: ``sqrt(-2 ln 0.32)``, about 1.5096 (Android, iOS, Traccar, OsmAnd).
R68_PER_SIGMA = _radius_per_sigma(0.68)
#: Radius of 95 % over the per-axis sigma: ``sqrt(-2 ln 0.05)``, about 2.4477.
R95_PER_SIGMA = _radius_per_sigma(0.95)

#: UERE (1-sigma pseudorange error, m) that turns HDOP into metres when none is given: about 5 m is the
#: single-frequency (L1 C/A) standard positioning error budget of Kaplan & Hegarty (2006, ch. 7) with
#: selective availability off. Receivers with SBAS or dual frequency do better, urban ones worse: pass
#: ``uere_m`` when it is known.
DEFAULT_UERE_M = 5.0

#: The accepted accuracy kinds and what each means (``r50`` is another name of ``cep``).
ACCURACY_KINDS = MappingProxyType({
    "sigma": "per-axis 1-sigma in metres (geomon's own meaning, the default)",
    "r68": "radius of 68 % confidence in metres (Android, iOS, Traccar, OsmAnd)",
    "cep": "radius of 50 % confidence (CEP) in metres",
    "r50": "the same as cep",
    "r95": "radius of 95 % confidence in metres",
    "hdop": "horizontal dilution of precision (unitless), times a UERE",
})

_ALIASES = {"r50": "cep"}
_RADIUS_PER_SIGMA = {"r68": R68_PER_SIGMA, "cep": R50_PER_SIGMA, "r95": R95_PER_SIGMA}


def check_accuracy(kind: str = "sigma", uere_m: float | None = None, *, option: str = "accuracy",
                   uere_option: str = "uere_m") -> tuple[str, float | None]:
    """The canonical accuracy kind and the UERE it uses, or a clear error naming the option.

    Parameters
    ----------
    kind : str
        One of :data:`ACCURACY_KINDS` (case-insensitive; ``r50`` is read as ``cep``).
    uere_m : float, optional
        With ``kind="hdop"``: the user-equivalent range error in metres
        (default :data:`DEFAULT_UERE_M`). Refused with any other kind, where
        it would silently mean nothing.
    option, uere_option : str
        Names of the two settings in the error messages (the CLI passes
        ``--accuracy`` and ``--uere-m``).

    Returns
    -------
    (str, float or None)
        The kind (``cep`` for ``r50``) and the UERE in metres (None unless ``hdop``).

    Raises
    ------
    geomon.errors.InputError
        If the kind is unknown, or ``uere_m`` is not a positive finite number
        or is given with another kind than ``hdop``.

    Examples
    --------
    >>> check_accuracy("R50")
    ('cep', None)
    >>> check_accuracy("hdop")
    ('hdop', 5.0)
    >>> check_accuracy("gps")
    Traceback (most recent call last):
    ...
    geomon.errors.InputError: accuracy: unknown accuracy kind 'gps'; expected one of sigma, r68, cep, r50, r95, hdop
    """
    key = str(kind).strip().lower()
    if key not in ACCURACY_KINDS:
        raise InputError(option, f"unknown accuracy kind {kind!r}; expected one of {', '.join(ACCURACY_KINDS)}")
    key = _ALIASES.get(key, key)
    if key != "hdop":
        if uere_m is not None:
            raise InputError(uere_option, f"applies to {option} hdop only, not {key}")
        return key, None
    if uere_m is None:
        return key, DEFAULT_UERE_M
    try:
        uere = float(uere_m)
    except (TypeError, ValueError):
        uere = math.nan
    if not (math.isfinite(uere) and uere > 0):
        raise InputError(uere_option, f"{uere_m!r} is not a positive number of metres")
    return key, uere


def accuracy_settings(kind: str = "sigma", uere_m: float | None = None) -> dict:
    """The accuracy settings a run's configuration hash covers: none for ``sigma``, so earlier hashes stay.

    Examples
    --------
    >>> accuracy_settings("sigma"), accuracy_settings("r50"), accuracy_settings("hdop", 3)
    ({}, {'accuracy': 'cep'}, {'accuracy': 'hdop', 'uere_m': 3.0})
    """
    key, uere = check_accuracy(kind, uere_m)
    if key == "sigma":
        return {}
    return {"accuracy": key} if uere is None else {"accuracy": key, "uere_m": uere}


def sigma_from_accuracy(values: ArrayLike, kind: str = "sigma", *, uere_m: float | None = None) -> np.ndarray:
    """Reported horizontal accuracies as the per-axis 1-sigma (m) of a circular 2-D Gaussian.

    Parameters
    ----------
    values : array_like of float
        Reported accuracies: metres for the radius kinds, unitless for
        ``hdop``. NaN (or None) means not reported and stays NaN.
    kind : str
        What the values are (:data:`ACCURACY_KINDS`):

        - ``sigma``: per-axis 1-sigma already; returned as float64 unchanged.
        - ``r68``, ``cep`` (``r50``), ``r95``: the radius holding 68 %, 50 %,
          95 % of fixes; divided by ``sqrt(-2 ln(1 - p))`` (:data:`R68_PER_SIGMA`,
          :data:`R50_PER_SIGMA`, :data:`R95_PER_SIGMA`).
        - ``hdop``: ``HDOP * UERE`` is the horizontal DRMS, so the per-axis
          sigma is ``HDOP * uere_m / sqrt(2)``.
    uere_m : float, optional
        User-equivalent range error (1-sigma, m) for ``hdop``; default
        :data:`DEFAULT_UERE_M`. Refused with other kinds.

    Returns
    -------
    numpy.ndarray of float64
        Per-axis sigma in metres, the shape of ``values``.

    Raises
    ------
    geomon.errors.InputError
        For an unknown kind or a bad ``uere_m`` (:func:`check_accuracy`).

    Notes
    -----
    The radial error of a circular Gaussian with per-axis sigma ``s`` is
    Rayleigh distributed: ``P(r <= R) = 1 - exp(-R**2 / (2 s**2))``, hence
    ``R_p = s * sqrt(-2 ln(1 - p))``. A device whose errors are not circular
    or not Gaussian (multipath, a phone that reports the same value whatever
    happens) is only approximated; the kind fixes the scale, not the shape.

    Examples
    --------
    >>> sigma_from_accuracy([3.0191, float("nan")], "r68").round(3)
    array([ 2., nan])
    >>> sigma_from_accuracy([1.0], "hdop", uere_m=2 ** 0.5)
    array([1.])
    """
    key, uere = check_accuracy(kind, uere_m)
    out = np.array(values, dtype=np.float64)
    if key == "hdop":
        out *= uere / math.sqrt(2.0)
    elif key != "sigma":
        out /= _RADIUS_PER_SIGMA[key]
    return out
