"""The read side without a server: discover's classification, the config file, the planner, the
snapshot on disk and run folders (inventories built by hand: tests/readside.py)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sf_intuser import config, runs
from sf_intuser.metadata import access, license_rules as rules
from sf_intuser.metadata.xml import parse
from sf_intuser.migrate import plan as plan_mod
from sf_intuser.org import discover as disc
from sf_intuser.org import snapshot as snap_mod
from sf_intuser.runs import snapshot as snap_files
from tests.readside import LIC_INT, LIC_SF, PSL_CPQ, Builder, group_xml, profile_xml, set_xml

UI = ("Application", None, 3)


def plan_of(b: Builder, users, **kw) -> plan_mod.Plan:
    return plan_mod.make_plan(b.inv, b.metadata, plan_mod.Request(list(users), "2026-11-23T10:00:00Z", "0.1.0", **kw))


def by_user(p: plan_mod.Plan) -> dict[str, dict]:
    return {u["username"]: u for u in p.data["users"]}


# --- discover -------------------------------------------------------------------------------------


def test_discover_sorts_every_user_into_one_list_with_the_reason():
    b = Builder()
    b.profile("API Profile", perms=("ApiEnabled", "ApiUserOnly"))
    b.inv.api_only_profiles = [b._profiles["API Profile"]]
    b.user("int@x.com", "Integration")
    b.user("person@x.com", "Sales", logins=(UI, ("Remote Access 2.0", "Dataloader Partner", 4)))
    b.user("mobile@x.com", "Sales", logins=(("Remote Access 2.0", "Salesforce for iOS", 30),))
    b.user("dormant@x.com", "API Profile", logins=())
    b.user("quiet@x.com", "Sales", logins=())
    b.user("moved@x.com", "Minimum", license=LIC_INT)
    b.user("gone@x.com", "Sales", active=False)
    d = disc.discover(b.inv, disc.Options())
    assert [c.user.username for c in d.candidates] == ["int@x.com"]
    assert [x["username"] for x in d.dormant] == ["dormant@x.com"]
    reasons = {x["username"]: x["reason"] for x in d.excluded}
    assert set(reasons) == {"person@x.com", "mobile@x.com", "quiet@x.com", "moved@x.com", "gone@x.com"}
    assert reasons["person@x.com"].startswith("a person") and "Application" in reasons["person@x.com"]
    assert "Salesforce for iOS, a Salesforce app for people" in reasons["mobile@x.com"]
    assert "no evidence either way" in reasons["quiet@x.com"]
    assert "already on the Salesforce Integration license" in reasons["moved@x.com"]


def test_the_people_apps_list_is_the_configs_when_given():
    b = Builder()
    b.user("mobile@x.com", "Sales", logins=(("Remote Access 2.0", "Salesforce for iOS", 30),))
    b.user("erp@x.com", "Sales", logins=(("Remote Access 2.0", "ERP Connector", 30),))
    d = disc.discover(b.inv, disc.Options(people_apps=("ERP Connector",)))
    assert [c.user.username for c in d.candidates] == ["mobile@x.com"]
    d = disc.discover(b.inv, disc.Options(api_login_types=("Other Apex API",)))
    assert d.candidates == []


def test_shared_users_blockers_seats_and_money():
    b = Builder(int_free=1, psl_free=1)
    b.user("a@x.com", "P", logins=(("Remote Access 2.0", "App One", 5), ("Other Apex API", "App Two", 5)))
    b.user("b@x.com", "P", sets=[("CPQ_Set", PSL_CPQ.id)], psls=[PSL_CPQ])
    d = disc.discover(b.inv, disc.Options(prices={"Salesforce": 100}))
    a, bb = d.candidates
    assert a.shared == ["App One", "App Two"] and bb.shared == []
    assert bb.blockers and "CPQ_Set" in bb.blockers[0]
    # b is blocked (CPQ): seats and money count a alone, as a plan of both would
    assert d.seats["integrationLicense"] == {"name": "Salesforce Integration", "total": 2, "used": 1, "free": 1,
                                             "fit": 1, "toBuy": 0}
    assert d.money["yearlyGross"] == 1 * 100 * 12 and d.money["users"] == 1
    assert d.money["yearlyCost"] == 0 and d.money["yearlySaving"] == 1200
    assert "renewal" in d.money["note"]


def test_prices_come_with_their_source_and_unknown_licenses_say_so():
    price, source = disc.price_of("Salesforce", "Unlimited Edition", {})
    assert price == 350 and "2025" in source
    assert disc.price_of("Salesforce", "Enterprise Edition", {"Salesforce": 99})[0] == 99
    price, source = disc.price_of("Some Odd License", "Enterprise Edition", {})
    assert price is None and "[prices]" in source
    assert disc.free_integration_seats("Developer Edition") == 1 and disc.free_integration_seats("x") == 5


# --- config --------------------------------------------------------------------------------------


GOOD = """
[discover]
days = 30
people-apps = ["Salesforce for iOS"]

[prices]
"Salesforce" = 150

[[users]]
username = "a@x.com"
permission-set = "A_Access"
keep = ["Sync_Reader"]

[[users]]
username = "b@x.com"
drop = ["Legacy"]
add-ip-ranges = ["203.0.113.0-203.0.113.255", {start = "198.51.100.7", description = "one"}]
"""


def test_config_reads_every_key():
    cfg = config.parse(GOOD)
    assert cfg.days == 30 and cfg.people_apps == ("Salesforce for iOS",) and cfg.prices == {"Salesforce": 150.0}
    a, b = cfg.users
    assert (a.permission_set, a.keep, a.drop) == ("A_Access", ("Sync_Reader",), ())
    assert b.keep is None and b.drop == ("Legacy",)
    assert b.add_ip_ranges == (config.IpRange("203.0.113.0", "203.0.113.255"),
                               config.IpRange("198.51.100.7", "198.51.100.7", "one"))


@pytest.mark.parametrize("change,where", [
    (('keep = ["Sync_Reader"]', 'kep = ["Sync_Reader"]'), "line 12: users[0].kep: unknown key"),
    (('days = 30', 'days = 400'), "line 3: discover.days"),
    (('"Salesforce" = 150', '"Salesforce" = "cheap"'), "line 7: prices.Salesforce"),
    (('permission-set = "A_Access"', 'permission-set = "A__Access"'), "line 11: users[0].permission-set"),
    (('203.0.113.0-203.0.113.255', '203.0.113.9-203.0.113.1'), "line 17: users[1].add-ip-ranges"),
    (('drop = ["Legacy"]', 'drop = ["Legacy"]\nkeep = ["Other"]'), "users[1].drop: keep and drop are one or the other"),
    (('"Salesforce" = 150', '"Salesforce" = nan'), "line 7: prices.Salesforce"),
    (('"Salesforce" = 150', '"Salesforce" = 1e308'), "line 7: prices.Salesforce"),
    (('"Salesforce" = 150', '"Salesforce" = inf'), "line 7: prices.Salesforce"),
    (('203.0.113.0-203.0.113.255', '0.0.0.0-255.255.255.255'), "line 17: users[1].add-ip-ranges: "
                                                                "'0.0.0.0-255.255.255.255' covers 4,294,967,296"),
    (('username = "b@x.com"', 'username = "A@x.com"'), "line 15: users[1].username: A@x.com is listed twice"),
    (('[prices]', '[prices'), "not valid TOML"),
])
def test_a_bad_config_names_the_key_and_the_line(change, where):
    with pytest.raises(config.ConfigError) as err:
        config.parse(GOOD.replace(*change))
    assert where in str(err.value)


def test_the_config_is_found_in_the_project_root(tmp_path):
    (tmp_path / "sfdx-project.json").write_text("{}")
    (tmp_path / config.FILE_NAME).write_text(GOOD)
    deep = tmp_path / "force-app" / "main"
    deep.mkdir(parents=True)
    assert config.find(deep) == tmp_path / config.FILE_NAME
    assert config.find(tmp_path.parent) is None


# --- the planner ----------------------------------------------------------------------------------


def acme_like(**kw) -> Builder:
    b = Builder(**kw)
    b.profile("Middleware", perms=("ApiEnabled", "ApiUserOnly", "ViewSetup", "LightningExperienceUser"),
              ranges=[("203.0.113.0", "203.0.113.63")])
    b.profile("Loader", perms=("ApiEnabled", "ApiUserOnly"), ranges=[("203.0.113.0", "203.0.113.63")])
    b.profile("Reports", perms=("ApiEnabled", "ViewSetup"))
    b.metadata["PermissionSet"]["Order_Sync"] = set_xml("Order Sync", perms=("ApiEnabled", "FreezeUsers"),
                                                        license="Salesforce")
    b.metadata["PermissionSet"]["Reader"] = set_xml("Reader", perms=("ApiEnabled",))
    b.metadata["PermissionSetGroup"]["Bundle"] = group_xml("Bundle", ["Order_Sync", "Reader"])
    b.user("mw@x.com", "Middleware", sets=[("Order_Sync", LIC_SF.id), ("Reader", None)])
    b.user("etl@x.com", "Loader", groups=[("Bundle", [("Order_Sync", LIC_SF.id), ("Reader", None)])])
    b.user("rep@x.com", "Reports")
    return b


def test_each_user_gets_an_api_only_profile_by_login_policy_and_a_set_from_its_profile():
    p = plan_of(acme_like(), ["mw@x.com", "etl@x.com", "rep@x.com"])
    u = by_user(p)
    assert p.data["summary"] == {"users": 3, "planned": 3, "blocked": 0, "generated": 6}
    assert u["rep@x.com"]["to"]["profile"] == rules.STANDARD_API_PROFILE
    assert u["mw@x.com"]["to"]["profile"] == u["etl@x.com"]["to"]["profile"] == "API Only - Loader"
    assert u["mw@x.com"]["to"]["permissionSet"] == "Middleware_Intuser"
    assigned = {a["permissionSet"]: a["why"] for a in u["mw@x.com"]["to"]["assign"]}
    assert assigned == {"Middleware_Intuser": "made from profile Middleware",
                        "Order_Sync_Intuser": "license-less copy of Order_Sync", "Reader": "as it is"}
    assert u["etl@x.com"]["to"]["groups"] == [{"group": "Bundle_Intuser", "expires": None,
                                               "why": "rebuilt from Bundle"}]
    group = parse(p.files["permissionsetgroups/Bundle_Intuser.permissionsetgroup"]).root
    assert [m.text for m in group.findall("{*}permissionSets")] == ["Order_Sync_Intuser", "Reader"]
    profile = parse(p.files["profiles/API Only - Loader.profile"]).root
    assert profile.findtext("{*}userLicense") == rules.INTEGRATION_USER_LICENSE
    assert profile.findtext("{*}loginIpRanges/{*}startAddress") == "203.0.113.0"
    pkg = p.files["package.xml"].decode()
    assert "<name>PermissionSetGroup</name>" in pkg and "API Only - Loader" in pkg


def test_what_the_org_refuses_is_left_out_and_listed():
    b = acme_like(maximum={"ViewSetup": True, "ApiEnabled": True, "FreezeUsers": False,
                           "LightningExperienceUser": False},
                  known=["ApiEnabled", "ApiUserOnly", "ViewSetup", "FreezeUsers"])
    p = plan_of(b, ["mw@x.com"])
    dropped = {(d["name"], d.get("from")): d["rule"] for d in by_user(p)["mw@x.com"]["dropped"]}
    assert dropped[("LightningExperienceUser", None)] == "unknown-in-org"
    assert dropped[("FreezeUsers", "Order_Sync")] == "psl-maximum"
    for path, data in p.files.items():
        if path.startswith("permissionsets/"):
            names = {g.key for g in access.grants(parse(data).root, "PermissionSet") if g.section == "userPermissions"}
            assert not names & {"FreezeUsers", "LightningExperienceUser", "ApiUserOnly"}, path


def test_a_license_less_set_with_a_refused_permission_is_copied_not_kept():
    b = Builder(maximum={"ApiEnabled": True, "ManageUsers": False})
    b.metadata["PermissionSet"]["Admin_Bits"] = set_xml("Admin Bits", perms=("ApiEnabled", "ManageUsers"))
    b.user("u@x.com", "P", sets=[("Admin_Bits", None)])
    u = by_user(plan_of(b, ["u@x.com"]))["u@x.com"]
    assert [a["permissionSet"] for a in u["to"]["assign"]] == ["P_Intuser", "Admin_Bits_Intuser"]
    assert "ManageUsers" in u["rewritten"][1]["reason"]


@pytest.mark.parametrize("setup,problem", [
    (lambda b: None, "no user 'nobody@x.com'"),
    (lambda b: b.user("nobody@x.com", "P", active=False), "inactive"),
    (lambda b: b.user("nobody@x.com", "P", license=LIC_INT), "already on the Salesforce Integration license"),
    (lambda b: b.user("nobody@x.com", "P", logins=(UI,)), "a UI login inside the window"),
    (lambda b: b.user("nobody@x.com", "P", sets=[("CPQ_Set", PSL_CPQ.id)]), "CPQ_Set"),
    (lambda b: (b.metadata["PermissionSetGroup"].__setitem__("Muted", group_xml("Muted", ["S"], muting=["M"])),
                b.metadata["PermissionSet"].__setitem__("S", set_xml("S", license="Salesforce")),
                b.user("nobody@x.com", "P", groups=[("Muted", [("S", LIC_SF.id)])])), "mutes permissions"),
])
def test_blockers_name_the_problem_and_the_fix(setup, problem):
    b = Builder()
    b.user("fine@x.com", "Q")
    setup(b)
    p = plan_of(b, ["fine@x.com", "nobody@x.com"])
    u = by_user(p)
    assert u["fine@x.com"]["status"] == "planned"
    assert u["nobody@x.com"]["status"] == "blocked"
    blocker = u["nobody@x.com"]["blockers"][0]
    assert problem in blocker["problem"] and blocker["fix"]
    assert "to" not in u["nobody@x.com"]
    # nothing is generated for a blocked user (its profile is P, the planned one's Q)
    sources = {g["source"] for g in p.data["generated"]}
    assert "profile Q" in sources and "profile P" not in sources


def test_users_beyond_the_free_seats_are_blocked_with_how_many_to_buy():
    b = Builder(int_free=2)
    for name in ("c@x.com", "a@x.com", "b@x.com"):
        b.user(name, "P")
    u = by_user(plan_of(b, ["c@x.com", "a@x.com", "b@x.com"]))
    assert [u[n]["status"] for n in ("a@x.com", "b@x.com", "c@x.com")] == ["planned", "planned", "blocked"]
    assert "Buy 1 more Salesforce Integration seat" in u["c@x.com"]["blockers"][0]["fix"]


def test_overrides_name_the_set_choose_the_sets_and_add_ip_ranges():
    b = acme_like()
    ov = {"mw@x.com": config.UserConfig("mw@x.com", permission_set="MW_Access", keep=("Reader",),
                                        add_ip_ranges=(config.IpRange("198.51.100.1", "198.51.100.1"),))}
    u = by_user(plan_of(b, ["mw@x.com", "etl@x.com"], overrides=ov))
    mw = u["mw@x.com"]
    assert mw["to"]["permissionSet"] == "MW_Access"
    assert [a["permissionSet"] for a in mw["to"]["assign"]] == ["MW_Access", "Reader"]
    assert {"kind": "PermissionSet", "name": "Order_Sync", "reason": "left out by sf-intuser.toml (keep/drop)"} in \
        mw["dropped"]
    assert mw["to"]["profile"] != u["etl@x.com"]["to"]["profile"]   # its policy differs now


def test_names_are_stable_and_never_taken_from_another_source():
    b = acme_like()
    from sf_intuser.org.model import NamedRecord

    b.inv.generated_sets.append(NamedRecord("0PS000000000777AAA", "Middleware_Intuser", "x",
                                            "Generated by sf-intuser from profile Middleware for the Salesforce "
                                            "Integration license"))
    b.inv.generated_sets.append(NamedRecord("0PS000000000778AAA", "Reports_Intuser", "x", "a hand-made set"))
    p = plan_of(b, ["mw@x.com", "rep@x.com"])
    u = by_user(p)
    assert u["mw@x.com"]["to"]["permissionSet"] == "Middleware_Intuser"          # reused: same source
    other = u["rep@x.com"]["to"]["permissionSet"]
    assert other != "Reports_Intuser" and other.startswith("Reports_") and other.endswith("_Intuser")
    assert any("Reports_Intuser already exists" in w for w in p.data["warnings"])
    gen = {g["name"]: g for g in p.data["generated"]}
    assert gen["Middleware_Intuser"]["exists"] and not gen[other]["exists"]


def test_every_step_has_an_inverse_and_the_rollback_holds_the_old_state():
    p = plan_of(acme_like(), ["mw@x.com", "etl@x.com"])
    actions = [s["action"] for s in p.data["steps"]]
    assert actions == ["create-profiles", "deploy", "switch-profiles", "assign-permission-set-licenses",
                       "assign-permission-sets", "assign-groups", "verify"]
    assert all(s["inverse"]["action"] for s in p.data["steps"])
    switch = next(s for s in p.data["steps"] if s["action"] == "switch-profiles")
    assert switch["inverse"]["records"][0]["to"]["profile"] == "Middleware"
    back = {u["user"]: u for u in p.data["rollback"]["users"]}
    assert [s["name"] for s in back["mw@x.com"]["permissionSets"]] == ["Order_Sync", "Reader"]
    assert [g["name"] for g in back["etl@x.com"]["groups"]] == ["Bundle"]
    assert p.data["schema"] == plan_mod.SCHEMA and p.data["version"] == 1


_perm = st.sampled_from(["ApiEnabled", "ApiUserOnly", "ViewSetup", "RunReports", "FreezeUsers", "ModifyAllData",
                         "ViewAllData", "LightningExperienceUser", "ManageUsers", "EditTask"])
_range = st.sampled_from([(), (("10.0.0.0", "10.0.0.255"),), (("10.0.1.0", "10.0.1.9"),)])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from("ABCD"), st.sets(_perm, max_size=6), _range, st.booleans(),
                          st.sets(_perm, max_size=4), st.booleans()), min_size=1, max_size=6),
       st.dictionaries(_perm, st.booleans()))
def test_property_nothing_generated_grants_more_than_its_one_source(users, maximum):
    b = Builder(int_free=10, psl_free=10, maximum=maximum or None)
    names = []
    for i, (prof, perms, ranges, hours, set_perms, set_bound) in enumerate(users):
        b.metadata["Profile"].setdefault(prof, profile_xml(perms=perms, ranges=ranges, hours=hours))
        if prof not in getattr(b, "_profiles", {}):
            b.profile(prof, b.metadata["Profile"][prof])
        sname = f"Set_{i}"
        b.metadata["PermissionSet"][sname] = set_xml(sname, perms=set_perms, license="Salesforce" if set_bound else None)
        b.user(f"u{i}@x.com", prof, sets=[(sname, LIC_SF.id if set_bound else None)])
        names.append(f"u{i}@x.com")
    p = plan_of(b, names)
    sources = [g["source"] for g in p.data["generated"]]
    assert len(sources) == len(set(sources))                        # one output per source
    for g in p.data["generated"]:
        data = p.files[g["file"][len("metadata/"):]]
        if g["type"] != "PermissionSet":
            continue
        kind, _, src = g["source"].partition(" ")
        src_name = src.replace("set ", "", 1) if kind == "permission" else src
        src_data = b.metadata["Profile" if kind == "profile" else "PermissionSet"][src_name]
        made = {x for x in access.grants(parse(data).root, "PermissionSet")}
        had = {x for x in access.grants(parse(src_data).root, "Profile" if kind == "profile" else "PermissionSet")}
        assert made <= had
        perms = {x.key for x in made if x.section == "userPermissions"}
        assert not {q for q, ok in maximum.items() if ok is False and q not in rules.LICENSE_GRANTED} & perms
    for u in p.data["users"]:
        if u["status"] != "planned":
            continue
        prof_root = parse(b.metadata["Profile"][u["from"]["profile"]]).root
        policy = __import__("sf_intuser.metadata.profile", fromlist=["x"]).login_policy(prof_root)
        assert (u["to"]["profile"] == rules.STANDARD_API_PROFILE) == policy.empty


# --- snapshot files and run folders -------------------------------------------------------------------


def small_snapshot() -> snap_mod.Snapshot:
    b = acme_like()
    return snap_mod.Snapshot(b.inv, b.metadata, {"schema": snap_mod.SCHEMA, "users": ["mw@x.com"]}, ["mw@x.com"])


def test_a_snapshot_round_trips_and_every_file_has_its_checksum(tmp_path):
    folder = snap_files.write(tmp_path / "run", small_snapshot())
    manifest = json.loads((folder / "manifest.json").read_text())
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk and "metadata/profiles/Middleware.profile" in on_disk
    back = snap_files.load(tmp_path / "run")
    assert back.inventory == small_snapshot().inventory
    assert back.metadata["PermissionSetGroup"]["Bundle"] == small_snapshot().metadata["PermissionSetGroup"]["Bundle"]
    with pytest.raises(snap_mod.SnapshotError, match="never overwritten"):
        snap_files.write(tmp_path / "run", small_snapshot())


@pytest.mark.parametrize("tamper,expect", [
    (lambda f: (f / "metadata/profiles/Middleware.profile").write_bytes(b"<Profile/>"),
     "Middleware.profile does not match its checksum"),
    (lambda f: (f / "inventory.json").unlink(), "inventory.json is missing"),
    (lambda f: (f / "metadata/profiles/Extra.profile").write_bytes(b"<Profile/>"), "Extra.profile is not in"),
    (lambda f: (f / "manifest.json").write_text("{}"), "not an sf-intuser snapshot manifest"),
])
def test_a_snapshot_edited_by_hand_is_refused_naming_the_file(tmp_path, tamper, expect):
    folder = snap_files.write(tmp_path / "run", small_snapshot())
    tamper(folder)
    with pytest.raises(snap_mod.SnapshotError) as err:
        snap_files.load(tmp_path / "run")
    assert expect in err.value.message and err.value.name == "SnapshotTampered"


def test_a_run_folder_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    calls = []
    real = runs._put

    def failing(path, data):
        calls.append(path)
        if path.name == "plan.json":
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(runs, "_put", failing)
    with pytest.raises(OSError):
        runs.write(tmp_path / "r1", snap=small_snapshot(), plan={"x": 1}, plan_md="# plan",
                   files={"package.xml": b"<Package/>"})
    assert list(tmp_path.iterdir()) == [] and calls
    monkeypatch.setattr(runs, "_put", real)
    runs.write(tmp_path / "r1", snap=small_snapshot(), plan={"x": 1}, plan_md="# plan", files={})
    assert runs.state(tmp_path / "r1") == "planned"
    with pytest.raises(runs.RunError, match="never written over"):
        runs.write(tmp_path / "r1", snap=small_snapshot(), plan={"x": 1})


def test_a_plan_joins_a_snapshot_only_folder_and_never_a_planned_one(tmp_path):
    snap_files.write(tmp_path / "r", small_snapshot())
    assert runs.state(tmp_path / "r") == "snapshot"
    runs.write(tmp_path / "r", snap=None, plan={"x": 1}, plan_md="# p", files={"package.xml": b"<Package/>"})
    assert json.loads((tmp_path / "r" / "plan.json").read_text()) == {"x": 1}
    assert (tmp_path / "r" / "metadata" / "package.xml").exists()
    with pytest.raises(runs.RunError, match="already holds a plan"):
        runs.write(tmp_path / "r", snap=None, plan={"x": 2})
    assert not [p for p in (tmp_path / "r").iterdir() if p.name.startswith(".")]


# --- the reads' queries ---------------------------------------------------------------------------


def test_every_query_of_a_round_fits_in_a_rest_uri_and_one_batch_call(monkeypatch):
    """300 users and 300 profiles in IN lists: each subrequest URL stays under the 16,384 bytes of
    KB 000386264, and the round for 300 users of 300 profiles is one Composite Batch call."""
    from urllib.parse import quote

    from sf_intuser.emulator.server import URI_LIMIT
    from sf_intuser.org import inventory as inv_mod
    from sf_intuser.sf import commands

    seen: list[dict] = []
    monkeypatch.setattr(commands, "query_all",
                        lambda _r, q, _o, _v, d=None, rows=None: (seen.append({**q, **(rows or {})}), {})[1])
    b = Builder()
    b.inv.maximum_fields = sorted(rules.known_user_permissions())   # some 1,800 names, as a real org has
    for i in range(300):
        b.user(f"user{i:03d}@a-rather-long-company-domain.example.com", f"Profile {i:03d}")
    inv_mod.read_users(None, b.inv, [u.id for u in b.inv.users], deep=True)
    queries = seen[0]
    longest = max(len(("v60.0/query?q=" + quote(q, safe="")).encode()) for q in queries.values())
    assert longest < URI_LIMIT
    assert len(queries) <= 25       # one Composite Batch call
    assert queries["max"] == f"PermissionSetLicense/{b.inv.psl().id}"   # the license's record, all its fields


def test_a_set_shared_by_two_users_is_granted_its_connected_app_once():
    from sf_intuser.org.model import Access

    b = Builder()
    b.user("a@x.com", "Shared")
    b.user("b@x.com", "Shared")
    own = b.inv.profile_set(b._profiles["Shared"])
    b.inv.access.append(Access("0J0000000000001AAA", own.id, "0H4000000000001AAA", "ConnectedApplication"))
    b.inv.connected_apps["0H4000000000001AAA"] = "Middleware"
    p = plan_of(b, ["a@x.com", "b@x.com"])
    grant = next(s for s in p.data["steps"] if s["action"] == "grant-access")
    assert [(r["permissionSet"], r["entity"]) for r in grant["records"]] == [("Shared_Intuser", "Middleware")]
    assert all(u["to"]["access"][0]["entity"] == "Middleware" for u in p.data["users"])


def test_config_names_a_users_api_only_profile_and_refuses_it_beside_add_ip_ranges():
    cfg = config.parse(GOOD.replace('keep = ["Sync_Reader"]', 'keep = ["Sync_Reader"]\n'
                                    'api-only-profile = "Integration API Only"'))
    assert cfg.users[0].api_only_profile == "Integration API Only" and cfg.users[1].api_only_profile is None
    for bad, where in (('api-only-profile = ""', "users[0].api-only-profile: must be the name"),
                       ('api-only-profile = 7', "users[0].api-only-profile: must be the name")):
        with pytest.raises(config.ConfigError, match=re.escape(where)):
            config.parse(GOOD.replace('keep = ["Sync_Reader"]', 'keep = ["Sync_Reader"]\n' + bad))
    with pytest.raises(config.ConfigError, match=re.escape("users[1].add-ip-ranges: add-ip-ranges goes on")):
        config.parse(GOOD.replace('drop = ["Legacy"]', 'drop = ["Legacy"]\napi-only-profile = "P"'))
