"""Which users can move to the Salesforce Integration license, and what that saves. Pure: an
:class:`~sf_intuser.org.inventory.Inventory` and options in, a :class:`Discovery` out.

A user is a candidate when it is active, internal, on another user license, and the evidence says it
is an integration: API logins in the window, or API Only User (through its profile or a permission
set), or being the run-as user of a client-credentials connected app. A person is never proposed:
any login that is not an API one (the browser, single sign-on, ...) or an OAuth login through one of
Salesforce's own apps for people (the mobile apps, the Outlook and Gmail integrations, ...) excludes
the user; so does having no login in the window without API Only User (no evidence either way). A
user with API Only User and no login in the window is dormant: deactivating it frees its seat too.
Every user looked at lands in one of the three lists with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from sf_intuser.metadata import license_rules as rules
from sf_intuser.org.model import Assignment, Inventory, User

#: LoginHistory.LoginType values of API logins (docs/salesforce-facts.md A5: Remote Access 2.0 is OAuth,
#: Other Apex API and Partner Product are SOAP/REST logins; mycloudexperience blog [V-3P]). Every
#: other type (Application, SAML ... SSO, Chatter Communities External User, ...) is a person's.
API_LOGIN_TYPES = ("Remote Access 2.0", "Remote Access Client", "Other Apex API", "Partner Product")

#: LoginHistory.Application (and OauthToken.AppName) values of Salesforce's own apps for people: an
#: OAuth login through one of them is a person's, not an integration's. Names as Salesforce shows them
#: in login history and Connected Apps OAuth Usage [V-3P: admin blogs and login history exports]; the
#: list is not complete, so sf-intuser.toml can replace it ([discover] people-apps).
PEOPLE_APPS = (
    "Salesforce for iOS", "Salesforce for Android", "Salesforce Mobile", "Salesforce1 for iOS",
    "Salesforce1 for Android", "Salesforce App", "Salesforce for Outlook", "Outlook Integration",
    "Salesforce for Outlook Add-In", "Gmail Integration", "Salesforce Inbox", "Inbox", "Lightning Sync",
    "Salesforce Authenticator", "SalesforceA", "Salesforce Field Service for iOS",
    "Salesforce Field Service for Android", "Chatter Desktop", "Chatter Mobile for iPhone",
    "Chatter Mobile for Android", "Salesforce Chatter", "Einstein Activity Capture", "Slack",
    "Salesforce Maps", "Salesforce Mobile Publisher",
)

#: List prices in US dollars per user per month (annual contract) of the user licenses integrations
#: usually hold, by edition where it matters. Each with its source and date; sf-intuser.toml [prices]
#: overrides them. None: not priced.
PRICES: dict[tuple[str, str | None], tuple[float, str]] = {
    ("Salesforce", "Enterprise Edition"): (175.0, "Sales/Service Cloud Enterprise list price after the August 2025 "
                                                  "increase; redresscompliance.com salesforce-licensing-changes-2026 "
                                                  "(2026-02)"),
    ("Salesforce", "Unlimited Edition"): (350.0, "Sales/Service Cloud Unlimited list price after the August 2025 "
                                                 "increase; same source (2026-02)"),
    ("Salesforce", "Performance Edition"): (350.0, "Performance Edition is sold as Unlimited; same source (2026-02)"),
    ("Salesforce", "Developer Edition"): (0.0, "Developer Edition is free"),
    ("Salesforce", None): (175.0, "Enterprise list price (the edition was not recognised); same source (2026-02)"),
    ("Salesforce Platform", None): (100.0, "Platform Plus list price; redresscompliance.com "
                                           "lightning-platform-starter-vs-plus (2026-02)"),
    ("Lightning Platform Starter", None): (25.0, "Platform Starter list price; same source (2026-02)"),
    ("Force.com - App Subscription", None): (25.0, "legacy App Subscription, priced as Platform Starter; same "
                                                   "source (2026-02)"),
    (rules.INTEGRATION_USER_LICENSE, None): (10.0, "extra Salesforce Integration seats; salesforceben.com "
                                                   "salesforce-release-5-free-integration-user-licenses (2024)"),
}

#: Salesforce Integration seats included free (docs/salesforce-facts.md A1 [V-3P])
FREE_INTEGRATION_SEATS = {"Developer Edition": 1}
DEFAULT_FREE_INTEGRATION_SEATS = 5

RENEWAL_NOTE = ("A freed seat saves money only when the contract is reduced at renewal: until then the seats "
                "stay paid for.")


@dataclass
class Options:
    days: int = 90
    api_login_types: tuple[str, ...] = API_LOGIN_TYPES
    people_apps: tuple[str, ...] = PEOPLE_APPS
    prices: Mapping[str, float] = field(default_factory=dict)   # [prices] from sf-intuser.toml


@dataclass
class Evidence:
    api_logins: list[dict[str, Any]] = field(default_factory=list)     # {type, application, count, latest}
    person_logins: list[dict[str, Any]] = field(default_factory=list)
    api_only: str | None = None                              # "profile X" | "permission set Y"
    run_as: list[str] = field(default_factory=list)          # connected apps running as the user
    tokens: list[dict[str, Any]] = field(default_factory=list)

    @property
    def last_api_login(self) -> str | None:
        return max((x["latest"] for x in self.api_logins if x.get("latest")), default=None)

    @property
    def applications(self) -> list[str]:
        apps = {x["application"] for x in self.api_logins if x.get("application")}
        apps |= {t["app"] for t in self.tokens if t.get("app")}
        apps |= set(self.run_as)
        return sorted(apps)

    def to_dict(self) -> dict[str, Any]:
        return {"apiLogins": self.api_logins, "personLogins": self.person_logins, "apiOnlyUser": self.api_only,
                "runAsOf": self.run_as, "oauthTokens": self.tokens, "lastApiLogin": self.last_api_login}


@dataclass
class Grant:
    """A permission set, group or license the user holds, and whether it can come along."""

    kind: str        # PermissionSet | PermissionSetGroup | PermissionSetLicense | PackageLicense
    name: str
    verdict: str     # assignable | needs-rewrite | blocked | removed | kept
    reason: str
    license: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Candidate:
    user: User
    evidence: Evidence
    login_policy: dict[str, Any] | None            # the profile's login IP ranges and hours; None: not read
    grants: list[Grant] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)    # applications, when more than one
    price: float | None = None
    blockers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"username": self.user.username, "id": self.user.id, "name": self.user.name,
                "license": self.user.license, "profile": self.user.profile, "evidence": self.evidence.to_dict(),
                "loginPolicy": self.login_policy, "access": [g.to_dict() for g in self.grants],
                "sharedBy": self.shared, "monthlyPrice": self.price, "blockers": self.blockers}


@dataclass
class Discovery:
    candidates: list[Candidate]
    dormant: list[dict[str, Any]]
    excluded: list[dict[str, Any]]
    seats: dict[str, Any]
    money: dict[str, Any]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"candidates": [c.to_dict() for c in self.candidates], "dormant": self.dormant,
                "excluded": self.excluded, "seats": self.seats, "savings": self.money, "notes": self.notes}


def price_of(license_name: str, edition: str, overrides: Mapping[str, float]) -> tuple[float | None, str]:
    """The monthly list price of a seat of ``license_name`` in an org of ``edition``, and its source."""
    if license_name in overrides:
        return float(overrides[license_name]), "sf-intuser.toml [prices]"
    hit = PRICES.get((license_name, edition)) or PRICES.get((license_name, None))
    return (hit[0], hit[1]) if hit else (None, f"no list price known for {license_name!r}; set it in "
                                               f"sf-intuser.toml [prices]")


def free_integration_seats(edition: str) -> int:
    return FREE_INTEGRATION_SEATS.get(edition, DEFAULT_FREE_INTEGRATION_SEATS)


def evidence_of(inv: Inventory, user: User, opts: Options, run_as: Mapping[str, list[str]]) -> Evidence:
    api_types = set(opts.api_login_types)
    people = {a.lower() for a in opts.people_apps}
    ev = Evidence()
    for lg in sorted(inv.of_user(inv.logins, user.id), key=lambda x: (x.type, x.application or "")):
        row = {"type": lg.type, "application": lg.application, "count": lg.count, "latest": lg.latest}
        if lg.type in api_types and (lg.application or "").lower() not in people:
            ev.api_logins.append(row)
        else:
            ev.person_logins.append(row)
    if user.profile_id in set(inv.api_only_profiles):
        ev.api_only = f"profile {user.profile}"
    elif user.id in set(inv.api_only_users):
        ev.api_only = "a permission set"
    ev.run_as = sorted(run_as.get(user.username.lower(), []))
    ev.tokens = [{"app": t.app, "useCount": t.use_count, "lastUsed": t.last_used}
                 for t in sorted(inv.of_user(inv.tokens, user.id), key=lambda t: t.app)]
    return ev


def _person_reason(ev: Evidence, people: set[str]) -> str:
    parts = []
    for x in ev.person_logins:
        app = x.get("application")
        if app and app.lower() in people:
            parts.append(f"{x['count']} login(s) through {app}, a Salesforce app for people")
        else:
            parts.append(f"{x['count']} {x['type']} login(s)" + (f" through {app}" if app else ""))
    return "a person: " + "; ".join(parts)


def grants_of(inv: Inventory, user: User) -> list[Grant]:
    """The user's permission sets, groups, permission set licenses and package licenses, each with
    whether it can come along to the Salesforce Integration license (:func:`license_rules.classify_license`)."""
    user_licenses = frozenset(lic.name for lic in inv.user_licenses)
    psl_available = {p.name: bool(p.for_integrations) for p in inv.psls}
    out: list[Grant] = []
    mine: list[Assignment] = inv.of_user(inv.assignments, user.id)
    for a in sorted((a for a in mine if not a.owned and not a.group_id), key=lambda a: a.ps_name):
        lic = inv.license_name(a.license_id)
        v = rules.classify_license(lic, a.ps_name, user_licenses=user_licenses, psl_available=psl_available)
        out.append(Grant("PermissionSet", a.ps_name, v.verdict, v.reason, lic))
    order = {"assignable": 0, "needs-rewrite": 1, "blocked": 2}
    for a in sorted((a for a in mine if a.group_id), key=lambda a: a.group_name or ""):
        worst, why = "assignable", []
        for c in (c for c in inv.components if c.group_id[:15] == (a.group_id or "")[:15]):
            lic = inv.license_name(c.license_id)
            v = rules.classify_license(lic, c.ps_name, user_licenses=user_licenses, psl_available=psl_available)
            if v.verdict != "assignable":
                why.append(f"{c.ps_name}: {v.reason}")
            if order[v.verdict] > order[worst]:
                worst = v.verdict
        out.append(Grant("PermissionSetGroup", a.group_name or a.ps_name, worst,
                         "; ".join(why) or "all its permission sets are assignable"))
    needed = {g.license for g in out if g.license}
    for p in sorted(inv.of_user(inv.psl_assignments, user.id), key=lambda p: p.psl_name):
        psl = inv.psl(p.psl_name)
        if p.psl_name == rules.INTEGRATION_PSL:
            out.append(Grant("PermissionSetLicense", p.psl_name, "assignable", "the Salesforce API Integration PSL"))
        elif psl is not None and psl.for_integrations:
            out.append(Grant("PermissionSetLicense", p.psl_name, "assignable",
                             "available for integrations (IsAvailableForIntegrations)"))
        elif p.psl_name in needed:   # the permission set bound to it is reported blocked
            out.append(Grant("PermissionSetLicense", p.psl_name, "removed",
                             "not available for integration users (PermissionSetLicense.IsAvailableForIntegrations "
                             "is false); the permission set that needs it is blocked"))
        else:
            out.append(Grant("PermissionSetLicense", p.psl_name, "removed",
                             "not available for integration users, and no permission set of the user needs it: "
                             "it goes with the move"))
    for pkg in sorted(inv.of_user(inv.package_assignments, user.id), key=lambda p: p.namespace):
        out.append(Grant("PackageLicense", pkg.namespace, "kept",
                         "a managed package license; re-granted after the move if the change removes it"))
    return out


def discover(inv: Inventory, opts: Options, *, run_as: Mapping[str, list[str]] | None = None,
             login_policies: Mapping[str, dict[str, Any]] | None = None) -> Discovery:
    """Classify every user the inventory holds. ``run_as`` maps a lower-case username to the
    client-credentials connected apps that run as it; ``login_policies`` maps a profile name to its
    login IP ranges and hours (:meth:`LoginPolicy.to_dict`)."""
    run_as = run_as or {}
    policies = login_policies or {}
    people = {a.lower() for a in opts.people_apps}
    edition = inv.org.edition
    candidates: list[Candidate] = []
    dormant: list[dict[str, Any]] = []
    excluded: list[dict[str, Any]] = []
    for user in sorted(inv.users, key=lambda u: u.username.lower()):
        if not user.active:
            excluded.append({"username": user.username, "reason": "inactive: holds no seat"})
            continue
        if user.user_type and user.user_type != "Standard":
            excluded.append({"username": user.username, "reason": f"not an internal user ({user.user_type})"})
            continue
        if user.license == rules.INTEGRATION_USER_LICENSE:
            excluded.append({"username": user.username, "reason": "already on the Salesforce Integration license"})
            continue
        ev = evidence_of(inv, user, opts, run_as)
        if ev.person_logins:
            excluded.append({"username": user.username, "reason": _person_reason(ev, people),
                             "evidence": ev.to_dict()})
            continue
        price, source = price_of(user.license, edition, opts.prices)
        if not ev.api_logins:
            if ev.api_only or ev.run_as:
                why = f"API Only User ({ev.api_only})" if ev.api_only else "run-as user of " + ", ".join(ev.run_as)
                dormant.append({"username": user.username, "license": user.license, "profile": user.profile,
                                "reason": f"{why}, but no login in the last {inv.days} days",
                                "alternative": "deactivate it to free its seat, if nothing uses it any more",
                                "monthlyPrice": price, "lastLogin": user.last_login, "evidence": ev.to_dict()})
            else:
                excluded.append({"username": user.username,
                                 "reason": f"no API login in the last {inv.days} days and no API Only User: "
                                           "no evidence either way"})
            continue
        c = Candidate(user, ev, policies.get(user.profile), grants_of(inv, user), price=price)
        apps = ev.applications
        if len(apps) > 1:
            c.shared = apps
        for g in c.grants:
            if g.verdict == "blocked":
                c.blockers.append(f"{g.kind} {g.name}: {g.reason}")
        candidates.append(c)
    # seats and money count the candidates that can move, as plan does (a blocked one keeps its license)
    return Discovery(candidates, dormant, excluded, seats_of(inv, sum(1 for c in candidates if not c.blockers)),
                     money_of(inv, candidates, opts), [RENEWAL_NOTE])


def seats_of(inv: Inventory, wanted: int) -> dict[str, Any]:
    lic = inv.user_license(rules.INTEGRATION_USER_LICENSE)
    psl = inv.psl(rules.INTEGRATION_PSL)
    out: dict[str, Any] = {"candidates": wanted}
    for key, s in (("integrationLicense", lic), ("integrationPsl", psl)):
        if s is None:
            out[key] = None
            continue
        out[key] = {"name": s.name, "total": s.total, "used": s.used, "free": s.free,
                    "fit": min(wanted, s.free), "toBuy": max(wanted - s.free, 0)}
    return out


def money_of(inv: Inventory, candidates: Iterable[Candidate], opts: Options) -> dict[str, Any]:
    """Yearly list-price saving if every candidate that can move does: the candidates a blocker holds
    back are left out (so discover and plan count the same users)."""
    movable = [c for c in candidates if not c.blockers]
    return savings(inv, [c.user.license for c in movable], opts.prices,
                   f"the {len(movable)} candidate(s) with no blocker")


def savings(inv: Inventory, licenses: Sequence[str], prices: Mapping[str, float], counts: str) -> dict[str, Any]:
    """The one saving figure discover, plan and the report give: the seats freed on the users' old
    licenses (``licenses``, one per user), less the Salesforce Integration seats to buy beyond the free
    ones, at list prices a year. ``counts`` says which users it counts."""
    freed: dict[str, dict[str, Any]] = {}
    unpriced: list[str] = []
    for license_name in licenses:
        price, source = price_of(license_name, inv.org.edition, prices)
        if price is None:
            unpriced.append(license_name)
            continue
        row = freed.setdefault(license_name, {"license": license_name, "seats": 0, "monthlyPrice": price,
                                              "source": source})
        row["seats"] += 1
    lic = inv.user_license(rules.INTEGRATION_USER_LICENSE)
    free = lic.free if lic else 0
    to_buy = max(len(licenses) - free, 0)
    seat_price, seat_source = price_of(rules.INTEGRATION_USER_LICENSE, inv.org.edition, prices)
    gross = sum(r["seats"] * r["monthlyPrice"] * 12 for r in freed.values())
    cost = to_buy * (seat_price or 0.0) * 12
    return {"currency": "USD", "users": len(licenses), "counts": counts,
            "freedSeats": sorted(freed.values(), key=lambda r: r["license"]),
            "unpricedLicenses": sorted(set(unpriced)), "integrationSeatsToBuy": to_buy,
            "integrationSeatPrice": seat_price, "integrationSeatSource": seat_source,
            "includedIntegrationSeats": free_integration_seats(inv.org.edition),
            "yearlyGross": round(gross, 2), "yearlyCost": round(cost, 2), "yearlySaving": round(gross - cost, 2),
            "note": RENEWAL_NOTE}
