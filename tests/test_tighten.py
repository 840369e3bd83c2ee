"""``tighten`` without the sf CLI: how a log row is read, how a log file's CSV is read, and the property
that a tightened set never grants anything its source did not (hypothesis draws the sets and the
evidence), nor breaks Salesforce's object permission dependencies."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sf_intuser.metadata import license_rules as rules
from sf_intuser.metadata.xml import parse
from sf_intuser.migrate import tighten
from sf_intuser.org import evidence, usage
from sf_intuser.org.usage import Evidence, SourceReport, Use

OBJECTS = ["Account", "Contact", "Case", "Lead", "Order__c", "Task"]
PERMS = ["ApiEnabled", "ViewAllData", "ModifyAllData", "ManageUsers", "CustomizeApplication", "ModifyMetadata",
         "EditTask", "ViewSetup", "BulkApiHardDelete", "RunReports"]


def _valid(flags: set[str]) -> set[str]:
    """Object flags closed under Salesforce's dependencies, as a set that deploys holds them."""
    deps = rules.object_dependencies()
    out = set(flags)
    changed = True
    while changed:
        changed = False
        for f in list(out):
            for r in deps.get(f, ()):
                if r not in out:
                    out.add(r)
                    changed = True
    return out


def permission_set(objects: dict[str, set[str]], perms: set[str], fields: list[str] = ()) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<PermissionSet xmlns="http://soap.sforce.com/2006/04/metadata">',
             "    <description>test</description>"]
    for f in fields:
        parts.append(f"    <fieldPermissions><editable>true</editable><field>{f}</field>"
                     "<readable>true</readable></fieldPermissions>")
    parts.append("    <label>Test</label>")
    for obj, flags in sorted(objects.items()):
        parts.append("    <objectPermissions>" + "".join(
            f"<{x}>{'true' if x in flags else 'false'}</{x}>" if x != "object" else f"<object>{obj}</object>"
            for x in sorted(tighten.OBJECT_FLAGS + ("object",))) + "</objectPermissions>")
    for p in sorted(perms):
        parts.append(f"    <userPermissions><enabled>true</enabled><name>{p}</name></userPermissions>")
    parts.append("</PermissionSet>")
    return "\n".join(parts).encode()


flag_sets = st.sets(st.sampled_from(tighten.OBJECT_FLAGS)).map(_valid)
sets = st.tuples(st.dictionaries(st.sampled_from(OBJECTS), flag_sets, max_size=5),
                 st.sets(st.sampled_from(PERMS)))
uses = st.lists(st.builds(
    lambda obj, op, call: Use("005000000000001", obj, op, "REST", call=call),
    st.one_of(st.none(), st.sampled_from(OBJECTS + ["Opportunity"])), st.sampled_from(usage.OPERATIONS),
    st.one_of(st.none(), st.sampled_from(["hardDelete", "convertLead", "query"]))), max_size=12)


@settings(max_examples=300, deadline=None)
@given(sets, uses, st.lists(st.sampled_from(OBJECTS + PERMS), max_size=3))
def test_a_tightened_set_never_grants_what_its_source_did_not(source, recorded, keep):
    objects, perms = source
    data = permission_set(objects, perms, fields=[f"{o}.Name" for o in objects])
    out = tighten.narrow(data, "Src", "Src_Tight", recorded, keep)
    src_root, new_root = parse(data).root, parse(out.data).root
    everything = set(OBJECTS) | {"Opportunity"}
    assert tighten.grants(new_root, everything) <= tighten.grants(src_root, everything)
    # and it deploys: every object flag's requirements are there
    deps = rules.object_dependencies()
    for obj, flags in tighten.object_grants(new_root).items():
        for f in flags:
            assert set(deps.get(f, ())) <= flags, (obj, f, flags)
    # user permissions keep their dependencies too
    kept = tighten.enabled_permissions(new_root)
    for p in kept:
        dep = rules.PERMISSION_DEPENDENCIES.get(p)
        assert not dep or set(dep.requires) <= kept, (p, dep)


def test_what_each_recorded_operation_keeps():
    data = permission_set({o: set(tighten.OBJECT_FLAGS) for o in ("Account", "Contact", "Case")},
                          {"ApiEnabled", "ModifyAllData", "ViewAllData", "CustomizeApplication"})
    calls = [Use("005000000000001", "Account", "read", "REST"), Use("005000000000001", "Account", "create", "REST"),
             Use("005000000000001", "Contact", "delete", "SOAP"), Use("005000000000001", "Lead", "read", "SOAP")]
    root = parse(tighten.narrow(data, "S", "S_T", calls).data).root
    got = tighten.object_grants(root)
    # Account: read and create, its rows still visible; no delete, so no Modify All
    assert got["Account"] == {"allowRead", "allowCreate", "viewAllRecords"}
    # Contact: a delete needs edit and read; Modify All comes back with the delete it requires
    assert got["Contact"] == set(tighten.OBJECT_FLAGS) - {"allowCreate"}
    # Case untouched: gone; Lead reached only through View All Data: read on Lead alone
    assert "Case" not in got and got["Lead"] == {"allowRead", "viewAllRecords"}
    assert tighten.enabled_permissions(root) == {"ApiEnabled"}


def test_a_row_naming_no_object_narrows_nothing_of_its_kind():
    data = permission_set({"Account": {"allowRead", "allowEdit"}, "Case": {"allowRead"}}, {"ApiEnabled"})
    root = parse(tighten.narrow(data, "S", "S_T", [Use("005000000000001", None, "read", "REST")]).data).root
    assert tighten.object_grants(root) == {"Account": {"allowRead"}, "Case": {"allowRead"}}


def test_rules_keep_what_recorded_calls_need_and_keep_access_protects():
    data = permission_set({"Task": set(tighten.OBJECT_FLAGS)}, {"ApiEnabled", "EditTask", "ModifyMetadata",
                                                                "BulkApiHardDelete", "ViewSetup", "RunReports"})
    calls = [Use("005000000000001", "Task", "edit", "REST"),
             Use("005000000000001", None, usage.METADATA, "SOAP", call="deploy"),
             Use("005000000000001", "Task", "delete", "Bulk", call="hardDelete")]
    n = tighten.narrow(data, "S", "S_T", calls, keep=["RunReports"])
    kept = {p["name"]: p["why"] for p in n.permissions if p["kept"]}
    assert set(kept) == {"ApiEnabled", "EditTask", "ModifyMetadata", "BulkApiHardDelete", "RunReports"}
    assert kept["RunReports"] == "keep-access in sf-intuser.toml"
    assert {p["name"] for p in n.permissions if not p["kept"]} == {"ViewSetup"}


def test_how_a_row_is_read():
    assert usage.operations("SOAP", "POST", "query") == (("read",), "query")
    assert usage.operations("SOAP", "POST", "upsert") == (("create", "edit"), "upsert")
    assert usage.operations("REST", "GET", "/v62.0/query") == (("read",), None)
    assert usage.operations("REST", "PATCH", "/v62.0/sobjects/Account/001x00000000001AAA") == (("edit",), None)
    assert usage.operations("REST", "PATCH", "/v62.0/sobjects/Account/Ext__c/42") == (("create", "edit"), None)
    assert usage.operations("REST", "PATCH", None) == (("create", "edit"), None)
    assert usage.operations("Bulk", "POST", "/v62.0/jobs/ingest") == (("unknown",), None)
    assert usage.operations("Bulk", "GET", "/v62.0/jobs/query/750/results") == (("read",), None)
    assert usage.call_operations("describeGlobal") == ((), "describeGlobal")
    assert usage.call_operations("deploy") == (("metadata",), "deploy")
    assert usage.call_operations("somethingNew") == (("unknown",), "somethingNew")


def test_log_files_are_read_by_column_name_for_the_wanted_users_only():
    body = ('"USER_ID","ENTITY_NAME","METHOD_NAME","API_TYPE","TIMESTAMP_DERIVED"\n'
            '"005000000000001","Account","update","P","2026-11-30T10:00:00.000Z"\n'
            '"005000000000002","Contact","query","P","2026-11-30T10:00:00.000Z"\n'
            '"005000000000001","","deploy","M","2026-11-30T11:00:00.000Z"\n')
    got = evidence.file_uses("API", body, {"005000000000001"})
    assert [(u.object, u.operation) for u in got] == [("Account", "edit"), (None, "metadata")]
    rest = evidence.file_uses("RestApi", '"USER_ID_DERIVED","METHOD","URI"\n"005000000000001AAA","DELETE",'
                                         '"/services/data/v62.0/sobjects/Case/500x"\n', {"005000000000001"})
    assert [(u.object, u.operation) for u in rest] == [("Case", "delete")]


def test_the_first_source_with_rows_decides_a_user():
    ev = Evidence(30, "2026-11-01", "2026-12-01", uses=[
        Use("005000000000001", "Account", "read", "REST", source="ApiTotalUsageEventLog"),
        Use("005000000000001", None, "read", "REST", source="EventLogFile RestApi"),
        Use("005000000000002", "Case", "read", "REST", source="EventLogFile RestApi")],
        sources=[SourceReport("ApiTotalUsageEventLog", "used"), SourceReport("EventLogFile", "used")])
    assert [u.object for u in ev.of("005000000000001AAA")] == ["Account"]
    assert [u.object for u in ev.of("005000000000002")] == ["Case"]


def test_record_types_and_tabs_follow_their_object_out():
    data = permission_set({"Account": {"allowRead"}, "Case": {"allowRead"}}, {"ApiEnabled"}).replace(
        b"</PermissionSet>",
        b"    <recordTypeVisibilities><recordType>Case.Support</recordType><visible>true</visible>"
        b"</recordTypeVisibilities>\n"
        b"    <tabSettings><tab>standard-Account</tab><visibility>DefaultOn</visibility></tabSettings>\n"
        b"    <tabSettings><tab>standard-Case</tab><visibility>DefaultOn</visibility></tabSettings>\n</PermissionSet>")
    out = parse(tighten.narrow(data, "S", "S_T", [Use("005000000000001", "Account", "read", "REST")]).data).root
    assert [e.text for e in out.iter("{*}recordType")] == []
    assert [e.text for e in out.iter("{*}tab")] == ["standard-Account"]
