"""The sObjects the emulated org knows: key prefixes and fields (Object Reference, docs/salesforce-facts.md A5).

A query naming a field that is not listed fails with ``INVALID_FIELD``, as in Salesforce, rather
than quietly returning nothing. Relationship paths (``Profile.UserLicense.Name``) follow a field
``<Name>Id`` to the record its id points at; the target object comes from the id's key prefix, which
also serves polymorphic references such as ``PermissionSet.LicenseId`` (a UserLicense or a
PermissionSetLicense).
"""

from __future__ import annotations

from typing import Iterable

from sf_intuser.emulator.soql import QueryError

#: the User's feature license checkboxes (User object reference: "UserPermissionsMarketingUser ... Indicates
#: whether the user is enabled to manage campaigns", Knowledge User, Service Cloud User (SupportUser),
#: Flow User (InteractionUser), Offline User, Salesforce CRM Content User (SFContentUser), Chat User
#: (LiveAgentUser), Mobile User)
FEATURE_LICENSES = ("UserPermissionsMarketingUser", "UserPermissionsKnowledgeUser", "UserPermissionsSupportUser",
                    "UserPermissionsInteractionUser", "UserPermissionsOfflineUser", "UserPermissionsSFContentUser",
                    "UserPermissionsLiveAgentUser", "UserPermissionsMobileUser")

#: object -> (key prefix, fields). Fields marked computed in ``COMPUTED`` are read-only.
OBJECTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Organization": ("00D", ("Id", "Name", "InstanceName", "IsSandbox", "TrialExpirationDate", "NamespacePrefix",
                             "OrganizationType")),
    "User": ("005", ("Id", "Username", "Name", "FirstName", "LastName", "Alias", "Email", "IsActive", "UserType",
                     "ProfileId", "UserRoleId", "LastLoginDate", "CreatedDate", "TimeZoneSidKey", "LocaleSidKey",
                     "EmailEncodingKey", "LanguageLocaleKey", *FEATURE_LICENSES)),
    # roles, public groups and queues (object reference: UserRole; Group, Type Regular | Queue | ...;
    # GroupMember, UserOrGroupId a user or a group)
    "UserRole": ("00E", ("Id", "Name", "DeveloperName", "ParentRoleId")),
    "Group": ("00G", ("Id", "Name", "DeveloperName", "Type")),
    "GroupMember": ("011", ("Id", "GroupId", "UserOrGroupId")),
    "Profile": ("00e", ("Id", "Name", "Description", "UserLicenseId", "UserType")),
    "UserLicense": ("100", ("Id", "Name", "MasterLabel", "LicenseDefinitionKey", "Status", "TotalLicenses",
                            "UsedLicenses")),
    "PermissionSet": ("0PS", ("Id", "Name", "Label", "Description", "IsOwnedByProfile", "ProfileId", "LicenseId",
                              "NamespacePrefix", "IsCustom", "Type", "PermissionSetGroupId", "HasActivationRequired")),
    "PermissionSetAssignment": ("0Pa", ("Id", "AssigneeId", "PermissionSetId", "PermissionSetGroupId",
                                        "ExpirationDate", "IsActive")),
    "PermissionSetGroup": ("0PG", ("Id", "DeveloperName", "MasterLabel", "Status", "Description",
                                   "NamespacePrefix")),
    "PermissionSetGroupComponent": ("0PC", ("Id", "PermissionSetGroupId", "PermissionSetId")),
    "PermissionSetLicense": ("0PL", ("Id", "DeveloperName", "MasterLabel", "PermissionSetLicenseKey", "Status",
                                     "TotalLicenses", "UsedLicenses", "ExpirationDate",
                                     "IsAvailableForIntegrations")),
    "PermissionSetLicenseAssign": ("2LA", ("Id", "AssigneeId", "PermissionSetLicenseId")),
    "LoginHistory": ("0Ya", ("Id", "UserId", "LoginTime", "LoginType", "Application", "ApiType", "ApiVersion",
                             "Status", "SourceIp", "LoginSubType", "Browser", "Platform")),
    "ConnectedApplication": ("0H4", ("Id", "Name", "OptionsAllowAdminApprovedUsersOnly")),
    "SetupEntityAccess": ("0J0", ("Id", "ParentId", "SetupEntityId", "SetupEntityType")),
    # access as records, derived from each permission set's (and profile's own set's) metadata: rows
    # exist where something is granted (ObjectPermissions and FieldPermissions object reference)
    "ObjectPermissions": ("110", ("Id", "ParentId", "SobjectType", "PermissionsRead", "PermissionsCreate",
                                  "PermissionsEdit", "PermissionsDelete", "PermissionsViewAllRecords",
                                  "PermissionsModifyAllRecords", "PermissionsViewAllFields")),
    "FieldPermissions": ("01k", ("Id", "ParentId", "SobjectType", "Field", "PermissionsRead", "PermissionsEdit")),
    # Tooling API (API 46+): what each user permission requires
    "PermissionDependency": ("2Pd", ("Id", "Permission", "PermissionType", "RequiredPermission",
                                     "RequiredPermissionType")),
    "ApexClass": ("01p", ("Id", "Name", "NamespacePrefix", "Status")),
    "ApexPage": ("066", ("Id", "Name", "NamespacePrefix")),
    "PackageLicense": ("050", ("Id", "NamespacePrefix", "AllowedLicenses", "UsedLicenses", "Status")),
    "UserPackageLicense": ("051", ("Id", "PackageLicenseId", "UserId")),
    "OauthToken": ("0CQ", ("Id", "AppName", "UserId", "LastUsedDate", "UseCount", "CreatedDate")),
    # the login probe's Tooling query (docs/sf-wire.md section 3, row 6): present, always empty
    "SandboxProcess": ("0GR", ("Id", "Status", "SandboxName", "SandboxInfoId", "LicenseType", "CreatedDate",
                               "CopyProgress", "SandboxOrganization", "SourceId", "Description", "EndDate",
                               "Features")),
    # a Dev Hub's live scratch orgs (Object Reference, ActiveScratchOrg); only on a Dev Hub
    "ActiveScratchOrg": ("2AS", ("Id", "ScratchOrg", "SignupUsername", "OrgName", "Edition", "ExpirationDate",
                                 "CreatedDate", "ScratchOrgInfoId", "Status")),
    # Tooling API, orgs that track source (Options.source_tracking): one row per changed component
    # (Tooling API reference, SourceMember; the fields sf reads: @salesforce/source-tracking
    # SOURCE_MEMBER_FIELDS)
    "SourceMember": ("0MZ", ("Id", "MemberIdOrName", "MemberType", "MemberName", "IsNameObsolete", "RevisionCounter",
                             "IsNewMember", "ChangedBy", "LastModifiedDate")),
    # a Dev Hub's scratch org requests (Object Reference, ScratchOrgInfo); only on a Dev Hub
    # (Options.dev_hub): elsewhere it is not a known object, which is how sf tells a Dev Hub at login
    "ScratchOrgInfo": ("2SR", ("Id", "OrgName", "Edition", "Status", "ErrorCode", "LoginUrl", "AuthCode",
                               "ScratchOrg", "SignupUsername", "SignupEmail", "SignupInstance", "Username",
                               "AdminEmail", "ConnectedAppConsumerKey", "ConnectedAppCallbackUrl", "DurationDays",
                               "ExpirationDate", "CreatedDate", "Features", "Description", "HasSampleData",
                               "Country", "Language", "Namespace", "Release", "Snapshot", "SourceOrg",
                               "Template", "Instance", "SignupCountry", "SignupLanguage", "SignupTrialDays",
                               "Package2AncestorIds", "OrgPreferences", "ShapeId", "CreatedById")),
    # event logs (Object Reference: ApiTotalUsageEventLog, API 61.0+, query and describe only; EventLogFile, its
    # key prefix 0AT). The log object's key prefix is not documented: 0Ug here [U]. Made from the seed
    # users' apiUsage (:mod:`.eventlogs`)
    "ApiTotalUsageEventLog": ("0Ug", ("Id", "ApiFamily", "ApiResource", "ClientIp", "ClientName",
                                      "ConnectedAppIdentifier", "HttpMethod", "IsApiLimitCounted", "ObjectName",
                                      "RequestIdentifier", "StatusCode", "Timestamp", "UserIdentifier")),
    "EventLogFile": ("0AT", ("Id", "EventType", "LogDate", "Interval", "LogFile", "LogFileLength",
                             "LogFileContentType", "LogFileFieldNames", "LogFileFieldTypes", "Sequence",
                             "CreatedDate")),
    # job ids of the Metadata API (no fields queried)
    "AsyncRetrieve": ("09S", ("Id",)),
    "AsyncDeploy": ("0Af", ("Id",)),
}

#: Fields the org computes; an insert or update naming them fails with INVALID_FIELD_FOR_INSERT_UPDATE.
COMPUTED = {("UserLicense", "UsedLicenses"), ("PermissionSetLicense", "UsedLicenses"),
            ("PackageLicense", "UsedLicenses"),
            # Object Reference, SetupEntityAccess: SetupEntityType is "Filter, Group, Nillable, Restricted
            # picklist, Sort" (no Create): Salesforce sets it from SetupEntityId
            ("SetupEntityAccess", "SetupEntityType")}
#: setup objects: DML on one of them and on a non-setup object in the same transaction fails
#: (Apex Developer Guide, "sObjects That Cannot Be Used Together in DML Operations"; MIXED_DML_OPERATION)
SETUP_OBJECTS = frozenset({"User", "UserRole", "Group", "GroupMember", "PermissionSet", "PermissionSetAssignment",
                           "PermissionSetLicenseAssign", "PermissionSetGroup", "PermissionSetGroupComponent",
                           "ObjectPermissions", "FieldPermissions", "SetupEntityAccess", "Profile"})
#: what SetupEntityAccess may grant (Object Reference, SetupEntityAccess.SetupEntityType: ApexClass,
#: ApexPage, ConnectedApplication, CustomPermission, ServiceProvider, TabSet, CustomEntityDefinition)
SETUP_ENTITY_TYPES = ("ApexClass", "ApexPage", "ConnectedApplication", "CustomPermission", "ServiceProvider",
                      "TabSet", "CustomEntityDefinition")

#: What the REST API may write here; other objects answer INVALID_TYPE_FOR_OPERATION.
WRITABLE: dict[str, set[str]] = {
    "User": {"create", "update"},
    "Profile": {"create", "update"},
    "PermissionSet": {"create", "update", "delete"},
    "PermissionSetAssignment": {"create", "delete"},
    "PermissionSetLicenseAssign": {"create", "delete"},
    "SetupEntityAccess": {"create", "delete"},
    "UserPackageLicense": {"create", "delete"},
    "GroupMember": {"create", "delete"},
    "ScratchOrgInfo": {"create", "delete"},
    "SourceMember": {"update"},
    "ActiveScratchOrg": {"delete"},
    "LoginHistory": set(),
}

#: Fields the object reference lists without the Filter property (a WHERE on them fails) or without
#: Group (a GROUP BY on them fails). LoginHistory (object reference): ApiType, ApiVersion, Application,
#: Browser, ClientVersion and Platform are "Group, Nillable, Sort"; LoginTime is "Filter, Nillable, Sort".
NOT_FILTERABLE: dict[str, frozenset[str]] = {
    "LoginHistory": frozenset({"ApiType", "ApiVersion", "Application", "Browser", "Platform"}),
}
NOT_GROUPABLE: dict[str, frozenset[str]] = {"LoginHistory": frozenset({"LoginTime"})}

PREFIXES = {prefix: name for name, (prefix, _) in OBJECTS.items()}


def canonical(name: str) -> str | None:
    """The object's proper name for any spelling, or None."""
    low = name.lower()
    return next((n for n in OBJECTS if n.lower() == low), None)


#: field families with one boolean per user permission: PermissionSet.Permissions<X> (object
#: reference, PermissionSet) and PermissionSetLicense.MaximumPermissions<X> (PermissionSetLicense)
PERMISSION_FIELDS = {"PermissionSet": "Permissions", "PermissionSetLicense": "MaximumPermissions"}


def _permission_names():
    from sf_intuser.metadata.license_rules import known_user_permissions

    return {n.lower(): n for n in known_user_permissions()}


def field_name(obj: str, name: str) -> str | None:
    low = name.lower()
    found = next((f for f in OBJECTS[obj][1] if f.lower() == low), None)
    prefix = PERMISSION_FIELDS.get(obj)
    if found is None and prefix and low.startswith(prefix.lower()):
        perm = _permission_names().get(low[len(prefix):])
        if perm:
            return prefix + perm
    return found


def described_fields(obj: str, known: "Iterable[str] | None" = None) -> list[str]:
    """The fields a describe lists: the object's own, and for PermissionSet and PermissionSetLicense one
    boolean per user permission the org knows, ``known`` (sfprofiles reads an org's permission names
    from the PermissionSet describe)."""
    prefix = PERMISSION_FIELDS.get(obj)
    names = sorted(known) if known is not None else sorted(_permission_names().values())
    extra = [prefix + n for n in names] if prefix else []
    return [*OBJECTS[obj][1], *extra]


def permission_of(obj: str, field: str) -> str | None:
    """The user permission a ``Permissions<X>``/``MaximumPermissions<X>`` field stands for."""
    prefix = PERMISSION_FIELDS.get(obj)
    return field[len(prefix):] if prefix and field.startswith(prefix) and field not in OBJECTS[obj][1] else None


#: relationship name -> object, where the name is not the object's own
REL_TARGETS = {"Assignee": "User", "Parent": "PermissionSet", "UserLicense": "UserLicense", "User": "User",
               "CreatedBy": "User", "UserRole": "UserRole", "Group": "Group"}


def check_path(obj: str, path: str) -> None:
    """Raise INVALID_FIELD for a field or relationship the object does not have (polymorphic
    relationships such as ``License`` and ``SetupEntity`` are checked up to the polymorphic step)."""
    parts = path.split(".")
    if len(parts) > 1 and parts[0].lower() == obj.lower():
        parts = parts[1:]
    cur: str | None = obj
    for i, part in enumerate(parts):
        if cur is None:
            return
        last = i == len(parts) - 1
        name = field_name(cur, part if last else part + "Id")
        if name is None:
            what = f"No such column '{part}' on entity '{cur}'" if last else \
                f"Didn't understand relationship '{part}' in field path. No such relationship on entity '{cur}'"
            raise QueryError("INVALID_FIELD", what + ". If you are attempting to use a custom field, be sure to "
                             "append the '__c' after the custom field name. Please reference your WSDL or the "
                             "describe call for the appropriate names.")
        if not last:
            rel = name[:-2]
            cur = REL_TARGETS.get(rel) or canonical(rel)


def object_of_id(record_id: str | None) -> str | None:
    return PREFIXES.get(record_id[:3]) if record_id else None
