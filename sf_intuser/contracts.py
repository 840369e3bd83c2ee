"""The contracts a user can script against: the run folder's files and every command's ``--json`` result.

Each is a :class:`TypedDict`. ``scripts/gen_schemas.py`` turns them into the JSON Schemas committed in
``docs/schemas/`` (the README links them), and the tests check both ways: the committed schemas are the
ones these types give, and real outputs (every ``--json`` the end-to-end tests read, the run folders
they make) validate against them.

The rules: a key listed in a ``...Base`` class is always there; one listed in the class built on it
(``total=False``) may be missing. New keys may appear in a later version (``additionalProperties`` is
open); a key is never removed or given another type without a new ``schema``/``version`` in
``plan.json``. Where a value mirrors a Salesforce record or an sf answer as it came, it is ``dict``
(a ``dict[str, Any]``) and documented in docs/architecture.md rather than typed here.
"""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, TypedDict, Union

# ---------------------------------------------------------------------------------------------------
# shared parts
# ---------------------------------------------------------------------------------------------------


class Blocker(TypedDict):
    problem: str
    fix: str


class SeatCount(TypedDict):
    name: str
    total: int
    used: int
    free: int
    fit: int
    toBuy: int


class Seats(TypedDict):
    candidates: int
    integrationLicense: Optional[SeatCount]
    integrationPsl: Optional[SeatCount]


class FreedSeats(TypedDict):
    license: str
    seats: int
    monthlyPrice: float
    source: str


class SavingsBase(TypedDict):
    currency: str
    freedSeats: List[FreedSeats]
    unpricedLicenses: List[Dict[str, Any]]
    integrationSeatsToBuy: int
    integrationSeatPrice: float
    integrationSeatSource: str
    yearlyGross: float
    yearlyCost: float
    yearlySaving: float
    note: str


class Savings(SavingsBase, total=False):
    includedIntegrationSeats: int
    users: int                     # how many users the figure counts
    counts: str                    # which users, in words


class ApiLogin(TypedDict):
    type: str
    application: Optional[str]
    count: int
    latest: Optional[str]


class OAuthToken(TypedDict):
    app: str
    useCount: int
    lastUsed: Optional[str]


class Evidence(TypedDict):
    """Why a user looks like an integration (or not), from the org's login history and tokens."""
    apiLogins: List[ApiLogin]
    personLogins: List[ApiLogin]
    apiOnlyUser: Optional[str]
    runAsOf: List[str]
    oauthTokens: List[OAuthToken]
    lastApiLogin: Optional[str]


class OrgInfoBase(TypedDict):
    id: str
    name: str
    username: str
    instanceUrl: str


class OrgInfo(OrgInfoBase, total=False):
    edition: str
    alias: Optional[str]
    apiVersion: str
    targetOrgFrom: str


# ---------------------------------------------------------------------------------------------------
# the run folder
# ---------------------------------------------------------------------------------------------------


class AccessItemBase(TypedDict):
    kind: str                      # PermissionSet | PermissionSetGroup | PermissionSetLicense | Profile | userPermission
    name: str
    reason: str


class AccessItem(AccessItemBase, total=False):
    into: str                      # rewritten: the generated set or group that carries it
    rule: str                      # dropped permissions: the rule (docs/salesforce-facts.md)
    source: str                    # dropped permissions: the rule's source
    from_: str                     # dropped: where it was (as "from" in JSON)


class UserFrom(TypedDict):
    profile: str
    profileId: str
    profileApiName: str
    license: str
    licenseId: str


class Assign(TypedDict):
    permissionSet: str
    expires: Optional[str]
    why: str


class GroupAssign(TypedDict):
    group: str
    expires: Optional[str]
    why: str


class AccessGrant(TypedDict):
    permissionSet: str
    entityId: str
    entityType: str
    entity: str
    from_: str


class UserToBase(TypedDict):
    profile: str
    license: str
    profileHow: str
    permissionSet: str
    permissionSetLicense: str
    assign: List[Assign]
    groups: List[GroupAssign]
    access: List[AccessGrant]


class UserTo(UserToBase, total=False):
    profileId: str                 # the standard API-only profile, by id (its label may be translated)


class PlanUserBase(TypedDict):
    username: str
    status: Literal["planned", "blocked"]
    blockers: List[Blocker]
    kept: List[AccessItem]
    rewritten: List[AccessItem]
    dropped: List[AccessItem]
    warnings: List[str]


class PlanUser(PlanUserBase, total=False):
    id: str
    name: str
    from_: UserFrom
    evidence: Evidence
    packages: List[Dict[str, Any]]
    to: UserTo                     # planned users only
    accessHow: str
    userRecord: Dict[str, Any]     # role, feature licenses, memberships, and how apply keeps them


class GeneratedItemBase(TypedDict):
    type: Literal["PermissionSet", "PermissionSetGroup", "Profile"]
    name: str
    source: str
    kind: str
    file: str
    exists: bool


class GeneratedItem(GeneratedItemBase, total=False):
    description: str               # API-only profiles: the marker a later plan finds them by
    from_: str                     # tightened sets: the generated set they narrow


class Step(TypedDict):
    id: int
    action: str
    why: str
    records: List[Dict[str, Any]]
    inverse: Dict[str, Any]


class RollbackUser(TypedDict, total=False):
    user: str
    userId: str
    profileId: str
    profile: str
    profileApiName: str
    permissionSets: List[Dict[str, Any]]
    groups: List[Dict[str, Any]]
    permissionSetLicenses: List[Dict[str, Any]]
    packageLicenses: List[Dict[str, Any]]
    roleId: Optional[str]
    role: Optional[str]
    featureLicenses: List[str]
    memberships: List[Dict[str, Any]]


class RollbackBase(TypedDict):
    users: List[RollbackUser]


class Rollback(RollbackBase, total=False):
    from_: str


class PlanSummary(TypedDict):
    users: int
    planned: int
    blocked: int
    generated: int


class PlanFile(TypedDict):
    """``RUN/plan.json``: what apply does, step by step, and what rollback restores."""
    schema: Literal["sf-intuser/plan"]
    version: int
    createdAt: str
    sfIntuser: str
    run: str
    org: OrgInfo
    snapshot: str
    permissionSetLicense: Optional[str]
    summary: PlanSummary
    users: List[PlanUser]
    generated: List[GeneratedItem]
    steps: List[Step]
    rollback: Rollback
    seats: Seats
    savings: Savings
    warnings: List[str]


class SnapshotManifest(TypedDict):
    """``RUN/snapshot/manifest.json``: the SHA-256 of every file of the snapshot."""
    schema: str
    version: int
    files: Dict[str, str]


class Checksums(TypedDict):
    """``RUN/checksums.json``: the SHA-256 of plan.json, plan.md and every metadata file."""
    schema: str
    files: Dict[str, str]


class JournalRecordBase(TypedDict):
    seq: int
    at: str
    run: str
    step: str
    phase: str


class JournalRecord(JournalRecordBase, total=False):
    """A line of ``RUN/journal.jsonl``: written before a step (``phase`` start/intent) and after it
    (outcome/end), with what the step touched; apply and rollback read it to resume."""
    resume: bool
    users: List[Any]
    records: List[Dict[str, Any]]
    results: List[Dict[str, Any]]
    ok: bool
    id: str
    failures: List[Any]
    created: List[Dict[str, Any]]
    emptySets: List[str]
    complete: bool


# ---------------------------------------------------------------------------------------------------
# the --json results, by command (the ``result`` of sf's envelope)
# ---------------------------------------------------------------------------------------------------


class Candidate(TypedDict, total=False):
    username: str
    id: str
    name: str
    license: str
    profile: str
    evidence: Evidence
    loginPolicy: Optional[Dict[str, Any]]     # None when the profile could not be read
    access: List[Dict[str, Any]]
    sharedBy: List[str]
    monthlyPrice: Optional[float]
    blockers: List[str]


class DiscoverResultBase(TypedDict):
    org: OrgInfo
    days: int
    candidates: List[Candidate]
    dormant: List[Dict[str, Any]]
    excluded: List[Dict[str, Any]]
    seats: Seats
    savings: Savings
    notes: List[str]
    sfCalls: int


class DiscoverResult(DiscoverResultBase, total=False):
    csv: str


class SnapshotResult(TypedDict, total=False):
    runDir: str
    snapshot: str
    users: List[str]
    files: int
    sfCalls: int


class PlanResultUser(TypedDict, total=False):
    username: str
    status: Literal["planned", "blocked"]
    to: str
    permissionSet: str
    blockers: List[Blocker]


class PlanResult(TypedDict):
    runDir: str
    planMd: str
    planJson: str
    metadata: Optional[str]
    summary: PlanSummary
    users: List[PlanResultUser]
    seats: Seats
    savings: Savings
    intoProject: List[Dict[str, Any]]
    warnings: List[str]
    sfCalls: int


class Moved(TypedDict):
    username: str
    profile: str
    permissionSets: List[str]


class NotMovedBase(TypedDict):
    username: str
    outcome: str
    message: str


class NotMoved(NotMovedBase, total=False):
    fix: str
    differences: List[str]


class ApplyResult(TypedDict):
    runDir: str
    org: str
    successes: List[Moved]
    failures: List[NotMoved]
    dropped: List[Dict[str, Any]]
    notKept: List[Dict[str, Any]]
    changedDuringRun: List[Dict[str, Any]]
    notAssigned: List[str]
    journal: str
    sfCalls: int


class DryRunDeploy(TypedDict):
    id: str
    status: str
    success: bool
    components: int
    failures: List[Dict[str, Any]]


class ApplyDryRunResult(TypedDict):
    """``apply --dry-run``: the checks passed and the deploy validated check-only; nothing changed."""
    dryRun: Literal[True]
    runDir: str
    org: str
    users: List[str]
    steps: List[str]
    deploy: DryRunDeploy
    notValidated: List[str]
    emptySets: List[str]
    sfCalls: int


class VerifiedUser(TypedDict):
    username: str
    reached: bool
    differences: List[str]


class VerifyResult(TypedDict):
    runDir: str
    users: List[VerifiedUser]
    reached: int
    differ: int
    sfCalls: int


class RollbackResultBase(TypedDict):
    runDir: str
    restored: List[str]
    alreadyRestored: List[str]
    failures: List[Dict[str, Any]]
    sfCalls: int


class RollbackResult(RollbackResultBase, total=False):
    leftoverAccess: List[str]
    removedNotPlanned: Dict[str, List[str]]
    note: str
    journal: str
    deleted: List[Dict[str, Any]]            # --delete-generated: {type, name} of each component deleted
    kept: List[Dict[str, Any]]               # --delete-generated: {type, name, reason} of each one kept


class ReportResult(TypedDict, total=False):
    format: Literal["md", "html", "csv"]
    output: Optional[str]
    users: List[Dict[str, Any]]


class LintFinding(TypedDict, total=False):
    severity: Literal["error", "warning"]
    file: str
    element: str
    message: str
    fix: str
    rule: str


class LintResult(TypedDict):
    files: int
    errors: int
    warnings: int
    findings: List[LintFinding]


class GateResult(TypedDict):
    components: int
    errors: int
    warnings: int
    integrationPermissionSets: List[str]
    integrationPermissionSetsFrom: List[str]
    findings: List[LintFinding]


class ConvertResult(TypedDict):
    dryRun: bool
    outputDir: str
    format: Literal["source", "mdapi"]
    inputs: List[Dict[str, Any]]
    outputs: List[Dict[str, Any]]
    written: List[str]
    profiles: Dict[str, Any]
    classifications: List[Dict[str, Any]]
    connectedApps: Any
    skipped: List[Dict[str, Any]]
    changes: List[Dict[str, Any]]


class DoctorCheckBase(TypedDict):
    check: str
    ok: bool
    detail: str


class DoctorCheck(DoctorCheckBase, total=False):
    skipped: bool


class DoctorResult(TypedDict):
    checks: List[DoctorCheck]
    actions: List[str]


class RehearseResult(TypedDict, total=False):
    productionRun: str
    rehearsalRun: str
    standIns: List[Dict[str, Any]]
    differences: List[str]
    apply: ApplyResult
    rolledBack: Optional[bool]      # None when --keep left it in place
    kept: bool
    report: str
    deactivated: List[str]


class DemoResult(TypedDict):
    migrated: List[Moved]
    blocked: List[Dict[str, Any]]
    runDir: str
    report: str
    yearlySaving: float
    discover: DiscoverResult
    plan: PlanResult
    apply: ApplyResult


class AccessCounts(TypedDict):
    objectsRead: int
    objectsWrite: int
    systemPermissions: int


class TightenCounts(TypedDict):
    before: AccessCounts           # the profile and copied sets as they are
    moved: AccessCounts            # the plan's generated sets
    tightened: AccessCounts        # after tightening


class EvidenceSource(TypedDict):
    name: Literal["ApiTotalUsageEventLog", "EventLogFile"]
    status: Literal["used", "absent", "unreadable", "skipped"]
    reason: str
    rows: int
    files: int
    from_: Optional[str]
    to: Optional[str]


class EvidenceWindow(TypedDict):
    days: int
    asked: Dict[str, str]
    covers: Dict[str, Any]          # first and last day, and the days between them
    sources: List[EvidenceSource]
    sfCalls: int


class TightenedUser(TypedDict):
    username: str
    narrowed: bool
    counts: TightenCounts
    sets: List[Dict[str, str]]     # {"from": generated set, "into": its narrowed copy}
    warnings: List[str]


class TightenResult(TypedDict):
    runDir: str                    # the new run folder, inside the one tightened
    from_: str
    planMd: str
    window: Dict[str, Any]         # days asked, and the first and last day the evidence covers
    evidence: EvidenceWindow
    users: List[TightenedUser]
    warnings: List[str]
    sfCalls: int
    evidenceSfCalls: int


class ServeResult(TypedDict):
    instanceUrl: str
    username: str
    orgId: str
    alias: Optional[str]
    login: Optional[str]
    stopsAfterMinutes: float
    faults: List[str]
    options: Dict[str, Any]


class ErrorEnvelopeBase(TypedDict):
    """What every command prints with ``--json`` when it fails (sf's error envelope)."""
    name: str
    message: str
    exitCode: int
    status: int
    code: str
    warnings: List[str]


class ErrorEnvelope(ErrorEnvelopeBase, total=False):
    actions: List[str]
    data: Any


#: command (as typed after ``sf-intuser``) -> the type of its ``result``
RESULTS: dict[str, Any] = {
    "discover": DiscoverResult, "snapshot": SnapshotResult, "plan": PlanResult,
    "apply": Union[ApplyResult, ApplyDryRunResult],
    "verify": VerifyResult, "rollback": RollbackResult, "report": ReportResult, "lint": LintResult,
    "gate": GateResult, "convert": ConvertResult, "doctor": DoctorResult, "rehearse": RehearseResult,
    "demo": DemoResult, "emulator serve": ServeResult, "tighten": TightenResult,
}

#: the run folder's files -> their type
RUN_FILES: dict[str, Any] = {
    "plan.json": PlanFile, "snapshot/manifest.json": SnapshotManifest, "checksums.json": Checksums,
    "journal.jsonl": JournalRecord,
}

#: Python can't name a key ``from``: ``from_`` stands for it
RENAMED = {"from_": "from"}
