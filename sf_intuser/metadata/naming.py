"""Names of generated components: valid API names, transliterated, and unique.

A permission set's API name holds letters, digits and single underscores, starts with a letter,
does not end with an underscore and has at most 80 characters (Metadata API, PermissionSet
``fullName``; Salesforce Help "Create Permission Sets"). Letters outside ASCII are transliterated
(``Über`` -> ``Uber``, ``Straße`` -> ``Strasse``, Greek and Cyrillic letter by letter), never dropped.

Salesforce compares API names and profile names without regard to case, so two generated names
that differ only in case collide. :func:`allocate` gives every generated component a name no
other output of the run and nothing already in the output folder or the project holds:

- a name wanted by one source only, and free (or held by a file generated earlier from that same
  source, which is then replaced), is used as it is;
- otherwise each source that does not already own the name gets a stable alternative: the name
  with a short hash of the *source's own name* added (``Sales_Integration_3f2a_Intuser``), so the
  same inputs always give the same names, and a warning says which and why.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

_SPECIAL = {
    "ß": "ss", "ẞ": "SS", "Æ": "AE", "æ": "ae", "Ø": "O", "ø": "o", "Œ": "OE", "œ": "oe", "Ł": "L", "ł": "l",
    "Đ": "D", "đ": "d", "Ð": "D", "ð": "d", "Þ": "Th", "þ": "th", "ı": "i", "Ħ": "H", "ħ": "h", "Ŧ": "T",
    "ŧ": "t", "Ŋ": "N", "ŋ": "n", "ĸ": "k",
}
_GREEK = dict(zip("ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩαβγδεζηθικλμνξοπρσςτυφχψω",
                  ["A", "V", "G", "D", "E", "Z", "I", "Th", "I", "K", "L", "M", "N", "X", "O", "P", "R", "S", "T",
                   "Y", "F", "Ch", "Ps", "O", "a", "v", "g", "d", "e", "z", "i", "th", "i", "k", "l", "m", "n", "x",
                   "o", "p", "r", "s", "s", "t", "y", "f", "ch", "ps", "o"]))
_CYRILLIC = dict(zip("АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюяІіЇїЄєҐґ",
                     ["A", "B", "V", "G", "D", "E", "E", "Zh", "Z", "I", "Y", "K", "L", "M", "N", "O", "P", "R", "S",
                      "T", "U", "F", "Kh", "Ts", "Ch", "Sh", "Shch", "", "Y", "", "E", "Yu", "Ya",
                      "a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s",
                      "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya",
                      "I", "i", "Yi", "yi", "Ye", "ye", "G", "g"]))
_TABLE = {**_SPECIAL, **_GREEK, **_CYRILLIC}


def transliterate(text: str) -> str:
    """ASCII letters for ``text``: accents removed, ligatures and Greek/Cyrillic letters spelled out.
    Characters of other scripts are left as they are (the API name then treats them as separators)."""
    out = []
    for ch in unicodedata.normalize("NFKD", text):
        if ch.isascii():
            out.append(ch)
        elif unicodedata.category(ch) == "Mn":
            continue  # a combining accent: "U" + diaeresis -> "U"
        else:
            out.append(_TABLE.get(ch, ch))
    return "".join(out)


def short_hash(text: str, length: int = 4) -> str:
    import hashlib   # only needed when names collide

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def api_name(text_value: str, suffix: str = "", tag: str = "") -> str:
    """A valid permission set API name for ``text_value`` ending in ``suffix`` (at most 80 characters).

    ``tag`` (a short hash) goes between the name and the suffix. A name with no letters or digits
    left (another script) becomes ``X`` plus a hash of the name, so it stays distinct."""
    s = re.sub(r"[^A-Za-z0-9]+", "_", transliterate(text_value)).strip("_")
    if not s:
        s = "X" + short_hash(text_value, 6)
    elif not s[0].isalpha():
        s = "X_" + s
    tail = (f"_{tag}" if tag else "") + suffix
    return s[: 80 - len(tail)].rstrip("_") + tail


def profile_name(text_value: str, limit: int = 80) -> str:
    """A profile name whose Metadata API name is the name itself: ASCII letters, digits, spaces, ``-``
    and ``_`` only. Salesforce percent-encodes other characters in a profile's API name (``:`` as
    ``%3A``, ``.`` as ``%2E``: real projects' file names) [which ones exactly is U], so a generated
    profile keeps to these and its record, its file and its deploy all use one name. At most
    ``limit`` characters (a label of up to 255 is allowed; a long one is shortened with a hash)."""
    s = re.sub(r"[^A-Za-z0-9 _-]+", " ", transliterate(text_value))
    s = re.sub(r"\s+", " ", s).strip(" -_") or "X" + short_hash(text_value, 6)
    if len(s) > limit:
        s = s[: limit - 7].rstrip(" -_") + " " + short_hash(text_value, 6)
    return s


@dataclass(frozen=True)
class Request:
    """A generated component that needs a name."""

    type: str        # PermissionSet | Profile
    source: str      # who it is generated from, as its description says ("profile X", ...)
    base: str        # the name it should have
    alternate: Callable[[int], str]  # the name with a hash of the source of the given length


@dataclass(frozen=True)
class Existing:
    """A component of the same type and name already in the output folder or the project."""

    where: str               # the file, for messages
    source: str | None       # what it was generated from (its description), None if not generated


def allocate(requests: Iterable[Request],
             existing: Callable[[str, str], Existing | None] = lambda _t, _n: None
             ) -> tuple[dict[tuple[str, str], str], list[str]]:
    """Unique names: ``{(type, source): name}`` and the warnings that explain every renamed output."""
    reqs = list(requests)
    wanted: dict[tuple[str, str], list[Request]] = {}
    for r in reqs:
        wanted.setdefault((r.type, r.base.lower()), []).append(r)
    names: dict[tuple[str, str], str] = {}
    warnings: list[str] = []
    taken: set[tuple[str, str]] = set()
    renamed: list[tuple[Request, str]] = []
    for (type_name, _), group in sorted(wanted.items()):
        ex = existing(type_name, group[0].base)
        for r in sorted(group, key=lambda r: r.source):
            owns = ex is not None and ex.source == r.source
            if owns or (len(group) == 1 and ex is None):
                names[(r.type, r.source)] = r.base
                taken.add((r.type, r.base.lower()))
            elif len(group) > 1:
                others = ", ".join(o.source for o in group if o is not r)
                renamed.append((r, f"{r.source} and {others} would all become {r.type} {r.base}"))
            else:
                assert ex is not None
                held = f"generated from {ex.source}" if ex.source else "not generated by sf-intuser"
                renamed.append((r, f"{r.type} {r.base} already exists in {ex.where} ({held})"))
    for r, why in renamed:
        for length in (4, 8, 16, 64):
            alt = r.alternate(length)
            if (r.type, alt.lower()) not in taken and (r.type, alt.lower()) not in wanted and \
                    _free(existing(r.type, alt), r.source):
                break
        else:  # pragma: no cover - a 256-bit hash collision
            raise ValueError(f"no free name for {r.source}")
        names[(r.type, r.source)] = alt
        taken.add((r.type, alt.lower()))
        own = ("api-only-profile" if r.type == "Profile" else "permission-set")
        warnings.append(f"{why}: {r.source} gets {alt} instead (a stable name; to choose, give the user "
                        f"{own} in sf-intuser.toml [[users]]: README, sf-intuser.toml)")
    return names, warnings


def _free(ex: Existing | None, source: str) -> bool:
    return ex is None or ex.source == source


GENERATED_DESCRIPTION = re.compile(r"^Generated by sf-intuser(?: from (?P<kind>profile|permission set) (?P<name>.+?) "
                                   r"for the Salesforce Integration license|: API-only profile for (?P<first>.+?)"
                                   r"(?:, .*)?)$")


def source_of(description: str | None) -> str | None:
    """Who a generated component was made from, read back from its description; None if not generated."""
    m = GENERATED_DESCRIPTION.match((description or "").strip())
    if not m:
        return None
    if m.group("kind"):
        return f"{m.group('kind')} {m.group('name')}"
    return f"profile {m.group('first')}"


def existing_lookup(found: Mapping[tuple[str, str], Existing]) -> Callable[[str, str], Existing | None]:
    """An ``existing`` callable over a ``{(type, lower name): Existing}`` mapping."""
    return lambda type_name, name: found.get((type_name, name.lower()))


#: the longest file name a file system takes (NAME_MAX, bytes); a retrieve writes ``<API name>.profile``
FILE_NAME_LIMIT = 255


def retrievable(profile_api_name: str) -> bool:
    """Whether sf can write the profile's file: Salesforce allows long profile names (and encoding makes
    them longer), but a retrieve of one whose ``<name>.profile`` is over 255 bytes fails as a whole with
    ENAMETOOLONG. Such profiles are left out of the retrieve and their users blocked, naming the fix."""
    return len(f"{profile_api_name}.profile".encode("utf-8")) <= FILE_NAME_LIMIT


def too_long_blocker(label: str, api: str) -> tuple[str, str]:
    """The problem and the fix for a user on a profile :func:`retrievable` refuses."""
    return (f"the profile {label[:60]!r}... has a Metadata API name of {len(api.encode('utf-8'))} bytes: its file "
            f"name would be longer than the {FILE_NAME_LIMIT} bytes a file system allows, so sf can't retrieve it",
            "Rename the profile in Setup to a shorter name (under about 200 characters), then plan again")
