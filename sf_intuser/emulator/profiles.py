"""Profile names as a real org holds them: a label (SOQL ``Profile.Name``, translated for the reader)
and a Metadata API name (``fullName``, the file name of a retrieve).

Sources:

- Standard profiles have API names of their own. salesforce.stackexchange.com q 113370 lists the
  Enterprise Edition mapping read from the Tooling API's ``FullName`` and a change set: System
  Administrator = ``Admin``, Standard User = ``Standard``, Read Only = ``ReadOnly``, Solution Manager
  = ``SolutionManager``, Marketing User = ``MarketingProfile``, Contract Manager = ``ContractManager``,
  Standard Platform User = ``StandardAul``; the others keep their name (External Identity User,
  Customer Community User, ...). A retrieve by label answers "Entity of type 'Profile' named 'System
  Administrator' cannot be found" (same question). Real projects hold ``Admin.profile-meta.xml``
  (shared corpus: 10 files).
- Custom profile API names are percent-encoded where the name holds certain characters: ``:`` as
  ``%3A`` (``Custom%3A Marketing Profile``), ``.`` as ``%2E`` (``Force%2Ecom - Free User``), ``'`` as
  ``%27`` and ``,`` as ``%2C`` (corpus: ``Appirio EM%27s%2C CP%27s ...profile``), while spaces and
  ``-`` stay (``MOHCD - Leasing Agent``). Which other characters are encoded is [U]: here every
  character but ASCII letters, digits, space, ``-`` and ``_`` is, byte by byte in UTF-8; the tool
  never encodes a name itself, it takes the API name the org lists (``listMetadata``).
- ``Profile.Name`` of a standard profile is shown in the reading user's language: Salesforce KB
  000317298 (Japanese: システム管理者, 標準ユーザー, ソリューション管理者, 参照のみ,
  マーケティングユーザー, 契約 管理者) and salesforce.stackexchange.com q 156802 (French:
  "Administrateur système"). The other French labels are the Salesforce French UI's [I]. Whether
  "Minimum Access - API Only Integrations" is translated is [U]: it is not, here, and the tool finds
  it by its API name either way.
"""

from __future__ import annotations

from urllib.parse import unquote

#: label (English) -> Metadata API name, Enterprise Edition (salesforce.stackexchange q 113370)
STANDARD_API_NAMES: dict[str, str] = {
    "System Administrator": "Admin",
    "Standard User": "Standard",
    "Read Only": "ReadOnly",
    "Solution Manager": "SolutionManager",
    "Marketing User": "MarketingProfile",
    "Contract Manager": "ContractManager",
    "Standard Platform User": "StandardAul",
}
_STANDARD_LABELS = {v: k for k, v in STANDARD_API_NAMES.items()}

#: language -> English label -> label shown to a reader of that language
TRANSLATIONS: dict[str, dict[str, str]] = {
    # Salesforce KB 000317298 [V]
    "ja": {"System Administrator": "システム管理者", "Standard User": "標準ユーザー",
           "Solution Manager": "ソリューション管理者", "Read Only": "参照のみ",
           "Marketing User": "マーケティングユーザー", "Contract Manager": "契約 管理者"},
    # q 156802 for System Administrator [V-3P]; the rest as the French UI shows them [I]
    "fr": {"System Administrator": "Administrateur système", "Standard User": "Utilisateur standard",
           "Solution Manager": "Responsable des solutions", "Read Only": "Lecture seule",
           "Marketing User": "Utilisateur marketing", "Contract Manager": "Gestionnaire de contrats",
           "Standard Platform User": "Utilisateur standard de plate-forme"},
}
LANGUAGES = ("en_US", *sorted(TRANSLATIONS))

_KEEP = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_")


def encode(label: str) -> str:
    """The API name Salesforce gives a custom profile called ``label`` (see the module's sources)."""
    return "".join(ch if ch in _KEEP else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in label)


def api_name(label: str) -> str:
    return STANDARD_API_NAMES.get(label) or encode(label)


def label_of(api: str) -> str:
    """The (English) label of the profile whose API name is ``api``."""
    return _STANDARD_LABELS.get(api) or unquote(api)


def translated(label: str, language: str) -> str:
    return TRANSLATIONS.get(language.split("_")[0], {}).get(label, label)
