"""The org as sf-intuser sees it: plain, frozen records of its users, licenses, profiles, permission
sets, groups and access, and the :class:`Inventory` that holds them. Pure data: nothing here reads the
org (:mod:`sf_intuser.org.inventory` fills these through sf), so the planner, discovery and the reports
depend on this module alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterable, Mapping

from sf_intuser.metadata.license_rules import INTEGRATION_PSL, INTEGRATION_USER_LICENSE

#: the access a profile or permission set grants through SetupEntityAccess that a move must carry
ENTITY_TYPES = ("ApexClass", "ApexPage", "ConnectedApplication", "CustomPermission")


@dataclass(frozen=True)
class Org:
    id: str
    name: str
    edition: str
    is_sandbox: bool
    instance_url: str
    username: str
    alias: str | None
    api_version: str


@dataclass(frozen=True)
class UserLicense:
    id: str
    name: str
    total: int
    used: int
    key: str | None = None

    @property
    def free(self) -> int:
        return max(self.total - self.used, 0)


@dataclass(frozen=True)
class Psl:
    id: str
    name: str          # DeveloperName, as a permission set's <license> names it
    label: str
    total: int
    used: int
    for_integrations: bool | None
    status: str = ""

    @property
    def free(self) -> int:
        return max(self.total - self.used, 0)


@dataclass(frozen=True)
class Package:
    id: str
    namespace: str
    allowed: int
    used: int


@dataclass(frozen=True)
class User:
    id: str
    username: str
    name: str
    active: bool
    user_type: str
    profile_id: str
    profile: str
    license_id: str
    license: str
    last_login: str | None
    created: str | None


@dataclass(frozen=True)
class Login:
    """Logins of one user of one type through one application in the window (an aggregate row)."""

    user_id: str
    type: str
    application: str | None
    count: int
    latest: str | None


@dataclass(frozen=True)
class Token:
    user_id: str
    app: str
    use_count: int
    last_used: str | None


@dataclass(frozen=True)
class Assignment:
    """A PermissionSetAssignment: of a permission set, or of a group (``group_id``; ``ps_id`` is then
    the group's own aggregate set)."""

    id: str
    user_id: str
    ps_id: str
    ps_name: str
    ps_label: str
    license_id: str | None
    owned: bool
    namespace: str | None
    ps_type: str | None
    group_id: str | None
    group_name: str | None
    group_label: str | None
    group_status: str | None
    expires: str | None


@dataclass(frozen=True)
class PslAssignment:
    id: str
    user_id: str
    psl_id: str
    psl_name: str


@dataclass(frozen=True)
class PackageAssignment:
    id: str
    user_id: str
    package_id: str
    namespace: str


@dataclass(frozen=True)
class Component:
    """A permission set inside a permission set group (muting sets included)."""

    id: str
    group_id: str
    ps_id: str
    ps_name: str
    ps_label: str
    license_id: str | None
    ps_type: str | None
    namespace: str | None


@dataclass(frozen=True)
class Access:
    """A SetupEntityAccess row: the permission set (a profile's own, or any) ``parent_id`` grants ``entity_id``."""

    id: str
    parent_id: str
    entity_id: str
    entity_type: str


@dataclass(frozen=True)
class UserRecord:
    """What a user record itself holds that a license change may take away [U]: its role and its
    feature licenses (the ``UserPermissions<X>`` checkboxes set on the user: Marketing User, Knowledge
    User, Service Cloud User, Flow User, ...; User object reference)."""

    user_id: str
    role_id: str | None
    role: str | None
    features: tuple[str, ...] = ()     # the checkboxes set, as their field names


@dataclass(frozen=True)
class Membership:
    """A GroupMember row: the user in a public group (Type Regular) or a queue (Type Queue)."""

    id: str
    user_id: str
    group_id: str
    group_name: str
    group_type: str


@dataclass(frozen=True)
class NamedRecord:
    id: str
    name: str
    label: str = ""
    description: str | None = None
    profile_id: str | None = None   # a profile's own permission set: its profile
    license_id: str | None = None   # a profile: its user license


@dataclass
class Inventory:
    org: Org
    days: int
    user_licenses: list[UserLicense] = field(default_factory=list)
    psls: list[Psl] = field(default_factory=list)
    packages: list[Package] = field(default_factory=list)
    connected_apps: dict[str, str] = field(default_factory=dict)          # id -> name
    api_profiles: list[NamedRecord] = field(default_factory=list)        # integration-license or "API Only - " profiles
    generated_sets: list[NamedRecord] = field(default_factory=list)      # permission sets named *Intuser
    generated_groups: list[NamedRecord] = field(default_factory=list)    # permission set groups named *Intuser
    users: list[User] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)                   # usernames asked for, not in the org
    api_only_profiles: list[str] = field(default_factory=list)           # profile ids granting API Only User
    api_only_users: list[str] = field(default_factory=list)              # user ids granted it by a permission set
    api_login_users: list[str] = field(default_factory=list)             # user ids with an API login in the window
    logins: list[Login] = field(default_factory=list)
    tokens: list[Token] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    psl_assignments: list[PslAssignment] = field(default_factory=list)
    package_assignments: list[PackageAssignment] = field(default_factory=list)
    components: list[Component] = field(default_factory=list)
    access: list[Access] = field(default_factory=list)
    profile_sets: list[NamedRecord] = field(default_factory=list)        # the profiles' own permission sets
    #: permission set id -> rows of ObjectPermissions / FieldPermissions it holds (a plan's cross-check)
    object_counts: dict[str, int] = field(default_factory=dict)
    field_counts: dict[str, int] = field(default_factory=dict)
    objects: list[str] = field(default_factory=list)                     # objects named in those rows
    org_permissions: list[str] | None = None                            # the user permissions the org knows
    psl_maximum: dict[str, bool] | None = None                          # SalesforceAPIIntegrationPsl's maximum
    maximum_fields: list[str] | None = None                             # its MaximumPermissions fields (describe)
    #: profile id (15 characters) -> its Metadata API name (``listMetadata`` fullName): ``Admin`` for the
    #: profile SOQL calls System Administrator (or its translation), ``Custom%3A Sales`` for "Custom:
    #: Sales" (docs/salesforce-facts.md A8; salesforce.stackexchange q 113370). None: not read (an older snapshot).
    profile_api: dict[str, str] | None = None
    #: the User fields holding feature licenses this org has (User describe); None: not read
    feature_fields: list[str] | None = None
    user_records: list[UserRecord] = field(default_factory=list)
    memberships: list[Membership] = field(default_factory=list)

    # --- lookups ------------------------------------------------------------------------------

    def user_license(self, name: str = INTEGRATION_USER_LICENSE) -> UserLicense | None:
        return next((lic for lic in self.user_licenses if lic.name == name), None)

    def psl(self, name: str = INTEGRATION_PSL) -> Psl | None:
        return next((p for p in self.psls if p.name == name), None)

    def license_name(self, license_id: str | None) -> str | None:
        """The name a permission set's ``<license>`` would hold for ``license_id``: a user license's
        Name or a permission set license's DeveloperName (LicenseId points to either)."""
        if not license_id:
            return None
        for lic in self.user_licenses:
            if lic.id[:15] == license_id[:15]:
                return lic.name
        for p in self.psls:
            if p.id[:15] == license_id[:15]:
                return p.name
        return None

    def user(self, user_id: str) -> User | None:
        return next((u for u in self.users if u.id[:15] == user_id[:15]), None)

    def of_user(self, items: Iterable[Any], user_id: str) -> list[Any]:
        return [i for i in items if i.user_id[:15] == user_id[:15]]

    def user_record(self, user_id: str) -> UserRecord | None:
        return next((r for r in self.user_records if r.user_id[:15] == user_id[:15]), None)

    def profile_set(self, profile_id: str) -> NamedRecord | None:
        return next((p for p in self.profile_sets if (p.profile_id or "")[:15] == profile_id[:15]), None)

    def profile_api_name(self, profile_id: str, label: str = "") -> str:
        """The Metadata API name of a profile: what a retrieve, a deploy and a file name use. A snapshot
        taken before the names were read used the label, and keeps doing so."""
        if self.profile_api is None:
            return label
        return self.profile_api.get(profile_id[:15], "")

    def set_profile_names(self, listed: Iterable[Mapping[str, Any]]) -> None:
        """Profile API names from ``sf org list metadata -m Profile`` (fullName and id of each)."""
        self.profile_api = {str(x.get("id") or "")[:15]: str(x.get("fullName") or "")
                            for x in listed if x.get("id") and x.get("fullName")}

    def access_of(self, parent_id: str) -> list[Access]:
        return [a for a in self.access if a.parent_id[:15] == parent_id[:15]]

    # --- persistence --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Inventory":
        kinds = {"user_licenses": UserLicense, "psls": Psl, "packages": Package, "api_profiles": NamedRecord,
                 "generated_sets": NamedRecord, "generated_groups": NamedRecord, "users": User, "logins": Login, "tokens": Token,
                 "assignments": Assignment, "psl_assignments": PslAssignment,
                 "package_assignments": PackageAssignment, "components": Component, "access": Access,
                 "profile_sets": NamedRecord, "user_records": UserRecord, "memberships": Membership}
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            v = data[f.name]
            if f.name == "org":
                v = Org(**v)
            elif f.name == "user_records":
                v = [UserRecord(**{**x, "features": tuple(x.get("features") or ())}) for x in v]
            elif f.name in kinds:
                v = [kinds[f.name](**x) for x in v]
            values[f.name] = v
        return cls(**values)


# --- reading ----------------------------------------------------------------------------------
