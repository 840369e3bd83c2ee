"""Reading an org in as few sf calls as possible: the rounds of :mod:`.inventory` with the metadata
retrieves that can run beside them.

``discover`` makes 4 sf calls whatever the number of users: ``sf org list auth`` (which org), one
Composite Batch round for the org and its users (:func:`inventory.read_org`), then, side by side, a
second round for the users with evidence of API use (:func:`inventory.read_users`) and one retrieve
of their profiles (login IP ranges and hours always come back with a profile) and of every
connected app (which ones run as a user, what they pre-authorize). Pages beyond 2,000 rows, more than
200 users with evidence, and an org where more than 2,000 users log in over the API add a call each.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from sf_intuser.metadata import connected_app, package_xml
from sf_intuser.metadata import license_rules as rules
from sf_intuser.metadata.naming import retrievable
from sf_intuser.metadata.profile import login_policy
from sf_intuser.metadata.xml import MetadataXmlError, parse
from sf_intuser.org import discover as discover_mod
from sf_intuser.org import inventory
from sf_intuser.org.model import Inventory, Org
from sf_intuser.sf import commands
from sf_intuser.sf.runner import SfConnectionError, SfError, SfRunner
from sf_intuser.sf.soql import quote

Progress = Callable[[str], None]


def connect(runner: SfRunner, target_org: str | None, api_version: str = inventory.API_VERSION) -> Org:
    """The org ``-o`` names, else sf's configured target-org (``sf org list auth``: local files, one
    call); and a quick check that it answers, since sf itself retries a dead instance for half a minute."""
    auth = commands.target_org(runner, target_org)
    why = commands.unreachable(auth.instance_url)
    if why:
        name = auth.alias or auth.username
        fix = (f"Start the emulated org again: sf-intuser emulator serve --alias {name}"
               if commands.is_local(auth.instance_url) else
               "Check the network (VPN, proxy) and the org's My Domain URL, then run this again")
        raise SfConnectionError("OrgUnreachable", f"org {name} at {auth.instance_url} does not answer: {why}", 1,
                                actions=[fix])
    return Org(auth.org_id, "", "", False, auth.instance_url, auth.username, auth.alias, api_version)


@dataclass
class Retrieved:
    """Metadata read from the org: name -> bytes per type, and what the org did not have."""

    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    root: Path | None = None


def retrieve(runner: SfRunner, org: Org, manifest: bytes, into: Path | None = None) -> Retrieved:
    """One retrieve of ``manifest`` (package.xml bytes). ``into``: the folder to keep the files in
    (mdapi format); without it they are read and the temporary folder removed."""
    from urllib.parse import unquote

    from sf_intuser.workspace import classify_path, read_bytes

    from sf_intuser import tempfiles

    work = tempfiles.new_dir("retrieve")
    try:
        (work / "package.xml").write_bytes(manifest)
        res = commands.retrieve(runner, work / "package.xml", org.alias or org.username, work / "out")
        out = Retrieved(missing=res.missing)
        for f in res.files:
            mf = classify_path(f)
            if mf is not None and mf.format == "mdapi":
                # a profile's file name is its API name as the Metadata API spells it (Custom%3A Sales)
                name = f.name.rsplit(".", 1)[0] if mf.type == "Profile" else unquote(mf.name)
                out.files.setdefault(mf.type, {})[name] = read_bytes(f)
        if into is not None:
            into.mkdir(parents=True, exist_ok=True)
            for f in res.files:
                dest = into / f.relative_to(res.root)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, dest)
            out.root = into
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_as_users(apps: dict[str, bytes]) -> dict[str, list[str]]:
    """Lower-case username -> the client-credentials connected apps that run as that user."""
    out: dict[str, list[str]] = {}
    for name, data in apps.items():
        try:
            app = connected_app.read(data, name)
        except MetadataXmlError:
            continue
        if app.client_credentials_user:
            out.setdefault(app.client_credentials_user.lower(), []).append(app.label or name)
    return out


def policies_of(profiles: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, data in profiles.items():
        try:
            out[name] = login_policy(parse(data, f"Profile {name}").root).to_dict()
        except MetadataXmlError:
            continue
    return out


def with_evidence(inv: Inventory, usernames: Iterable[str] = ()) -> list[str]:
    """Ids of the active internal users not on the integration license that show API use (or are named)."""
    named = {u.lower() for u in usernames}
    api_profiles = set(inv.api_only_profiles)
    evidence = set(inv.api_login_users) | set(inv.api_only_users)
    return sorted(u.id for u in inv.users if u.active and u.license != rules.INTEGRATION_USER_LICENSE and (
        u.id in evidence or u.profile_id in api_profiles or u.username.lower() in named))


def discover(runner: SfRunner, org: Org, opts: discover_mod.Options,
             progress: Progress = lambda _m: None) -> tuple[Inventory, discover_mod.Discovery]:
    progress("Reading the org's users, licenses and API logins")
    with ThreadPoolExecutor(max_workers=1) as pool:
        names = pool.submit(profile_names, runner, org)
        inv = inventory.read_org(runner, org, days=opts.days, api_login_types=opts.api_login_types)
        inv.set_profile_names(names.result())
    ids = with_evidence(inv)
    by_api = profiles_by_api_name(inv, ids)
    manifest = package_xml.build({"Profile": sorted(p for p in by_api if retrievable(p)), "ConnectedApp": ["*"]},
                                 org.api_version)
    progress(f"Reading {len(ids)} user(s) with signs of API use, and their profiles")
    with ThreadPoolExecutor(max_workers=2) as pool:
        meta = pool.submit(retrieve, runner, org, manifest)
        inventory.read_users(runner, inv, ids)
        got = meta.result()
    run_as = run_as_users(got.files.get("ConnectedApp", {}))
    late = with_evidence(inv, run_as) if run_as else []
    late = [i for i in late if i not in set(ids)]
    if late:   # a run-as user without API Only User or API logins: read it too
        inventory.read_users(runner, inv, late)
    policies = policies_of(got.files.get("Profile", {}))
    result = discover_mod.discover(inv, opts, run_as=run_as,
                                   login_policies={label: policies[api] for api, label in by_api.items() if api in policies})
    return inv, result


def profile_names(runner: SfRunner, org: Org) -> list[dict[str, Any]]:
    """Every profile's Metadata API name and id, in one call (``sf org list metadata -m Profile``): SOQL's
    ``Profile.Name`` is a label, translated into the reader's language, and a retrieve by it fails
    ("Entity of type 'Profile' named 'System Administrator' cannot be found": salesforce.stackexchange
    q 113370); the Metadata API knows System Administrator as ``Admin``."""
    return commands.list_metadata(runner, "Profile", org.alias or org.username, org.api_version)


def profiles_by_api_name(inv: Inventory, user_ids: Iterable[str]) -> dict[str, str]:
    """API name -> label of the profiles of ``user_ids``. A profile the org does not list is an error:
    retrieving it by its label would fetch nothing (or another profile)."""
    wanted = set(user_ids)
    out: dict[str, str] = {}
    for u in inv.users:
        if u.id not in wanted:
            continue
        api = inv.profile_api_name(u.profile_id, u.profile)
        if not api:
            raise SfError("ProfileNotListed", f"the org does not list the Metadata API name of profile "
                                   f"{u.profile!r} ({u.profile_id}), the profile of {u.username}", 1,
                                   actions=["Check it with: sf org list metadata --metadata-type Profile --target-org "
                                            + (inv.org.alias or inv.org.username),
                                            "The user running sf needs View Setup and Configuration to list profiles"])
        out[api] = u.profile
    return out


# --- seats ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seats:
    name: str
    total: int
    used: int

    @property
    def free(self) -> int:
        return max(self.total - self.used, 0)


def seats(runner: SfRunner, target_org: str | None) -> tuple[Seats | None, Seats | None]:
    """Seats of the Salesforce Integration user license and of ``SalesforceAPIIntegrationPsl``
    (docs/salesforce-facts.md A5 seat queries); None where the org has no such license."""
    lic = commands.query(runner, "SELECT Name, TotalLicenses, UsedLicenses FROM UserLicense WHERE Name = "
                + quote(rules.INTEGRATION_USER_LICENSE), target_org)
    psl = commands.query(runner, "SELECT DeveloperName, TotalLicenses, UsedLicenses FROM PermissionSetLicense "
                "WHERE DeveloperName = " + quote(rules.INTEGRATION_PSL), target_org)
    a = Seats(lic[0]["Name"], int(lic[0]["TotalLicenses"] or 0), int(lic[0]["UsedLicenses"] or 0)) if lic else None
    b = Seats(psl[0]["DeveloperName"], int(psl[0]["TotalLicenses"] or 0),
              int(psl[0]["UsedLicenses"] or 0)) if psl else None
    return a, b
