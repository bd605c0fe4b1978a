"""Load alert rule profiles from TOML, resolving ``inherits`` between profiles.

The file format is TOML 1.0 (read with :mod:`tomllib`); numeric thresholds
carry their unit in the key name (:data:`UNIT_SUFFIXES`). The public names are
re-exported from :mod:`geomon.load`.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from geomon.errors import InputError

__all__ = ["Rules", "UNITLESS_KEYS", "UNIT_SUFFIXES", "default_rules", "load_rules"]


#: Unit suffixes a numeric rule threshold may end in (``_p``: a probability in [0, 1]).
UNIT_SUFFIXES: tuple[str, ...] = ("_s", "_ms", "_m", "_deg", "_mps", "_count", "_p")
#: Numeric rule keys allowed without a unit suffix (they count fixes).
UNITLESS_KEYS: frozenset[str] = frozenset({"confirm_fixes"})
#: Rule keys holding a time of day, "HH:MM" local time.
_TIME_OF_DAY_SUFFIXES = ("_start", "_end")
_TEXT_KEYS = frozenset({"inherits", "description"})
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_HHMM_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_REQUIRED_PROFILES = ("ordinary", "strict")


@dataclass(frozen=True, kw_only=True)
class Rules:
    """Alert rule profiles, resolved through ``inherits``.

    Attributes
    ----------
    source_name : str
        File the rules came from.
    profiles : Mapping[str, Mapping[str, object]]
        Resolved profile per name: inherited values overridden by the
        profile's own (``inherits`` removed; ``description`` not inherited).
    origin : Mapping[str, Mapping[str, str]]
        For each profile and key, the profile that set the value.
    """

    source_name: str
    profiles: Mapping[str, Mapping[str, Any]]
    origin: Mapping[str, Mapping[str, str]]

    def profile(self, name: str) -> Mapping[str, Any]:
        """Return the resolved profile ``name`` (KeyError naming the profiles if absent)."""
        if name not in self.profiles:
            raise KeyError(f"no rule profile {name!r}; have {sorted(self.profiles)}")
        return self.profiles[name]

    def describe(self, name: str) -> str:
        """Return the resolved profile as text, one ``key = value  # from profile`` per line."""
        prof = self.profile(name)
        lines = [f"[profiles.{name}]  # resolved from {self.source_name}"]
        for key in sorted(prof):
            lines.append(f"{key} = {prof[key]!r}  # from {self.origin[name][key]}")
        return "\n".join(lines)


def _check_rule_value(src: str, profile: str, key: str, value: Any) -> Any:
    where = f"profiles.{profile}.{key}"
    if not _KEY_RE.match(key):
        raise InputError(src, "keys must be lower-case snake_case", field=where)
    numeric_key = key in UNITLESS_KEYS or key.endswith(UNIT_SUFFIXES)
    if key.endswith(_TIME_OF_DAY_SUFFIXES) and not numeric_key:
        if isinstance(value, _dt.time) and value.second == 0 and value.microsecond == 0:
            return value.strftime("%H:%M")
        if not (isinstance(value, str) and _HHMM_RE.match(value)):
            raise InputError(src, f"expected a time of day \"HH:MM\", got {value!r}", field=where)
        return value
    if key in _TEXT_KEYS:
        if not isinstance(value, str):
            raise InputError(src, f"expected text, got {value!r}", field=where)
        return value
    if isinstance(value, bool):
        if numeric_key:
            raise InputError(src, f"expected a number, got {value!r}", field=where)
        return value
    if isinstance(value, (int, float)):
        if not numeric_key:
            raise InputError(
                src,
                f"numeric key has no unit suffix; name it with one of {UNIT_SUFFIXES} or use one of {sorted(UNITLESS_KEYS)}",
                field=where,
            )
        if not math.isfinite(value) or value < 0:
            raise InputError(src, f"must be finite and non-negative, got {value!r}", field=where)
        if key.endswith("_p") and value > 1:
            raise InputError(src, f"a probability must be within [0, 1], got {value!r}", field=where)
        if (key in UNITLESS_KEYS or key.endswith("_count")) and not isinstance(value, int):
            raise InputError(src, f"a count must be an integer, got {value!r}", field=where)
        return value
    if isinstance(value, str):
        raise InputError(
            src, "text is only allowed for 'inherits', 'description' and HH:MM keys ending in _start/_end", field=where
        )
    raise InputError(src, f"unsupported value type {type(value).__name__}", field=where)


def _parse_rules(src: str, doc: dict[str, Any]) -> Rules:
    unknown = sorted(set(doc) - {"profiles", "version", "description"})
    if unknown:
        raise InputError(src, f"unknown top-level key(s) {unknown}; expected [profiles.<name>] tables")
    raw_profiles = doc.get("profiles")
    if not isinstance(raw_profiles, dict) or not raw_profiles:
        raise InputError(src, "no [profiles.<name>] tables")
    own: dict[str, dict[str, Any]] = {}
    for pname, body in raw_profiles.items():
        if not isinstance(body, dict):
            raise InputError(src, "a profile must be a table", field=f"profiles.{pname}")
        own[pname] = {k: _check_rule_value(src, pname, k, v) for k, v in body.items()}
    for pname in _REQUIRED_PROFILES:
        if pname not in own:
            raise InputError(src, f"missing required profile [profiles.{pname}]")

    resolved: dict[str, dict[str, Any]] = {}
    origin: dict[str, dict[str, str]] = {}

    def resolve(pname: str, chain: tuple[str, ...]) -> None:
        if pname in resolved:
            return
        parent = own[pname].get("inherits")
        values: dict[str, Any] = {}
        where: dict[str, str] = {}
        if parent is not None:
            if parent not in own:
                raise InputError(src, f"inherits unknown profile {parent!r}", field=f"profiles.{pname}.inherits")
            if parent in chain + (pname,):
                cycle = " -> ".join(chain + (pname, parent))
                raise InputError(src, f"inheritance cycle {cycle}", field=f"profiles.{pname}.inherits")
            resolve(parent, chain + (pname,))
            values = {k: v for k, v in resolved[parent].items() if k != "description"}
            where = {k: origin[parent][k] for k in values}
        for k, v in own[pname].items():
            if k != "inherits":
                values[k], where[k] = v, pname
        resolved[pname], origin[pname] = values, where

    for pname in own:
        resolve(pname, ())
    return Rules(
        source_name=src,
        profiles=MappingProxyType({p: MappingProxyType(v) for p, v in resolved.items()}),
        origin=MappingProxyType({p: MappingProxyType(v) for p, v in origin.items()}),
    )


def load_rules(path: str | Path) -> Rules:
    """Load and validate a TOML file of rule profiles.

    Parameters
    ----------
    path : str or pathlib.Path
        TOML with one ``[profiles.<name>]`` table per profile; ``ordinary`` and
        ``strict`` are required. A profile may name a parent with
        ``inherits = "<profile>"`` and override any of its values.

    Returns
    -------
    Rules
        The resolved profiles and where each value came from.

    Raises
    ------
    geomon.errors.InputError
        Naming the file and the key, if the file is not TOML or a value breaks
        a rule below.

    Notes
    -----
    Value rules: a number must be finite and non-negative and its key must end
    in a unit suffix (:data:`UNIT_SUFFIXES`) or be in :data:`UNITLESS_KEYS`;
    counts (``_count``, ``confirm_fixes``) are integers. Keys ending in
    ``_start``/``_end`` hold a local time of day ``"HH:MM"`` (a TOML local
    time is also accepted). Text is allowed only for ``inherits`` and
    ``description``; booleans for flags without a unit suffix.

    Inheritance only copies values: nothing checks that a special-period
    profile is stricter than its parent. Use :meth:`Rules.describe` to see the
    resolved thresholds and the profile each comes from.
    """
    path = Path(path)
    src = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputError(src, "no such file") from None
    except IsADirectoryError:
        raise InputError(src, "is a directory, not a TOML file") from None
    except UnicodeDecodeError:
        raise InputError(src, "not UTF-8 text") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(src, f"not valid TOML: {exc}") from None
    return _parse_rules(src, doc)


def default_rules() -> Rules:
    """Load the rule profiles shipped with geomon (``geomon/rules_default.toml``)."""
    with resources.as_file(resources.files("geomon").joinpath("rules_default.toml")) as path:
        return load_rules(path)
