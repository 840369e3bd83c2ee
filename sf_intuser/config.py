"""``sf-intuser.toml``: the users to move, per-user overrides, discovery settings and prices.

Found in the SFDX project root (the folder holding ``sfdx-project.json`` above the working folder),
else in the working folder, or given with ``--config``. Every key is checked; a mistake is reported
with the key and its line, e.g. ``sf-intuser.toml line 12: users[1].keep: ...``::

    [discover]
    days = 90                                  # the login window
    api-login-types = ["Remote Access 2.0", "Other Apex API", "Partner Product"]
    people-apps = ["Salesforce for iOS", "Salesforce for Android"]   # replaces the built-in list

    [prices]                                   # USD per user per month, by user license
    "Salesforce" = 150
    "Salesforce Integration" = 10

    [[users]]
    username = "middleware@acme.com"
    permission-set = "Middleware_Access"       # name of the set made from its profile
    keep = ["Sync_Reader"]                     # carry only these of its permission sets and groups
    # drop = ["Legacy_Export"]                 # or (instead of keep): carry all but these
    add-ip-ranges = ["203.0.113.0-203.0.113.255"]   # on its API-only profile (one address: "203.0.113.7")
    # api-only-profile = "Integration API Only"   # move it to this existing profile of the Salesforce
    #                                            # Integration license instead of one sf-intuser chooses
"""

from __future__ import annotations

import ipaddress
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (the tomli wheel, pyproject.toml)
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

FILE_NAME = "sf-intuser.toml"
#: the highest price a [prices] entry may name (USD a user a month): above any list price
MAX_PRICE = 10_000
#: the widest login IP range add-ip-ranges takes: a /8 of IPv4 (16,777,216 addresses), a /32 of IPv6.
#: sf-intuser's own limit, not Salesforce's: a wider range on an API-only profile restricts nothing
MAX_RANGE_ADDRESSES = {4: 2 ** 24, 6: 2 ** 96}
_API_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*$")


class ConfigError(ValueError):
    """A problem in the config file; the message names the file, the line and the key."""


@dataclass(frozen=True)
class IpRange:
    start: str
    end: str
    description: str = ""


@dataclass
class UserConfig:
    username: str
    permission_set: str | None = None
    keep: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()
    add_ip_ranges: tuple[IpRange, ...] = ()
    api_only_profile: str | None = None
    keep_access: tuple[str, ...] = ()      # objects and user permissions tighten never narrows


@dataclass
class Config:
    path: Path | None = None
    days: int | None = None
    api_login_types: tuple[str, ...] | None = None
    people_apps: tuple[str, ...] | None = None
    prices: dict[str, float] = field(default_factory=dict)
    users: list[UserConfig] = field(default_factory=list)
    tighten_days: int | None = None
    tighten_keep: tuple[str, ...] = ()

    def user(self, username: str) -> UserConfig | None:
        return next((u for u in self.users if u.username.lower() == username.lower()), None)


def find(start: Path | None = None) -> Path | None:
    """The config file that applies in ``start`` (default: the working folder), or None."""
    from sf_intuser.workspace import find_project

    here = (start or Path.cwd()).resolve()
    project = find_project(here)
    for folder in ([project] if project else []) + [here]:
        candidate = folder / FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def load(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc}). Check the path given with --config") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text. Save it as UTF-8") from None
    return parse(text, path)


def parse(text: str, path: Path | None = None) -> Config:
    shown = str(path) if path else FILE_NAME
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{shown}: not valid TOML: {exc}. Fix the line it names") from None
    lines = _Lines(text, shown)
    cfg = Config(path=path)
    lines.only(data, (), {"discover", "prices", "users", "tighten"})
    tight = data.get("tighten", {})
    if not isinstance(tight, dict):
        raise lines.error(("tighten",), "must be a table: [tighten]")
    lines.only(tight, ("tighten",), {"days", "keep-access"})
    if "days" in tight:
        d = tight["days"]
        if not isinstance(d, int) or isinstance(d, bool) or not 1 <= d <= 365:
            raise lines.error(("tighten", "days"), "must be a whole number of days from 1 to 365")
        cfg.tighten_days = d
    if "keep-access" in tight:
        cfg.tighten_keep = lines.strings(tight["keep-access"], ("tighten", "keep-access"))
    disc = data.get("discover", {})
    if not isinstance(disc, dict):
        raise lines.error(("discover",), "must be a table: [discover]")
    lines.only(disc, ("discover",), {"days", "api-login-types", "people-apps"})
    if "days" in disc:
        d = disc["days"]
        if not isinstance(d, int) or isinstance(d, bool) or not 1 <= d <= 180:
            raise lines.error(("discover", "days"), "must be a whole number of days from 1 to 180 (LoginHistory "
                                                    "keeps six months)")
        cfg.days = d
    for key, attr in (("api-login-types", "api_login_types"), ("people-apps", "people_apps")):
        if key in disc:
            setattr(cfg, attr, lines.strings(disc[key], ("discover", key)))
    prices = data.get("prices", {})
    if not isinstance(prices, dict):
        raise lines.error(("prices",), "must be a table: [prices] with \"License Name\" = dollars per user per month")
    for name, value in prices.items():
        # nan and inf are valid TOML floats; a price beyond any list price is a typo (1e308 overflows sums)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                or not 0 <= value <= MAX_PRICE:
            raise lines.error(("prices", name), f"must be a price in dollars per user per month from 0 to "
                                                f"{MAX_PRICE:,}, e.g. 150")
        cfg.prices[name] = float(value)
    users = data.get("users", [])
    if not isinstance(users, list):
        raise lines.error(("users",), "must be an array of tables: [[users]] with username = \"...\"")
    seen: dict[str, int] = {}
    names: dict[str, int] = {}
    for i, u in enumerate(users):
        where = ("users", i)
        if not isinstance(u, dict):
            raise lines.error(where, "must be a table: [[users]]")
        lines.only(u, where, {"username", "permission-set", "keep", "drop", "add-ip-ranges", "api-only-profile",
                              "keep-access"})
        name = u.get("username")
        if not isinstance(name, str) or "@" not in name:
            raise lines.error((*where, "username"), "is required: the Salesforce username, e.g. \"etl@acme.com\"")
        if name.lower() in seen:
            raise lines.error((*where, "username"), f"{name} is listed twice (also users[{seen[name.lower()]}]); "
                                                    "keep one entry")
        seen[name.lower()] = i
        uc = UserConfig(name)
        ps = u.get("permission-set")
        if ps is not None:
            if not isinstance(ps, str) or not _API_NAME.match(ps) or len(ps) > 80 or ps.endswith("_"):
                raise lines.error((*where, "permission-set"), "must be a permission set API name: a letter, then "
                                  "letters, digits and single underscores, at most 80 characters")
            if ps.lower() in names:
                raise lines.error((*where, "permission-set"), f"{ps} is also the name given for users[{names[ps.lower()]}]:"
                                  " one generated permission set never serves two profiles; choose another name")
            names[ps.lower()] = i
            uc.permission_set = ps
        if "keep" in u and "drop" in u:
            raise lines.error((*where, "drop"), "keep and drop are one or the other: keep lists all that is carried, "
                                                "drop all that is not; remove one of them")
        if "keep" in u:
            uc.keep = lines.strings(u["keep"], (*where, "keep"))
        if "drop" in u:
            uc.drop = lines.strings(u["drop"], (*where, "drop"))
        if "add-ip-ranges" in u:
            raw = u["add-ip-ranges"]
            if not isinstance(raw, list):
                raise lines.error((*where, "add-ip-ranges"), "must be a list such as [\"203.0.113.0-203.0.113.255\"]")
            uc.add_ip_ranges = tuple(_ip_range(v, lines, (*where, "add-ip-ranges")) for v in raw)
        if "api-only-profile" in u:
            prof = u["api-only-profile"]
            if not isinstance(prof, str) or not prof.strip() or len(prof) > 255:
                raise lines.error((*where, "api-only-profile"), "must be the name of a profile of the Salesforce "
                                  "Integration license, e.g. \"Minimum Access - API Only Integrations\"")
            if "add-ip-ranges" in u:
                raise lines.error((*where, "add-ip-ranges"), "add-ip-ranges goes on a profile sf-intuser makes; with "
                                  "api-only-profile the user takes that profile's login ranges: remove one of them")
            uc.api_only_profile = prof.strip()
        if "keep-access" in u:
            uc.keep_access = lines.strings(u["keep-access"], (*where, "keep-access"))
        cfg.users.append(uc)
    return cfg


def _ip_range(value: Any, lines: "_Lines", where: tuple[Any, ...]) -> IpRange:
    desc = ""
    if isinstance(value, dict):
        lines.only(value, where, {"start", "end", "description"})
        start, end, desc = value.get("start"), value.get("end", value.get("start")), value.get("description", "")
    elif isinstance(value, str):
        start, _, end = value.partition("-")
        end = end or start
    else:
        raise lines.error(where, "each range is \"START-END\", one address, or {start = ..., end = ...}")
    try:
        a, b = ipaddress.ip_address(str(start).strip()), ipaddress.ip_address(str(end).strip())
    except ValueError:
        raise lines.error(where, f"{value!r} is not an IP address range such as \"203.0.113.0-203.0.113.255\"") from None
    if a.version != b.version or int(a) > int(b):
        raise lines.error(where, f"{value!r}: the start must not come after the end (and both of one IP version)")
    size = int(b) - int(a) + 1
    if size > MAX_RANGE_ADDRESSES[a.version]:
        raise lines.error(where, f"{value!r} covers {size:,} addresses: a login IP range on an API-only profile is "
                                 "there to say where the integration logs in from, and this one lets it in from "
                                 "almost anywhere; list the integration's own addresses")
    return IpRange(str(a), str(b), str(desc or ""))


class _Lines:
    """Finds the line a key was written on, for messages."""

    def __init__(self, text: str, shown: str) -> None:
        self.lines = text.splitlines()
        self.shown = shown

    def line_of(self, path: tuple[Any, ...]) -> int | None:
        start, end = 0, len(self.lines)
        table = [p for p in path if isinstance(p, str)]
        index = next((p for p in path if isinstance(p, int)), None)
        key = path[-1] if path and isinstance(path[-1], str) and len(table) > 1 else None
        header = table[0] if table else None
        if header is not None:
            pat = re.compile(r"^\s*\[\[?\s*\"?" + re.escape(header) + r"\"?\s*\]\]?\s*(#.*)?$")
            hits = [i for i, ln in enumerate(self.lines) if pat.match(ln)]
            if hits:
                pick = hits[min(index or 0, len(hits) - 1)]
                start = pick
                nxt = [i for i in range(pick + 1, len(self.lines)) if re.match(r"^\s*\[", self.lines[i])]
                end = nxt[0] if nxt else len(self.lines)
                if key is None:
                    return pick + 1
            elif key is None:
                pat = re.compile(r"^\s*\"?" + re.escape(header) + r"\"?\s*=")
                return next((i + 1 for i, ln in enumerate(self.lines) if pat.match(ln)), None)
        if key is not None:
            pat = re.compile(r"^\s*(\"" + re.escape(key) + r"\"|" + re.escape(key) + r")\s*=")
            for i in range(start, end):
                if pat.match(self.lines[i]):
                    return i + 1
        return start + 1 if header else None

    def error(self, path: tuple[Any, ...], problem: str) -> ConfigError:
        line = self.line_of(path)
        name = ""
        for p in path:
            name += f"[{p}]" if isinstance(p, int) else (f".{p}" if name else p)
        where = f"{self.shown} line {line}" if line else self.shown
        return ConfigError(f"{where}: {name}: {problem}")

    def only(self, table: dict[str, Any], where: tuple[Any, ...], allowed: set[str]) -> None:
        for k in table:
            if k not in allowed:
                raise self.error((*where, k), f"unknown key; expected one of {', '.join(sorted(allowed))}")

    def strings(self, value: Any, where: tuple[Any, ...]) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(where, "must be a list of names, e.g. [\"A\", \"B\"]")
        return tuple(value)
