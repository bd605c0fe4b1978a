"""Load alert rules from TOML: profiles resolved through ``inherits``, and special periods.

The file format is TOML 1.0 (read with :mod:`tomllib`); numeric thresholds
carry their unit in the key name (:data:`UNIT_SUFFIXES`) and every key must be
one of :data:`THRESHOLD_KEYS`, each documented in docs/rules.md. Special
periods (``[[periods]]``) are validated here and resolved per fix by
:mod:`geomon.rules.periods`. The public names are re-exported from :mod:`geomon.io.load`.

The packaged file ``geomon/rules/default.toml`` is the one source of every
threshold's default: its ``ordinary`` profile sets every key of
:data:`THRESHOLD_KEYS`, and every profile of any loaded file starts from those
values (see :func:`load_rules`), so code never needs a fallback value.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import difflib
import functools
import math
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from geomon.errors import InputError
from geomon.rules.periods import Period

__all__ = ["PACKAGED_ORIGIN", "Period", "Rules", "THRESHOLD_KEYS", "UNITLESS_KEYS", "UNIT_SUFFIXES", "default_rules",
           "declare_rule_keys", "default_rules_text", "load_rules"]


#: Unit suffixes a numeric rule threshold may end in (``_p``: a probability in [0, 1]; ``_per_day``: a rate per
#: subject-day).
UNIT_SUFFIXES: tuple[str, ...] = ("_s", "_ms", "_m", "_deg", "_mps", "_count", "_p", "_per_day")
#: Numeric rule keys allowed without a unit suffix (they count fixes).
UNITLESS_KEYS: frozenset[str] = frozenset({"confirm_fixes"})
#: Rule keys holding a time of day, "HH:MM" local time (``_due``: a daily deadline).
_TIME_OF_DAY_SUFFIXES = ("_start", "_end", "_due")
_TEXT_KEYS = frozenset({"inherits", "description"})
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_HHMM_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_REQUIRED_PROFILES = ("ordinary", "strict")
_TOP_LEVEL_KEYS = ("profiles", "periods", "utc_offset", "version", "description")
_PERIOD_KEYS = ("name", "start", "end", "profile", "overrides", "offices", "subjects", "description")
_OFFSET_RE = re.compile(r"^([+-])(\d\d):([0-5]\d)$")
#: China Standard Time: naive period times are read in it unless the file sets ``utc_offset``.
DEFAULT_UTC_OFFSET = "+08:00"
#: The packaged rules file, the source of every threshold's default.
_PACKAGED_FILE = "default.toml"
#: Its profile whose values are the base level of every profile of every loaded file.
_PACKAGED_BASE_PROFILE = "ordinary"


@functools.lru_cache(maxsize=1)
def _packaged_doc() -> Mapping[str, Any]:
    """The packaged rules file, parsed once (read, never changed)."""
    return tomllib.loads(default_rules_text())


def default_rules_text() -> str:
    """The text of the packaged rules file (``geomon rules default``): a starting point for one's own."""
    return resources.files("geomon.rules").joinpath(_PACKAGED_FILE).read_text(encoding="utf-8")


#: Every rule key geomon knows (each documented in docs/rules.md; tests/rules/test_docs_table.py holds the table
#: to the file): the keys of the packaged ``ordinary`` profile, which holds their defaults. Any other key in a
#: rules file is an error, unless a registered detector declares it (:func:`declare_rule_keys`).
THRESHOLD_KEYS: frozenset[str] = frozenset(_packaged_doc()["profiles"][_PACKAGED_BASE_PROFILE]) - _TEXT_KEYS
#: In :attr:`Rules.origin`, the origin of a value no profile of the file sets (it comes from the packaged
#: ``ordinary`` profile).
PACKAGED_ORIGIN = "packaged ordinary"


@dataclass(frozen=True, kw_only=True)
class Rules:
    """Alert rule profiles, resolved through ``inherits``.

    Attributes
    ----------
    source_name : str
        File the rules came from.
    profiles : Mapping[str, Mapping[str, object]]
        Resolved profile per name, holding every key of :data:`THRESHOLD_KEYS`:
        the packaged ``ordinary`` profile's values, overridden by the
        inherited values, overridden by the profile's own (``inherits``
        removed; ``description`` not inherited).
    origin : Mapping[str, Mapping[str, str]]
        For each profile and key, the profile of the file that set the value,
        or :data:`PACKAGED_ORIGIN` for a value from the packaged defaults.
    periods : tuple of Period
        Special periods, in file order.
    """

    source_name: str
    profiles: Mapping[str, Mapping[str, Any]]
    origin: Mapping[str, Mapping[str, str]]
    periods: tuple[Period, ...] = field(default=())

    def profile(self, name: str) -> Mapping[str, Any]:
        """Return the resolved profile ``name`` (KeyError naming the profiles if absent)."""
        if name not in self.profiles:
            raise KeyError(f"no rule profile {name!r}; have {sorted(self.profiles)}")
        return self.profiles[name]

    def with_values(self, **values: Any) -> Rules:
        """These rules with ``values`` set in every profile, each checked as a rules file's would be; the
        profiles count as setting them (:attr:`origin`), so a special period naming a profile carries them.

        >>> default_rules().with_values(breach_by_fixes=True).profile("strict")["breach_by_fixes"]
        True
        """
        where = f"{self.source_name} (with_values)"
        checked = {key: _check_rule_value(where, "profiles.*", key, value) for key, value in values.items()}
        profiles = {name: MappingProxyType({**prof, **checked}) for name, prof in self.profiles.items()}
        origin = {name: MappingProxyType({**org, **dict.fromkeys(checked, name)}) for name, org in self.origin.items()}
        return dataclasses.replace(self, profiles=profiles, origin=origin)

    def file_values(self, name: str) -> dict[str, Any]:
        """The resolved profile ``name`` without the values it has from the packaged defaults alone.

        These are the values the file itself sets for the profile, through its
        ``inherits`` chain; a special period naming the profile overrides a
        subject's values with these only (:class:`geomon.rules.periods.ThresholdSets`).
        """
        origin = self.origin.get(name, {})
        return {k: v for k, v in self.profile(name).items() if origin.get(k) != PACKAGED_ORIGIN}

    def describe(self, name: str) -> str:
        """Return the resolved profile as text, one ``key = value  # from profile`` per line."""
        prof = self.profile(name)
        lines = [f"[profiles.{name}]  # resolved from {self.source_name}"]
        for key in sorted(prof):
            value = prof[key]
            text = str(value).lower() if isinstance(value, bool) else repr(value)   # TOML's true/false
            lines.append(f"{key} = {text}  # from {self.origin[name][key]}")
        return "\n".join(lines)


#: Rule keys of detectors registered from outside geomon (:func:`declare_rule_keys`): valid in a rules file,
#: with no packaged default (the deployment's rules file sets them).
_DECLARED_KEYS: set[str] = set()


def declare_rule_keys(keys) -> None:
    """Accept ``keys`` in rules files from now on: the rule keys a detector declares
    (:func:`geomon.engine.contract.register` calls this). Each must be snake_case with a unit suffix
    (:data:`UNIT_SUFFIXES`) or be a ``_start``/``_end``/``_due`` time of day. Keys of the packaged file
    keep their packaged defaults; any other key has none, so the rules file a deployment loads must set it
    (a detector reading an unset key fails at start with the key named)."""
    for key in keys:
        if key in THRESHOLD_KEYS:
            continue
        if not _KEY_RE.match(key) or not (key.endswith(UNIT_SUFFIXES) or key.endswith(("_start", "_end", "_due"))):
            raise ValueError(f"rule key {key!r}: snake_case with a unit suffix {UNIT_SUFFIXES} or a time of day")
        _DECLARED_KEYS.add(key)


def _check_rule_value(src: str, table: str, key: str, value: Any, *, text_keys=_TEXT_KEYS) -> Any:
    """Validate one ``key = value`` of the table at path ``table``; return the value as stored."""
    where = f"{table}.{key}"
    if not _KEY_RE.match(key):
        raise InputError(src, "keys must be lower-case snake_case", field=where)
    if key in _TEXT_KEYS and key not in text_keys:
        raise InputError(src, f"{key!r} belongs to a profile; overrides hold thresholds only", field=where)
    checked = _checked_value(src, where, key, value)
    if key not in THRESHOLD_KEYS and key not in _DECLARED_KEYS and key not in text_keys:
        close = difflib.get_close_matches(key, sorted(THRESHOLD_KEYS | _DECLARED_KEYS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(src, f"unknown threshold {key!r}{hint}; the known keys are listed in docs/rules.md",
                         field=where)
    return checked


def _checked_value(src: str, where: str, key: str, value: Any) -> Any:
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
                f"numeric key has no unit suffix; name it with one of {UNIT_SUFFIXES} "
                f"or use one of {sorted(UNITLESS_KEYS)}",
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
            src, "text is only allowed for 'inherits', 'description' and HH:MM keys ending in _start/_end/_due",
            field=where,
        )
    raise InputError(src, f"unsupported value type {type(value).__name__}", field=where)


def _parse_profiles(src: str, raw_profiles: Any, base: Mapping[str, Any]) -> tuple[dict, dict]:
    """Resolve the profiles; a profile without ``inherits`` starts from ``base`` (origin :data:`PACKAGED_ORIGIN`)."""
    if not isinstance(raw_profiles, dict) or not raw_profiles:
        raise InputError(src, "no [profiles.<name>] tables")
    own: dict[str, dict[str, Any]] = {}
    for pname, body in raw_profiles.items():
        if not isinstance(body, dict):
            raise InputError(src, "a profile must be a table", field=f"profiles.{pname}")
        own[pname] = {k: _check_rule_value(src, f"profiles.{pname}", k, v) for k, v in body.items()}
    for pname in _REQUIRED_PROFILES:
        if pname not in own:
            raise InputError(src, f"missing required profile [profiles.{pname}]")

    resolved: dict[str, dict[str, Any]] = {}
    origin: dict[str, dict[str, str]] = {}

    def resolve(pname: str) -> None:
        # Walk up to the first resolved ancestor (or the root), then resolve downwards:
        # a loop, not recursion, so a long inheritance chain cannot exhaust the stack.
        chain = [pname]
        while chain[-1] not in resolved:
            child = chain[-1]
            parent = own[child].get("inherits")
            if parent is None:
                break
            if parent not in own:
                raise InputError(src, f"inherits unknown profile {parent!r}", field=f"profiles.{child}.inherits")
            if parent in chain:
                cycle = " -> ".join(chain + [parent])
                raise InputError(src, f"inheritance cycle {cycle}", field=f"profiles.{child}.inherits")
            chain.append(parent)
        for name in reversed(chain):
            if name in resolved:
                continue
            parent = own[name].get("inherits")
            values: dict[str, Any] = dict(base)
            where: dict[str, str] = dict.fromkeys(base, PACKAGED_ORIGIN)
            if parent is not None:
                values = {k: v for k, v in resolved[parent].items() if k != "description"}
                where = {k: origin[parent][k] for k in values}
            for k, v in own[name].items():
                if k != "inherits":
                    values[k], where[k] = v, name
            resolved[name], origin[name] = values, where

    for pname in own:
        resolve(pname)
    return resolved, origin


def _utc_offset(src: str, value: Any) -> _dt.timezone:
    m = _OFFSET_RE.match(value) if isinstance(value, str) else None
    if m is None or int(m.group(2)) > 14:
        raise InputError(src, f"expected an offset from UTC like \"+08:00\", got {value!r}", field="utc_offset")
    delta = _dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
    return _dt.timezone(-delta if m.group(1) == "-" else delta)


def _period_time(src: str, where: str, value: Any, local: _dt.timezone) -> _dt.datetime:
    """A period bound as an aware datetime; naive values are local time of the file's ``utc_offset``."""
    parsed = value
    if isinstance(value, str):
        try:
            parsed = _dt.datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
    elif isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        parsed = _dt.datetime.combine(value, _dt.time())
    if not isinstance(parsed, _dt.datetime):
        raise InputError(src, f"expected a date-time like \"2026-02-15T00:00\" (local time) or "
                              f"\"2026-02-15T00:00+08:00\", got {value!r}", field=where)
    return parsed.replace(tzinfo=local) if parsed.tzinfo is None else parsed


def _name_list(src: str, where: str, value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InputError(src, f"expected a list of non-empty texts, got {value!r}", field=where)
    if not value:
        raise InputError(src, "an empty list matches no subject; omit the key to apply to everyone", field=where)
    return frozenset(value)


def _parse_period(src: str, i: int, body: Any, profiles: Mapping[str, Any], local: _dt.timezone) -> Period:
    at = f"periods[{i}]"
    if not isinstance(body, dict):
        raise InputError(src, "a period must be a table; write each one as [[periods]]", field=at)
    unknown = sorted(set(body) - set(_PERIOD_KEYS))
    if unknown:
        raise InputError(src, f"unknown key(s) {unknown}; a period has {list(_PERIOD_KEYS)}",
                         field=f"{at}.{unknown[0]}")
    for key in ("name", "start", "end"):
        if key not in body:
            raise InputError(src, f"a period needs {key!r}", field=f"{at}.{key}")
    name = body["name"]
    if not isinstance(name, str) or not name.strip():
        raise InputError(src, f"expected a non-empty text, got {name!r}", field=f"{at}.name")
    for key in ("profile", "description"):
        if key in body and not isinstance(body[key], str):
            raise InputError(src, f"expected text, got {body[key]!r}", field=f"{at}.{key}")
    profile = body.get("profile")
    if profile is not None and profile not in profiles:
        raise InputError(src, f"unknown profile {profile!r}; have {sorted(profiles)}", field=f"{at}.profile")
    raw_overrides = body.get("overrides", {})
    if not isinstance(raw_overrides, dict):
        raise InputError(src, f"expected a table of thresholds, got {raw_overrides!r}", field=f"{at}.overrides")
    overrides = {k: _check_rule_value(src, f"{at}.overrides", k, v, text_keys=())
                 for k, v in raw_overrides.items()}
    if profile is None and not overrides:
        raise InputError(src, "a period must name a 'profile' or set 'overrides', or it changes nothing", field=at)
    start = _period_time(src, f"{at}.start", body["start"], local)
    end = _period_time(src, f"{at}.end", body["end"], local)
    if end <= start:
        raise InputError(src, f"end {end.isoformat()} is not after start {start.isoformat()}", field=f"{at}.end")
    return Period(
        name=name, start=start, end=end, profile=profile, overrides=MappingProxyType(overrides),
        offices=_name_list(src, f"{at}.offices", body["offices"]) if "offices" in body else None,
        subjects=_name_list(src, f"{at}.subjects", body["subjects"]) if "subjects" in body else None,
        description=body.get("description"),
    )


def _parse_periods(src: str, raw: Any, profiles: Mapping[str, Any], local: _dt.timezone) -> tuple[Period, ...]:
    if not isinstance(raw, list):
        raise InputError(src, "periods must be an array of tables; write each one as [[periods]]", field="periods")
    periods = tuple(_parse_period(src, i, body, profiles, local) for i, body in enumerate(raw))
    seen: dict[str, int] = {}
    for j, b in enumerate(periods):
        if b.name in seen:
            raise InputError(src, f"duplicate period name {b.name!r} (also periods[{seen[b.name]}])",
                             field=f"periods[{j}].name")
        seen[b.name] = j
        for i, a in enumerate(periods[:j]):
            if a.start < b.end and b.start < a.end and a.may_share_subjects(b):
                raise InputError(
                    src,
                    f"periods {a.name!r} (periods[{i}]) and {b.name!r} overlap in time "
                    f"([{a.start.isoformat()}, {a.end.isoformat()}) and [{b.start.isoformat()}, {b.end.isoformat()})) "
                    "and may apply to the same subjects; make the times disjoint or give both disjoint "
                    "'offices' or disjoint 'subjects' lists",
                    field=f"periods[{j}]",
                )
    return periods


def _parse_rules(src: str, doc: dict[str, Any], base: Mapping[str, Any]) -> Rules:
    unknown = sorted(set(doc) - set(_TOP_LEVEL_KEYS))
    if unknown:
        raise InputError(src, f"unknown top-level key(s) {unknown}; expected [profiles.<name>] tables, "
                              "[[periods]], utc_offset, version or description")
    resolved, origin = _parse_profiles(src, doc.get("profiles"), base)
    local = _utc_offset(src, doc.get("utc_offset", DEFAULT_UTC_OFFSET))
    periods = _parse_periods(src, doc.get("periods", []), resolved, local)
    return Rules(
        source_name=src,
        profiles=MappingProxyType({p: MappingProxyType(v) for p, v in resolved.items()}),
        origin=MappingProxyType({p: MappingProxyType(v) for p, v in origin.items()}),
        periods=periods,
    )


def load_rules(path: str | Path) -> Rules:
    """Load and validate a TOML file of rule profiles and special periods.

    Parameters
    ----------
    path : str or pathlib.Path
        TOML with one ``[profiles.<name>]`` table per profile; ``ordinary`` and
        ``strict`` are required. A profile may name a parent with
        ``inherits = "<profile>"`` and override any of its values. Optional
        ``[[periods]]`` tables declare special periods, and ``utc_offset``
        (default ``"+08:00"``) the local time their naive date-times are in.

    Returns
    -------
    Rules
        The resolved profiles, where each value came from, and the periods.
        Every resolved profile holds every key of :data:`THRESHOLD_KEYS`.

    Raises
    ------
    geomon.errors.InputError
        Naming the file and the field path (``profiles.strict.confirm_s``,
        ``periods[1].overrides.buffer_m``) if the file is not TOML or breaks a
        rule below.

    Notes
    -----
    Defaults: the packaged ``geomon/rules/default.toml`` is the one source of
    every threshold's default. A profile's resolved values are built in three
    layers, each overriding the one before: (1) the packaged ``ordinary``
    profile's values (it sets every key of :data:`THRESHOLD_KEYS`), (2) the
    values of the profile's ``inherits`` chain in this file, root first, (3)
    the profile's own keys. So a file need only set what it changes; a key no
    profile of the chain sets has the packaged ``ordinary`` value (for every
    profile, ``strict`` too: a file's ``strict`` that does not inherit gets
    the packaged *ordinary* values for the keys it omits), and
    :attr:`Rules.origin` names its origin :data:`PACKAGED_ORIGIN`. A period's
    ``profile`` overrides a subject's values with the keys its chain sets in
    the file only (:meth:`Rules.file_values`).

    Value rules: every key is one of :data:`THRESHOLD_KEYS` (or ``inherits``,
    ``description`` in a profile); a number must be finite and non-negative
    and its key must end in a unit suffix (:data:`UNIT_SUFFIXES`) or be in
    :data:`UNITLESS_KEYS`; counts (``_count``, ``confirm_fixes``) are
    integers; probabilities (``_p``) lie in [0, 1]. Keys ending in
    ``_start``/``_end``/``_due`` hold a local time of day ``"HH:MM"`` (a TOML
    local time is also accepted).

    A period has ``name``, ``start``, ``end`` (``end`` after ``start``), a
    ``profile`` of this file and/or ``overrides`` (validated like profile
    values), and optionally ``offices``, ``subjects`` (non-empty lists) and
    ``description``. Two periods that overlap in time must have disjoint
    ``offices`` or disjoint ``subjects`` lists. Semantics: docs/rules.md and
    :mod:`geomon.rules.periods`.

    Inheritance only copies values: nothing checks that a special-period
    profile is stricter than its parent. Use :meth:`Rules.describe` to see the
    resolved thresholds and the profile each comes from.
    """
    src, doc = _read_toml(Path(path))
    return _parse_rules(src, doc, _packaged_defaults())


def _read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    src = str(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a byte-order mark (Windows editors) is skipped
    except FileNotFoundError:
        raise InputError(src, "no such file") from None
    except IsADirectoryError:
        raise InputError(src, "is a directory, not a TOML file") from None
    except UnicodeDecodeError:
        raise InputError(src, "not UTF-8 text") from None
    try:
        return src, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(src, f"not valid TOML: {exc}") from None
    except RecursionError:
        raise InputError(src, "not valid TOML: arrays or tables nested too deeply to parse") from None


@functools.lru_cache(maxsize=1)
def _packaged_defaults() -> Mapping[str, Any]:
    """The packaged ``ordinary`` profile's resolved values: the default of every key of :data:`THRESHOLD_KEYS`
    (which are that profile's keys)."""
    rules = _parse_rules(f"geomon/rules/{_PACKAGED_FILE}", _packaged_doc(), {})
    return MappingProxyType({k: v for k, v in rules.profile(_PACKAGED_BASE_PROFILE).items() if k != "description"})


def default_rules() -> Rules:
    """Load the rules shipped with geomon (``geomon/rules/default.toml``; no periods)."""
    with resources.as_file(resources.files("geomon.rules").joinpath(_PACKAGED_FILE)) as path:
        return load_rules(path)

