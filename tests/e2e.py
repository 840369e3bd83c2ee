"""What end-to-end tests share: the pinned sf CLI, a logged-in emulated org per test module, and
helpers that read the org's state the way a careful tool does (a user's profile-owned permission set
is not one of its assignments)."""

from __future__ import annotations

import os

import pytest

from sf_intuser.emulator import seed
from sf_intuser.emulator.objects import FEATURE_LICENSES as FEATURES
from sf_intuser.emulator.server import EmulatedOrg
from sf_intuser.metadata import package_xml
from sf_intuser.sf.runner import SfRunner
from tests.conftest import ROOT

SHIM = ROOT / ".venv" / "bin" / "sf"
ORG = "emu"
needs_cli = [pytest.mark.e2e,
             pytest.mark.skipif(not SHIM.exists(), reason="the pinned sf CLI is not installed (run `make setup`)")]


def sf_env(home, token: str | None = None) -> dict[str, str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "SF_USE_GENERIC_UNIX_KEYCHAIN": "true"}
    if token:
        env["SF_ACCESS_TOKEN"] = token
    return env


def start_org(home, alias: str = ORG, instance: str | None = None, dev_hub: bool = False,
              **seed_args) -> tuple[EmulatedOrg, SfRunner]:
    """An emulated org (a Dev Hub with ``dev_hub``), and sf logged in to it under ``alias`` in ``home``."""
    state = seed.load(instance=instance, **seed_args)
    state.options.dev_hub = dev_hub
    emu = EmulatedOrg(state, max_seconds=900).start()
    runner = SfRunner(sf=str(SHIM), env=sf_env(home, emu.access_token()), timeout=120)
    login = runner.run(["org", "login", "access-token", "--instance-url", emu.url, "--no-prompt", "--alias", alias])
    assert login.result["username"] == emu.state.username
    return emu, runner


def user(emu, username):
    return emu.state.one("User", Username=username)


def assigned(emu, username):
    """The permission sets assigned to a user, without its profile's own (every user has that one)."""
    uid = user(emu, username)["Id"]
    sets = (emu.state.get(a["PermissionSetId"]) for a in emu.state.find("PermissionSetAssignment", AssigneeId=uid))
    return sorted(ps["Name"] for ps in sets if not ps["IsOwnedByProfile"])


def psl_assigned(emu, username):
    uid = user(emu, username)["Id"]
    return sorted(emu.state.get(a["PermissionSetLicenseId"])["DeveloperName"]
                  for a in emu.state.find("PermissionSetLicenseAssign", AssigneeId=uid))


def mdapi(tmp_path, files):
    """A Metadata API format folder: ``{(type, name, folder, suffix): body}`` plus its package.xml."""
    root = tmp_path / "deploy"
    members = {}
    for (mtype, name, folder, suffix), body in files.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / f"{name}.{suffix}").write_text(body)
        members.setdefault(mtype, []).append(name)
    (root / "package.xml").write_bytes(package_xml.build(members, "62.0"))
    return root


EXE = ROOT / ".venv" / "bin" / "sf-intuser"


def intuser(home, *args: str, timeout: float = 300, cwd=None):
    """``sf-intuser ARGS`` as a user runs it, with the pinned sf CLI and ``home`` as the sf home."""
    import subprocess

    from tests.contracts import check_json_output

    env = {**sf_env(home), "SF_INTUSER_SF": str(SHIM)}
    out = subprocess.run([str(EXE), *args], env=env, capture_output=True, text=True, timeout=timeout,
                         cwd=cwd or str(home))
    # every --json answer an end-to-end test reads is checked against its committed schema (docs/schemas)
    if "--json" in args:
        bad = check_json_output(args, out.stdout)
        assert not bad, f"sf-intuser {' '.join(map(str, args))}: --json differs from docs/schemas: {bad}"
    return out


def holds(emu, plan: dict) -> dict[str, str]:
    """Per planned user, read from the org itself: ``target`` (exactly what the plan moves it to),
    ``snapshot`` (exactly what it had), or ``mix: ...`` naming what is neither."""
    st = emu.state
    out = {}
    before = {b["userId"]: b for b in plan["rollback"]["users"]}
    for u in (x for x in plan["users"] if x["status"] == "planned"):
        rec = st.get(u["id"])
        profile = st.get(rec["ProfileId"])["Name"]
        sets, groups = set(), set()
        for a in st.find("PermissionSetAssignment", AssigneeId=u["id"]):
            ps = st.get(a["PermissionSetId"])
            if ps.get("IsOwnedByProfile"):
                continue
            if a.get("PermissionSetGroupId"):
                groups.add(st.get(a["PermissionSetGroupId"])["DeveloperName"])
            else:
                sets.add(ps["Name"])
        psls = {st.get(a["PermissionSetLicenseId"])["DeveloperName"]
                for a in st.find("PermissionSetLicenseAssign", AssigneeId=u["id"])}
        b = before[u["id"]]
        # the user record: role, public groups and queues, feature licenses (absent in older plans)
        role_same = "roleId" not in b or (rec.get("UserRoleId") or None) == (b["roleId"] or None)
        members = {m["GroupId"][:15] for m in st.find("GroupMember", UserOrGroupId=u["id"])}
        was_members = {m["groupId"][:15] for m in b.get("memberships") or ()}
        features = {f for f in FEATURES if rec.get(f)}
        record_snap = role_same and members == was_members and features == set(b.get("featureLicenses") or ())
        record_target = role_same and was_members <= members and features <= set(b.get("featureLicenses") or ())
        pid = rec["ProfileId"][:15]
        snap = record_snap and (pid == b["profileId"][:15] and sets == {p["name"] for p in b["permissionSets"]}
                and groups == {g["name"] for g in b["groups"]} and psls == {p["name"] for p in b["permissionSetLicenses"]})
        to = u["to"]
        access_ok = all(
            any(x["SetupEntityId"][:15] == a["entityId"][:15]
                for x in st.find("SetupEntityAccess", ParentId=(st.one("PermissionSet", Name=a["permissionSet"],
                                                                       IsOwnedByProfile=False) or {}).get("Id")))
            for a in to["access"])
        target = record_target and ((pid == to["profileId"][:15]) if to.get("profileId") else
                                    profile == to["profile"]) and (sets == {a["permissionSet"] for a in to["assign"]}
                  and groups == {g["group"] for g in to["groups"]} and "SalesforceAPIIntegrationPsl" in psls
                  and access_ok)
        out[u["username"]] = "target" if target else "snapshot" if snap else (
            f"mix: profile {profile}, sets {sorted(sets)}, groups {sorted(groups)}, licenses {sorted(psls)}, "
            f"access {'ok' if access_ok else 'missing'}, role {rec.get('UserRoleId')}, members {sorted(members)}, "
            f"features {sorted(features)}")
    return out
