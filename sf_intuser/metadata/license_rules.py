"""What the Salesforce Integration user license allows: the rules as data, each with its source.

Status codes follow docs/salesforce-facts.md: ``V`` official Salesforce source, ``V-3P`` third
party, ``I`` our inference, ``U`` unknown. Every rewrite consults these tables and nothing else, so a
rule is changed in one place and every report names the rule and its source.

Where the facts are unknown ([U]) the table takes the careful side: a permission not listed here
is *kept* (it was granted before, and dropping it silently could break the integration) and
reported as a warning asking the admin to confirm it; a permission set license not known to be
available to integration users is treated as blocking until the org says otherwise
(``PermissionSetLicense.IsAvailableForIntegrations``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Callable, ItemsView, Iterable, Iterator, Mapping, ValuesView

INTEGRATION_USER_LICENSE = "Salesforce Integration"
INTEGRATION_PSL = "SalesforceAPIIntegrationPsl"
INTEGRATION_PSL_LABEL = "Salesforce API Integration"
STANDARD_API_PROFILE = "Minimum Access - API Only Integrations"
LEGACY_API_PROFILE = "Salesforce API Only System Integrations"

HELP_INTEGRATION_USER = "https://help.salesforce.com/s/articleView?id=platform.integration_user.htm"
KB_HEALTH_CLOUD = "https://help.salesforce.com/s/articleView?id=005385054"
PSA_DOC = ("https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/"
           "sforce_api_objects_permissionsetassignment.htm")


@dataclass(frozen=True)
class Rule:
    id: str
    action: str  # "keep" | "drop" | "warn"
    reason: str
    source: str
    status: str  # V | V-3P | I | U


# --- user permissions -------------------------------------------------------------------------

_PROFILE_ONLY = Rule(
    "profile-only",
    "drop",
    "set by the API-only profile (API Only cannot be turned off there); a permission set does not carry it",
    HELP_INTEGRATION_USER,
    "V",
)
#: sources conflict [U]: devops-center issue 290 reports "license doesn't allow FreezeUsers" for integration
#: contexts, while a real org's retrieved set bound to SalesforceAPIIntegrationPsl holds it enabled
#: (Epic-ATS/NightlyBackup TwoCloudNineIntegrationUser.permissionset-meta.xml). The planner leaves it out of
#: what it generates (never more than needed; an assignment refused for it is amended anyway); lint warns.
_NOT_ALLOWED_FREEZE = Rule(
    "license-conflict",
    "drop",
    "sources conflict on whether the Salesforce Integration license allows it: a deploy error \"license doesn't "
    "allow FreezeUsers\" (devops-center issue 290) against a real org's set on the Salesforce API Integration "
    "PSL holding it (Epic-ATS/NightlyBackup TwoCloudNineIntegrationUser)",
    "https://github.com/forcedotcom/devops-center/issues/290; Epic-ATS/NightlyBackup "
    "TwoCloudNineIntegrationUser.permissionset-meta.xml",
    "U",
)
_UI_ONLY = Rule(
    "ui-only",
    "drop",
    "only affects the Salesforce UI, which API-only users cannot log in to",
    HELP_INTEGRATION_USER,
    "I",
)
_API_ALLOWED = Rule(
    "psl-allowed",
    "keep",
    "seen granted to integration users through a permission set with the Salesforce API Integration PSL",
    "Epic-ATS/NightlyBackup TwoCloudNineIntegrationUser.permissionset-meta.xml; "
    "salesforce.stackexchange.com q 413777",
    "V-3P",
)
_API_PROFILE = Rule(
    "api-profile",
    "keep",
    "granted by the standard Minimum Access - API Only Integrations profile",
    "retrieved Minimum Access - API Only Integrations profiles of four real orgs (Integration-User/Salesforce, GSA/SF_WorkSpace, ...)",  # noqa: E501
    "V-3P",
)
_AUTHOR_APEX = Rule(
    "psl-allowed",
    "keep",
    "hidden on the API-only profile but grantable through a license-less permission set",
    "Omnata docs (docs/salesforce-facts.md A2)",
    "V-3P",
)
_DATA_API = Rule(
    "api-usable",
    "keep",
    "data or setup access usable over the API; expected to be allowed with the Salesforce API Integration PSL",
    "docs/salesforce-facts.md A1 (the PSL grants many System Administrator permissions)",
    "I",
)
_PKG_LICENSES = Rule(
    "psl-quirk",
    "warn",
    "kept, but not retrieved for permission sets on the Salesforce API Integration license; check it after deploy",
    "https://github.com/forcedotcom/cli/issues/2578",
    "V-3P",
)

USER_PERMISSION_RULES: Mapping[str, Rule] = {
    "ApiUserOnly": _PROFILE_ONLY,
    "FreezeUsers": _NOT_ALLOWED_FREEZE,
    "ManagePackageLicenses": _PKG_LICENSES,
    "ApiEnabled": _API_PROFILE,
    "ChatterInternalUser": _API_PROFILE,
    "AuthorApex": _AUTHOR_APEX,
    **{
        name: _API_ALLOWED
        for name in (
            "ModifyAllData", "ViewAllData", "ModifyMetadata", "CustomizeApplication", "ManageUsers",
            "AssignPermissionSets", "PasswordNeverExpires",
        )
    },
    **{
        name: _DATA_API
        for name in (
            "ApexRestServices", "ViewSetup", "ViewAllUsers", "ViewAllProfiles", "ViewRoles", "ViewDeveloperName",
            "QueryAllFiles", "ViewEventLogFiles", "ViewPlatformEvents", "ScheduleJob", "RunFlow", "DataExport",
            "ManageDataIntegrations", "ManageInternalUsers", "ManageProfilesPermissionsets", "ManageRoles",
            "ManageSharing", "ManageCustomPermissions", "ManageTranslation", "ManageCategories",
            "ManageDataCategories", "ViewDataCategories", "ManageCases", "ManageLeads", "ManageSolutions",
            "ManageKnowledge", "EditKnowledge", "ConvertLeads", "ImportLeads", "ImportCustomObjects",
            "TransferAnyEntity", "TransferAnyLead", "TransferAnyCase", "ActivateContract", "ActivateOrder",
            "EditActivatedOrders", "EditReadonlyFields", "EditTask", "EditEvent", "ActivitiesAccess",
            "ViewAllActivities", "UpdateWithInactiveOwner", "CreateAuditFields", "EmailSingle", "EmailMass",
            "SendCustomNotifications", "RunReports", "ExportReport", "ViewEncryptedData", "ManageIpAddresses",
            "ManageRemoteAccess", "ManageAuthProviders", "ManageCertificates", "ManagePasswordPolicies",
            "ManageLoginAccessPolicies", "MonitorLoginHistory", "ResetPasswords", "ManageSandboxes",
            "ViewHealthCheck", "ViewProductLimits", "ManageFilesAndAttachments", "ChatterFileLink",
            "ContentWorkspaces", "AllowUniversalSearch", "ViewUserPII", "PrivacyDataAccess",
            "ManageCustomReportTypes", "ManageReportsInPubFolders", "ManageDashbdsInPubFolders",
            "ManageDashboards", "EditPublicReports", "ViewPublicReports", "ViewPublicDashboards",
            "CreateCustomizeReports", "CreateCustomizeDashboards", "EditMyReports", "EditMyDashboards",
            "InstallPackaging", "CreatePackaging", "ManageCustomDomains", "RetainFieldHistory",
            "ExternalClientAppViewer", "ExternalClientAppAdmin", "ExternalClientAppDeveloper",
            "ViewClientSecret", "ClientSecretRotation", "ViewApiNamedQueries", "ManageApiNamedQueries",
            "DecisionTableExecUserAccess", "ManageReleaseUpdates", "ViewFlowUsageAndFlowEventData",
            "ViewConsumption", "ViewLicenseUtilization",
        )
    },
    **{
        name: _UI_ONLY
        for name in (
            "LightningExperienceUser", "LightningConsoleAllowedForUser", "AllowLightningLogin", "ViewHelpLink",
            "ShowCompanyNameAsUserBadge", "ViewGlobalHeader", "EnableCommunityAppLauncher",
            "EnableNotifications", "MassInlineEdit", "CanUseNewDashboardBuilder", "NewReportBuilder",
            "CreateReportInLightning", "ChangeDashboardColors", "HideReadByList", "UseTeamReassignWizards",
            "BypassMFAForUiLogins", "SelectFilesFromSalesforce", "ViewPersonalOrg", "UseWebLink",
        )
    },
}

UNKNOWN_PERMISSION = Rule(
    "unknown",
    "warn",
    "not in sf-intuser's rules table: kept; if the license refuses it, the deploy or assignment fails with "
    "\"The user license doesn't allow the permission\" and the permission must be removed",
    "docs/salesforce-facts.md A7 question 6 (which permissions fail is unknown)",
    "U",
)


def user_permission_rule(name: str) -> Rule:
    return USER_PERMISSION_RULES.get(name, UNKNOWN_PERMISSION)


# --- dependencies between user permissions -------------------------------------------------------


@dataclass(frozen=True)
class Dependency:
    permission: str
    requires: tuple[str, ...]
    source: str
    status: str


def _data(name: str) -> dict[str, Any]:
    with resources.files("sf_intuser.metadata").joinpath(f"data/{name}").open("rb") as fh:
        data: dict[str, Any] = json.load(fh)
        return data


@lru_cache(maxsize=1)
def _dependencies() -> dict[str, Dependency]:
    return {d["permission"]: Dependency(d["permission"], tuple(d["requires"]), d["source"], d["status"])
            for d in _data("permission_dependencies.json")["dependencies"]}


class _Lazy(dict):  # type: ignore[type-arg]  # keys and values as the loader gives them
    """A mapping filled from package data on first use (keeps ``import`` cheap)."""

    def __init__(self, load: Callable[[], Mapping[Any, Any]]) -> None:
        super().__init__()
        self._load: Callable[[], Mapping[Any, Any]] | None = load

    def _fill(self) -> None:
        if self._load is not None:
            load, self._load = self._load, None
            self.update(load())

    def __getitem__(self, key: Any) -> Any:
        self._fill()
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._fill()
        return super().get(key, default)

    def __iter__(self) -> Iterator[Any]:
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def __contains__(self, key: object) -> bool:
        self._fill()
        return super().__contains__(key)

    def values(self) -> ValuesView[Any]:  # type: ignore[override]
        self._fill()
        return super().values()

    def items(self) -> ItemsView[Any, Any]:  # type: ignore[override]
        self._fill()
        return super().items()


#: permission -> what Salesforce requires with it (data/permission_dependencies.json, each with its source)
PERMISSION_DEPENDENCIES: Mapping[str, Dependency] = _Lazy(_dependencies)


@lru_cache(maxsize=1)
def object_dependencies() -> dict[str, tuple[str, ...]]:
    """Object permission flag -> the flags of the same object it requires (ObjectPermissions reference)."""
    return {k: tuple(v) for k, v in _data("permission_dependencies.json")["object_dependencies"]["requires"].items()}


@lru_cache(maxsize=1)
def known_user_permissions() -> frozenset[str]:
    """User permission names known to exist (data/user_permissions.json)."""
    return frozenset(_data("user_permissions.json")["names"])


def plan_user_permissions(enabled: Iterable[str], refused: Mapping[str, Rule] | None = None) -> dict[str, Rule]:
    """The rule for each of ``enabled``, decided together so the result deploys and widens nothing.

    Each permission gets its rule (:func:`user_permission_rule`; ``refused`` overrides with what the
    org refuses). Then, because Salesforce refuses a set that breaks a dependency
    (:data:`PERMISSION_DEPENDENCIES`): a kept permission whose requirement is dropped or was never
    granted is dropped too, repeatedly; and a permission dropped only for being UI-only comes back
    when a kept permission requires it (harmless for an API user, and the alternative is losing the
    permission that needs it). Nothing is ever added that was not granted."""
    rules = {p: (refused or {}).get(p) or user_permission_rule(p) for p in enabled}
    soft = {p for p, r in rules.items() if r.action == "drop" and r.id == _UI_ONLY.id}
    available = {p for p, r in rules.items() if r.action != "drop"} | soft
    changed = True
    while changed:
        changed = False
        for p in sorted(available):
            dep = PERMISSION_DEPENDENCIES.get(p)
            missing = [r for r in dep.requires if r not in available] if dep else []
            if missing and dep is not None:
                held = [m for m in missing if m in rules]
                why = (f"requires {', '.join(missing)}, which "
                       + ("is" if len(missing) == 1 else "are")
                       + (" dropped" if len(held) == len(missing) else " not granted by the source" if not held
                          else " dropped or not granted")
                       + "; Salesforce refuses a set that breaks a dependency")
                rules[p] = Rule("dependency", "drop", why, dep.source, dep.status)
                available.discard(p)
                soft.discard(p)
                changed = True
    kept = available - soft
    frontier = list(kept)
    while frontier:   # UI-only permissions a kept one requires come back, transitively
        p = frontier.pop()
        dep = PERMISSION_DEPENDENCIES.get(p)
        if dep is None:
            continue
        for r in dep.requires:
            if r in soft:
                soft.discard(r)
                rules[r] = Rule("required", "keep", f"only affects the UI, but {p} requires it", dep.source,
                                dep.status)
                frontier.append(r)
    return rules


#: user permissions the Salesforce Integration license itself grants (the standard API-only profile's;
#: docs/salesforce-facts.md A1): never refused on account of the permission set license's maximum
LICENSE_GRANTED = frozenset({"ApiEnabled", "ApiUserOnly", "ChatterInternalUser"})


class OrgRefusals(Mapping[str, Rule]):
    """The user permissions an org refuses for a Salesforce Integration user, for
    :func:`plan_user_permissions`: those the org does not know (``known``: the ``Permissions<X>``
    fields of its PermissionSet describe, as sfprofiles reads them) and those the Salesforce API
    Integration permission set license does not allow (``maximum``:
    ``PermissionSetLicense.MaximumPermissions<X>`` read from the org). Either may be None (not read):
    then nothing is refused on that count."""

    def __init__(self, known: Iterable[str] | None, maximum: Mapping[str, bool] | None) -> None:
        self.known = None if known is None else frozenset(known)
        self.maximum = dict(maximum or {})

    def get(self, name: str, default: Rule | None = None) -> Rule | None:  # type: ignore[override]
        if self.known is not None and name not in self.known:
            return Rule("unknown-in-org", "drop", "this org does not know the permission (no PermissionSet field "
                        f"Permissions{name} in its describe); a deploy naming it fails with \"Unknown user "
                        "permission\"", "describe of PermissionSet in the org; sfprofiles reconcile", "V-3P")
        if name not in LICENSE_GRANTED and self.maximum.get(name) is False:
            return Rule("psl-maximum", "drop", "the Salesforce API Integration permission set license does not allow "
                        f"it in this org (PermissionSetLicense.MaximumPermissions{name} is false), so an integration "
                        "user cannot hold it", "PermissionSetLicense object reference; read from the org", "V")
        return default

    def __getitem__(self, name: str) -> Rule:
        rule = self.get(name)
        if rule is None:
            raise KeyError(name)
        return rule

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(p for p, ok in self.maximum.items() if ok is False and p not in LICENSE_GRANTED))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:   # ``refused or {}`` must not count the whole map each time
        return True


# --- profile sections -------------------------------------------------------------------------

#: Profile sections a permission set cannot hold (shane-sfdx-plugins convert.ts, texei
#: skinnyProfileHelper.ts; docs/salesforce-facts.md A4 "Profile -> PermissionSet mapping").
PROFILE_ONLY_SECTIONS: Mapping[str, str] = {
    "layoutAssignments": "page layouts are assigned by profile only",
    "loginIpRanges": "login IP ranges live on the profile, not in a permission set (see the API-only profile the "
                     "users move to)",
    "loginHours": "login hours live on the profile, not in a permission set (see the API-only profile the users "
                  "move to)",
    "loginFlows": "login flows are assigned by profile only; API logins do not run them",
    "custom": "profile attribute",
    "userLicense": "the new profile is on the Salesforce Integration license; a license is never copied to a permission set",
    "categoryGroupVisibilities": "data category visibility is assigned by profile only",
    "profileActionOverrides": "action overrides are UI-only and profile-only",
    "description": "profile attribute; the permission set gets its own description",
    "fullName": "file name carries it",
    "module": "not used by a permission set",
}

#: Standard objects need the Salesforce API Integration PSL as well as a permission (help article).
STANDARD_OBJECT_NOTE = Rule(
    "needs-psl",
    "warn",
    "standard-object access for a Salesforce Integration user also needs the Salesforce API Integration "
    "permission set license (SalesforceAPIIntegrationPsl) on the user",
    HELP_INTEGRATION_USER,
    "V",
)


# --- licenses named in <license> --------------------------------------------------------------

#: User licenses (UserLicense.Name) seen in retrieved metadata and the Salesforce license list.
KNOWN_USER_LICENSES = frozenset({
    "Salesforce", "Salesforce Platform", "Force.com - App Subscription", "Force.com - Free",
    "Salesforce Integration", "Cloud Integration User", "Sales Insights Integration User",
    "B2BMA Integration User", "Analytics Cloud Integration User", "Customer Community Login",
    "Customer Community", "Customer Community Plus", "Customer Community Plus Login", "Partner Community",
    "Partner Community Login", "Guest User License", "Chatter Free", "Chatter External", "Identity",
    "External Identity", "Work.com Only", "Company Communities", "Lightning Platform Starter",
})


@dataclass(frozen=True)
class LicenseVerdict:
    verdict: str  # "assignable" | "needs-rewrite" | "blocked"
    reason: str
    source: str
    status: str


_PSL_RULES: tuple[tuple[str, LicenseVerdict], ...] = (
    ("HealthCloud", LicenseVerdict(
        "blocked",
        "Health Cloud permission set licenses can't be assigned to Salesforce Integration users (Spring '26)",
        KB_HEALTH_CLOUD, "V")),
    ("SalesforceCPQ", LicenseVerdict(
        "blocked",
        "CPQ needs its own CPQ-license permission set without app or system permissions; "
        "a look-alike CPQ license does not work for integration users",
        "infocynic gist (docs/salesforce-facts.md A2)", "V-3P")),
)


def classify_license(
    license_name: str | None,
    name: str = "",
    *,
    user_licenses: frozenset[str] | None = None,
    psl_available: Mapping[str, bool] | None = None,
) -> LicenseVerdict:
    """Can a permission set bound to ``license_name`` be assigned to a Salesforce Integration user?

    ``user_licenses`` (UserLicense names) and ``psl_available``
    (PermissionSetLicense DeveloperName -> IsAvailableForIntegrations) come from the org when known.
    """
    if name.startswith("sfdcInternalInt__"):
        return LicenseVerdict(
            "blocked",
            "Salesforce-internal Data Cloud permission set (Cloud Integration User), not for integration users",
            "Salesforce KB 001233479", "V")
    if not license_name:
        return LicenseVerdict("assignable", "license-less permission set", PSA_DOC, "V")
    if license_name == INTEGRATION_PSL:
        return LicenseVerdict(
            "assignable", "bound to the Salesforce API Integration PSL (assigned on the way when a seat is free)",
            HELP_INTEGRATION_USER, "V")
    if license_name == INTEGRATION_USER_LICENSE:
        return LicenseVerdict(
            "assignable", "bound to the Salesforce Integration user license; it cannot grant standard objects",
            "goravseth.com; elevation.solutions (docs/salesforce-facts.md A2)", "V-3P")
    licenses = KNOWN_USER_LICENSES | (user_licenses or frozenset())
    if license_name in licenses:
        return LicenseVerdict(
            "needs-rewrite",
            f"bound to the {license_name!r} user license; a permission set's user license must match the user's",
            PSA_DOC, "V")
    if psl_available is not None and license_name in psl_available:
        if psl_available[license_name]:
            return LicenseVerdict(
                "assignable", f"permission set license {license_name} is available for integrations",
                "PermissionSetLicense.IsAvailableForIntegrations", "V")
        return LicenseVerdict(
            "blocked", f"permission set license {license_name} is not available for integrations",
            "PermissionSetLicense.IsAvailableForIntegrations", "V")
    for marker, verdict in _PSL_RULES:
        if marker.lower() in license_name.lower():
            return verdict
    return LicenseVerdict(
        "blocked",
        f"add-on permission set license {license_name!r} is not known to be available to integration users; "
        "check PermissionSetLicense.IsAvailableForIntegrations in the org",
        "docs/salesforce-facts.md A2 (IsAvailableForIntegrations)", "U")
