"""The emulated org in-process: its SOQL, its rules and its Metadata API, without the CLI."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import zipfile

import pytest
from lxml import etree

from sf_intuser.emulator import faults, mdapi, seed, soql
from sf_intuser.emulator.org import ApiError
from sf_intuser.metadata import package_xml

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture()
def org():
    s = seed.load()
    return s


def q(org, text):
    return org.query(text)[1]


# --- SOQL ---------------------------------------------------------------------------------------


def test_or_not_parentheses_in_and_like(org):
    rows = q(org, "select Id, Username from User where (Username = 'jane.doe@acme.emulated' or Username LIKE "
                  "'%etl%') and not IsActive = false order by Username desc")
    assert [r["Username"] for r in rows] == ["jane.doe@acme.emulated", "etl@acme.emulated"]
    rows = q(org, "SELECT Username FROM User WHERE Username IN ('etl@acme.emulated', 'nobody@x') AND "
                  "Username NOT IN ('jane.doe@acme.emulated')")
    assert [r["Username"] for r in rows] == ["etl@acme.emulated"]


def test_semi_join_and_relationship_filter(org):
    rows = q(org, "SELECT Username FROM User WHERE ProfileId IN (SELECT Id FROM Profile WHERE "
                  "UserLicense.Name = 'Salesforce Integration')")
    assert [r["Username"] for r in rows] == ["erp.int@acme.emulated"]


def test_count_group_by_and_aliases(org):
    total = org.query("SELECT COUNT() FROM User WHERE IsActive = true")
    assert total[1] == [] and total[2] == 12
    rows = q(org, "SELECT Profile.Name, COUNT(Id) FROM User GROUP BY Profile.Name ORDER BY Profile.Name LIMIT 2")
    assert rows == [{"attributes": {"type": "AggregateResult"}, "Name": "Backup Service", "expr0": 1},
                    {"attributes": {"type": "AggregateResult"}, "Name": "ETL Loader", "expr0": 1}]


def test_date_literals_and_comparisons(org):
    org.now = lambda: NOW
    org.records["LoginHistory"] = {}
    for t in ("2026-11-22T01:00:00.000+0000", "2026-11-21T23:00:00.000+0000", "2026-08-01T10:00:00.000+0000"):
        org.put("LoginHistory", {"UserId": "005000000000002AAA", "LoginTime": t, "LoginType": "Application"})
    where = "SELECT LoginTime FROM LoginHistory WHERE LoginTime "
    assert [r["LoginTime"][:10] for r in q(org, where + "= TODAY")] == ["2026-11-22"]
    assert [r["LoginTime"][:10] for r in q(org, where + "= YESTERDAY")] == ["2026-11-21"]
    assert len(q(org, where + "= LAST_N_DAYS:90")) == 2
    assert [r["LoginTime"][:10] for r in q(org, where + "< LAST_N_DAYS:90")] == ["2026-08-01"]
    assert len(q(org, where + "> 2026-08-01T10:00:00Z")) == 2
    assert len(q(org, where + ">= 2026-08-01T10:00:00Z")) == 3
    assert len(q(org, where + "= N_DAYS_AGO:1")) == 1


@pytest.mark.parametrize("text,code", [
    ("SELECT Id FROM Nope", "INVALID_TYPE"),
    ("SELECT Nope FROM User", "INVALID_FIELD"),
    ("SELECT Profile.Nope FROM User", "INVALID_FIELD"),
    ("SELECT Id FROM User WHERE", "MALFORMED_QUERY"),
    ("SELECT Id FROM User WHERE A = 'x' AND B = 'y' OR C = 'z'", "MALFORMED_QUERY"),
    ("SELECT Id, (SELECT Id FROM Assignments) FROM PermissionSet", "MALFORMED_QUERY"),
    ("SELECT SUM(UseCount) FROM OauthToken", "MALFORMED_QUERY"),
    ("SELECT Id FROM SetupEntityAccess WHERE ParentId IN (SELECT PermissionSetId FROM PermissionSetAssignment "
     "WHERE AssigneeId IN (SELECT Id FROM User))", "MALFORMED_QUERY"),
    ("SELECT UserId FROM LoginHistory WHERE Application = 'Middleware'", "INVALID_FIELD"),
    ("SELECT LoginTime, COUNT(Id) FROM LoginHistory GROUP BY LoginTime", "INVALID_FIELD"),
    ("SELECT Id FROM User WHERE Username = 'it\\'s", "MALFORMED_QUERY"),
    ("SELECT Username, COUNT(Id) FROM User", "MALFORMED_QUERY"),
])
def test_what_it_cannot_answer_fails_loudly(org, text, code):
    with pytest.raises(soql.QueryError) as err:
        org.query(text)
    assert err.value.code == code


def test_max_and_min_per_group(org):
    rows = q(org, "SELECT UserId, MAX(LoginTime) latest, MIN(LoginTime), COUNT(Id) n FROM LoginHistory "
                  "GROUP BY UserId")
    by_user = {r["UserId"]: r for r in rows}
    for user_id, r in by_user.items():
        times = sorted(x["LoginTime"] for x in org.find("LoginHistory", UserId=user_id))
        assert (r["latest"], r["expr0"], r["n"]) == (times[-1], times[0], len(times))


def test_an_aggregate_beyond_one_batch_is_refused(org):
    from sf_intuser.emulator import org as org_mod

    for i in range(org_mod.AGGREGATE_ROW_LIMIT + 1):
        org.put("OauthToken", {"AppName": f"App {i}", "UserId": org.admin_id})
    with pytest.raises(soql.QueryError, match="Aggregate query does not support queryMore"):
        org.query("SELECT AppName, COUNT(Id) FROM OauthToken GROUP BY AppName")
    assert len(q(org, "SELECT AppName, COUNT(Id) FROM OauthToken GROUP BY AppName LIMIT 2000")) == 2000


def test_escaped_literal_matches_exactly(org):
    org.put("User", {"Username": "o'brien\\x@acme.emulated", "IsActive": True})
    rows = q(org, "SELECT Username FROM User WHERE Username = 'o\\'brien\\\\x@acme.emulated'")
    assert [r["Username"] for r in rows] == ["o'brien\\x@acme.emulated"]


# --- rules --------------------------------------------------------------------------------------


def uid(org, name):
    return org.one("User", Username=name)["Id"]


def test_seed_is_realistic(org):
    lic = {r["Name"]: org.view("UserLicense", r)["UsedLicenses"] for r in org.records["UserLicense"].values()}
    assert lic == {"Salesforce": 11, "Salesforce Platform": 0, "Salesforce Integration": 1, "Chatter Free": 0,
                   "Chatter External": 0, "Identity": 0, "Guest User License": 0, "Customer Community Login": 0}
    # the standard profiles an Enterprise org has, under their Metadata API names
    assert {"Admin", "Standard", "ReadOnly", "StandardAul", "Chatter Free User", "Minimum Access - Salesforce",
            "Minimum Access - API Only Integrations"} <= {n for (t, n) in org.components if t == "Profile"}
    ranges = {}
    for name in ("Integration Middleware", "ETL Loader", "Backup Service"):
        root = etree.fromstring(org.components[("Profile", name)].body)
        ranges[name] = root.findtext(".//{*}loginIpRanges/{*}startAddress")
    assert ranges["Integration Middleware"] == ranges["ETL Loader"] != ranges["Backup Service"]
    types = sorted({r["SetupEntityType"] for r in org.records["SetupEntityAccess"].values()})
    assert types == ["ApexClass", "ApexPage", "ConnectedApplication"]
    assert org.one("PermissionSet", Name="Order_Sync_Access")["LicenseId"] == org.one("UserLicense", Name="Salesforce")["Id"]


def test_a_permission_set_license_the_users_license_does_not_support_is_refused(org):
    """KB 005385054's wording; the API Integration PSL on another license is the [U] option."""
    jane = uid(org, "jane.doe@acme.emulated")
    psl = org.one("PermissionSetLicense", DeveloperName="SalesforceAPIIntegrationPsl")["Id"]
    with pytest.raises(ApiError, match="user license doesn't support it"):
        org.insert("PermissionSetLicenseAssign", {"AssigneeId": jane, "PermissionSetLicenseId": psl})
    org.options.set("integration_psl_any_license", "true")
    assert org.insert("PermissionSetLicenseAssign", {"AssigneeId": jane, "PermissionSetLicenseId": psl})
    survey = org.one("PermissionSetLicense", DeveloperName="SurveyCreatorPsl")["Id"]
    assert org.insert("PermissionSetLicenseAssign", {"AssigneeId": jane, "PermissionSetLicenseId": survey})


def test_a_developer_edition_scratch_org_has_no_read_only_profile_and_one_integration_seat():
    from sf_intuser.emulator import seed as seed_mod

    s = seed_mod.scratch("t-scratch")
    totals = {r["Name"]: r["TotalLicenses"] for r in s.records["UserLicense"].values()}
    assert totals["Salesforce Integration"] == 1 and totals["Salesforce"] == 2
    names = {n for (t, n) in s.components if t == "Profile"}
    assert "ReadOnly" not in names and {"Admin", "Standard", "StandardAul", "Chatter Free User"} <= names


def test_seed_ids_are_stable_and_new_ids_unique(org):
    again = seed.load()
    assert sorted(org.records["Profile"]) == sorted(again.records["Profile"])
    ids = {org.new_record_id("0Af") for _ in range(500)}
    assert len(ids) == 500 and all(len(i) == 18 for i in ids)


def test_profile_record_insert_starts_empty_for_its_license(org):
    lic = org.one("UserLicense", Name="Salesforce Integration")["Id"]
    pid = org.insert("Profile", {"Name": "API Only - Backup", "UserLicenseId": lic})
    body = org.components[("Profile", "API Only - Backup")].body.decode()
    assert "<userLicense>Salesforce Integration</userLicense>" in body and "ApiUserOnly" in body
    assert org.one("PermissionSet", ProfileId=pid)["IsOwnedByProfile"] is True
    with pytest.raises(ApiError) as err:
        org.insert("Profile", {"Name": "API Only - Backup", "UserLicenseId": lic})
    assert err.value.code == "DUPLICATE_VALUE"
    with pytest.raises(ApiError) as err:
        org.update("Profile", pid, {"UserLicenseId": org.one("UserLicense", Name="Salesforce")["Id"]})
    assert err.value.code == "FIELD_INTEGRITY_EXCEPTION"


def test_api_profile_assigns_psl_behind_switch(org):
    org.options.api_profile_assigns_psl = True
    api = org.one("Profile", Name="Minimum Access - API Only Integrations")["Id"]
    org.update("User", uid(org, "backup@acme.emulated"), {"ProfileId": api})
    psl = org.find("PermissionSetLicenseAssign", AssigneeId=uid(org, "backup@acme.emulated"))
    assert [org.get(p["PermissionSetLicenseId"])["DeveloperName"] for p in psl] == ["SalesforceAPIIntegrationPsl"]


def test_psl_cannot_go_while_a_permission_set_needs_it(org):
    erp = uid(org, "erp.int@acme.emulated")
    psla = org.one("PermissionSetLicenseAssign", AssigneeId=erp)
    with pytest.raises(ApiError) as err:
        org.delete("PermissionSetLicenseAssign", psla["Id"])
    assert "requires it" in err.value.message


def test_removing_a_psl_bound_permission_set_removes_its_license(org):
    erp = uid(org, "erp.int@acme.emulated")
    (psa,) = [a for a in org.find("PermissionSetAssignment", AssigneeId=erp)
              if not org.get(a["PermissionSetId"])["IsOwnedByProfile"]]
    org.delete("PermissionSetAssignment", psa["Id"])
    assert org.find("PermissionSetLicenseAssign", AssigneeId=erp) == []


def test_group_assignment_checks_each_member(org):
    erp = uid(org, "erp.int@acme.emulated")
    group = org.one("PermissionSetGroup", DeveloperName="Integration_Bundle")["Id"]
    with pytest.raises(ApiError) as err:   # Order_Sync_Access is bound to the Salesforce license
        org.insert("PermissionSetAssignment", {"AssigneeId": erp, "PermissionSetGroupId": group})
    assert err.value.code == "FIELD_INTEGRITY_EXCEPTION"


def test_setup_entity_access_writes_show_in_the_metadata(org):
    backup = org.one("Profile", Name="Backup Service")["Id"]
    owned = org.one("PermissionSet", ProfileId=backup)["Id"]
    helper = org.one("ApexClass", Name="UnusedHelper")["Id"]
    sea = org.insert("SetupEntityAccess", {"ParentId": owned, "SetupEntityId": helper})
    body = org.components[("Profile", "Backup Service")].body.decode()
    assert body.index("<apexClass>BackupRestService</apexClass>") < body.index("<apexClass>UnusedHelper</apexClass>")
    org.delete("SetupEntityAccess", sea)
    flat = org.components[("Profile", "Backup Service")].body.decode().replace(" ", "").replace("\n", "")
    assert "<apexClass>UnusedHelper</apexClass><enabled>false</enabled>" in flat
    reader = org.one("PermissionSet", Name="Sync_Reader")["Id"]
    sea = org.insert("SetupEntityAccess", {"ParentId": reader, "SetupEntityId": helper})
    assert b"UnusedHelper" in org.components[("PermissionSet", "Sync_Reader")].body
    org.delete("SetupEntityAccess", sea)
    assert b"UnusedHelper" not in org.components[("PermissionSet", "Sync_Reader")].body


def test_transaction_restores_everything(org):
    before = {k: dict(v) for k, v in org.records["PermissionSetAssignment"].items()}
    with pytest.raises(ApiError):
        with org.transaction():
            org.delete("PermissionSetAssignment", next(iter(before)))
            org.insert("PermissionSetAssignment", {"AssigneeId": "005000000000099AAA"})
    assert org.records["PermissionSetAssignment"] == before


def test_read_only_and_unknown_fields_are_refused(org):
    lic = org.one("UserLicense", Name="Salesforce")["Id"]
    with pytest.raises(ApiError) as err:
        org.insert("Profile", {"Name": "X", "UserLicenseId": lic, "Bogus": 1})
    assert err.value.code == "INVALID_FIELD"
    with pytest.raises(ApiError) as err:
        org.insert("LoginHistory", {"UserId": "005000000000001AAA"})
    assert err.value.code == "INVALID_TYPE_FOR_OPERATION"


# --- Metadata API -------------------------------------------------------------------------------


def soap(op_xml, token):
    return (f'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header '
            f'xmlns="http://soap.sforce.com/2006/04/metadata"><SessionHeader><sessionId>{token}</sessionId>'
            f'</SessionHeader></soapenv:Header><soapenv:Body xmlns="http://soap.sforce.com/2006/04/metadata">'
            f'{op_xml}</soapenv:Body></soapenv:Envelope>').encode()


def call(org, jobs, op_xml):
    out = mdapi.handle(org, jobs, soap(op_xml, org.token_prefix + "x"))
    return etree.fromstring(out)


def test_retrieve_polls_then_zips_under_unpackaged(org):
    org.options.metadata_polls_in_progress = 1
    jobs = mdapi.Jobs()
    started = call(org, jobs, "<retrieve><request><apiVersion>62.0</apiVersion><unpackaged><types>"
                              "<members>*</members><name>ApexClass</name></types><types><members>Backup Service"
                              "</members><name>Profile</name></types></unpackaged></request></retrieve>")
    job_id = started.findtext(".//{*}id")
    poll = f"<checkRetrieveStatus><asyncProcessId>{job_id}</asyncProcessId></checkRetrieveStatus>"
    assert call(org, jobs, poll).findtext(".//{*}status") == "InProgress"
    done = call(org, jobs, poll)
    assert done.findtext(".//{*}done") == "true"
    z = zipfile.ZipFile(io.BytesIO(base64.b64decode(done.findtext(".//{*}zipFile"))))
    assert "unpackaged/profiles/Backup Service.profile" in z.namelist()
    profile = z.read("unpackaged/profiles/Backup Service.profile").decode()
    assert "BackupRestService" in profile and "BackupStatus" not in profile   # no ApexPage in the request


def test_soap_session_is_checked_and_doctype_refused(org):
    with pytest.raises(mdapi.SoapFault) as err:
        mdapi.handle(org, mdapi.Jobs(), soap("<retrieve/>", "00DWRONG"))
    assert err.value.code == "INVALID_SESSION_ID"
    with pytest.raises(mdapi.SoapFault):
        mdapi.handle(org, mdapi.Jobs(), b'<!DOCTYPE x [<!ENTITY a "b">]>' + soap("<retrieve/>", "x"))


def _deploy_zip(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return base64.b64encode(buf.getvalue()).decode()


def test_deploy_refuses_unsafe_zip_paths_and_bad_xml(org):
    jobs = mdapi.Jobs()
    with pytest.raises(mdapi.SoapFault):
        call(org, jobs, f"<deploy><ZipFile>{_deploy_zip({'../evil': 'x'})}</ZipFile></deploy>")
    bad = _deploy_zip({"package.xml": package_xml.build({"PermissionSet": ["Sync_Reader"]}, "62.0"),
                       "permissionsets/Sync_Reader.permissionset":
                       '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><PermissionSet/>'})
    started = call(org, jobs, f"<deploy><ZipFile>{bad}</ZipFile></deploy>")
    res = call(org, jobs, f"<checkDeployStatus><asyncProcessId>{started.findtext('.//{*}id')}</asyncProcessId>"
                          "</checkDeployStatus>")
    assert res.findtext(".//{*}status") == "Failed"
    assert "refused" in res.findtext(".//{*}componentFailures/{*}problem")


def test_overlay_keeps_old_entries_and_empty_login_hours_removes_them(org):
    old = etree.fromstring(org.components[("Profile", "Backup Service")].body)
    new = etree.fromstring(b'<Profile xmlns="http://soap.sforce.com/2006/04/metadata"><loginHours/>'
                           b'<userPermissions><enabled>false</enabled><name>ViewAllData</name></userPermissions>'
                           b'</Profile>')
    merged = mdapi.overlay(old, new)
    text = etree.tostring(merged).decode()
    assert "loginHours" not in text and "QueryAllFiles" in text
    assert "<enabled>false</enabled><name>ViewAllData</name>" in text.replace("\n", "").replace(" ", "")


# --- faults -------------------------------------------------------------------------------------


def test_fault_specs_parse_and_count():
    f = faults.parse("PATCH .*/sobjects/User/@2=400:LICENSE_LIMIT_EXCEEDED:License Limit Exceeded")
    assert (f.nth, f.status, f.code, f.message) == (2, 400, "LICENSE_LIMIT_EXCEEDED", "License Limit Exceeded")
    assert [f.hit("PATCH /services/data/v62.0/sobjects/User/005"), f.hit("GET /x"),
            f.hit("PATCH /services/data/v62.0/sobjects/User/005"), f.hit("PATCH /services/data/v62.0/sobjects/User/005")
            ] == [False, False, True, False]
    assert faults.parse("x@1+=drop").repeat and faults.parse("x@3=delay:0.5").seconds == 0.5
    for bad in ("nope", "x@a=drop", "x@1=teapot", "[@1=drop"):
        with pytest.raises(ValueError):
            faults.parse(bad)


def test_options_from_text_name_the_valid_values(org):
    org.options.set("profile_change_across_licenses", "refuse")
    org.options.set("new_profile_by_deploy", "true")
    org.options.set("metadata_polls_in_progress", "2")
    assert (org.options.profile_change_across_licenses, org.options.new_profile_by_deploy,
            org.options.metadata_polls_in_progress) == ("refuse", True, 2)
    for name, value, says in (("profile_change_across_licenses", "maybe", "strip or refuse"),
                              ("new_profile_by_deploy", "yes", "true or false"),
                              ("metadata_polls_in_progress", "x", "whole number"),
                              ("bogus", "1", "unknown option")):
        with pytest.raises(ValueError, match=says):
            org.options.set(name, value)


# --- Composite Batch over HTTP ----------------------------------------------------------------------


def _post(emu, path, body):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(emu.url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": "Bearer " + emu.access_token(),
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture()
def http_org():
    from sf_intuser.emulator.server import EmulatedOrg

    emu = EmulatedOrg(max_seconds=120).start()
    yield emu
    emu.stop()


def test_batch_subrequests_answer_each_on_its_own(http_org):
    q = "v60.0/query?q=" + "SELECT+Username+FROM+User+WHERE+Username+%3D+%27etl%40acme.emulated%27"
    status, body = _post(http_org, "/services/data/v60.0/composite/batch", {"batchRequests": [
        {"method": "GET", "url": q},
        {"method": "GET", "url": "v60.0/query?q=SELECT+Nope+FROM+User"},
        {"method": "GET", "url": "v60.0/sobjects/PermissionSetLicense/describe"},
        {"method": "GET", "url": "v60.0/tooling/query?q=SELECT+Id+FROM+PermissionDependency"}]})
    assert status == 200 and body["hasErrors"] is True
    ok, bad, describe, tooling = body["results"]
    assert ok["statusCode"] == 200 and ok["result"]["records"][0]["Username"] == "etl@acme.emulated"
    assert bad["statusCode"] == 400 and bad["result"][0]["errorCode"] == "INVALID_FIELD"
    assert "MaximumPermissionsModifyAllData" in {f["name"] for f in describe["result"]["fields"]}
    assert tooling["statusCode"] == 404          # the batch resource takes no Tooling API


def test_batch_limits_and_halt_on_error(http_org):
    one = {"method": "GET", "url": "v60.0/query?q=SELECT+Id+FROM+Organization"}
    status, body = _post(http_org, "/services/data/v60.0/composite/batch", {"batchRequests": [one] * 26})
    assert status == 400 and "25" in body[0]["message"]
    status, body = _post(http_org, "/services/data/v60.0/composite/batch",
                         {"batchRequests": [{"method": "GET", "url": "v62.0/query?q=SELECT+Id+FROM+Organization"}]})
    assert status == 400                          # later than the batch's own version
    status, body = _post(http_org, "/services/data/v60.0/composite/batch", {"haltOnError": True, "batchRequests": [
        {"method": "GET", "url": "v60.0/query?q=SELECT+Nope+FROM+User"}, one]})
    assert [r["statusCode"] for r in body["results"]] == [400, 412]
    assert body["results"][1]["result"][0]["errorCode"] == "BATCH_PROCESSING_HALTED"
    long_q = "v60.0/query?q=SELECT+Id+FROM+User+WHERE+Username+IN+(" + "%27x%27%2C" * 2000 + "%27y%27)"
    status, body = _post(http_org, "/services/data/v60.0/composite/batch",
                         {"batchRequests": [{"method": "GET", "url": long_q}]})
    assert body["results"][0]["statusCode"] == 414


def test_a_new_user_needs_every_field_salesforce_requires(org):
    """REQUIRED_FIELD_MISSING names them all (User reference; @salesforce/core REQUIRED_FIELDS);
    Alias is at most 8 characters; a username is an email address and unique."""
    profile = org.one("Profile", Name="Standard User")["Id"]
    with pytest.raises(ApiError) as e:
        org.insert("User", {"Username": "x@acme.emulated", "LastName": "X", "ProfileId": profile})
    assert e.value.code == "REQUIRED_FIELD_MISSING"
    assert all(f in e.value.message for f in ("Email", "Alias", "TimeZoneSidKey", "LanguageLocaleKey"))
    full = {"Username": "x@acme.emulated", "LastName": "X", "ProfileId": profile, "Email": "x@example.invalid",
            "Alias": "x", "TimeZoneSidKey": "GMT", "LocaleSidKey": "en_US", "EmailEncodingKey": "UTF-8",
            "LanguageLocaleKey": "en_US"}
    for bad, code in (({"Alias": "toolongalias"}, "STRING_TOO_LONG"), ({"Username": "no-at-sign"}, "INVALID_NEW_VALUE")):
        with pytest.raises(ApiError) as e:
            org.insert("User", {**full, **bad})
        assert e.value.code == code
    assert org.insert("User", full).startswith("005")
    with pytest.raises(ApiError) as e:
        org.insert("User", full)
    assert e.value.code == "DUPLICATE_USERNAME"


def test_only_a_dev_hub_knows_scratch_org_info_and_its_editions():
    """sf tells a Dev Hub at login by `SELECT Id FROM ScratchOrgInfo limit 1` (@salesforce/core
    authInfo.determineIfDevHub): an ordinary org must not know the object."""
    from sf_intuser.emulator.soql import QueryError

    plain = seed.load()
    with pytest.raises(QueryError) as e:
        plain.query("SELECT Id FROM ScratchOrgInfo LIMIT 1")
    assert e.value.code == "INVALID_TYPE"
    hub = seed.load()
    hub.options.dev_hub = True
    assert hub.query("SELECT Id FROM ScratchOrgInfo LIMIT 1")[2] == 0
    hub.scratch_factory = lambda vals: {"LoginUrl": "http://127.0.0.1:1", "ScratchOrg": "00D000000000009",
                                        "SignupUsername": "admin@scratch.emulated", "AuthCode": "code"}
    base = {"ConnectedAppConsumerKey": "PlatformCLI", "ConnectedAppCallbackUrl": "http://localhost:1717/OauthRedirect"}
    with pytest.raises(ApiError) as e:
        hub.insert("ScratchOrgInfo", {**base, "Edition": "Ultimate"})
    assert e.value.code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    with pytest.raises(ApiError) as e:
        hub.insert("ScratchOrgInfo", {**base, "Edition": "Developer", "DurationDays": 31})
    assert e.value.code == "FIELD_INTEGRITY_EXCEPTION"
    rid = hub.insert("ScratchOrgInfo", {**base, "Edition": "Enterprise", "DurationDays": 1})
    rec = hub.get(rid)
    assert rec["Status"] == "Active" and rec["LoginUrl"] and rec["CreatedById"] == hub.admin_id


def test_a_scratch_orgs_auth_code_is_good_for_one_exchange_and_chunked_forms_are_read():
    """The token endpoint (OAuth 2.0 web server and refresh token flows): the signup's code once,
    then the refresh token; anything else is invalid_grant. The CLI's fetch sends the form chunked."""
    import http.client
    import json as json_mod
    from urllib.parse import urlsplit

    from sf_intuser.emulator.server import EmulatedOrg

    state = seed.load(instance="hub-unit")
    state.options.dev_hub = True
    hub = EmulatedOrg(state, max_seconds=60).start()
    try:
        info = hub._new_scratch_org({"OrgName": "x", "Edition": "Developer"})
        child = hub.scratch_orgs[0]
        assert child.state.query("SELECT Id FROM User")[2] == 1          # blank: the admin only
        host = urlsplit(info["LoginUrl"])

        def token(form: str, chunked: bool = False) -> tuple[int, dict]:
            conn = http.client.HTTPConnection(host.hostname, host.port, timeout=10)
            body = form.encode()
            conn.request("POST", "/services/oauth2/token", body=iter([body]) if chunked else body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"},
                         encode_chunked=chunked)
            resp = conn.getresponse()
            return resp.status, json_mod.loads(resp.read())

        status, body = token(f"grant_type=authorization_code&code={info['AuthCode']}", chunked=True)
        assert status == 200 and body["instance_url"] == info["LoginUrl"] and body["refresh_token"]
        status, again = token(f"grant_type=authorization_code&code={info['AuthCode']}")
        assert status == 400 and again["error"] == "invalid_grant"
        status, refreshed = token(f"grant_type=refresh_token&refresh_token={body['refresh_token']}")
        assert status == 200 and refreshed["access_token"] and "refresh_token" not in refreshed
    finally:
        hub.stop()
    assert child.stopped.is_set()


# --- item 7: where the tool could be fooled ---------------------------------------------------------


def test_setup_entity_type_is_set_by_salesforce_and_restricted(org):
    """Object Reference, SetupEntityAccess: SetupEntityType has no Create property; it is a restricted
    picklist (ApexClass, ApexPage, ConnectedApplication, CustomPermission, ...)."""
    ps = org.one("PermissionSet", Name="Sync_Reader")["Id"]
    cls = next(iter(org.records["ApexClass"]))
    with pytest.raises(ApiError, match="Unable to create/update fields: SetupEntityType"):
        org.insert("SetupEntityAccess", {"ParentId": ps, "SetupEntityId": cls, "SetupEntityType": "ApexClass"})
    rid = org.insert("SetupEntityAccess", {"ParentId": ps, "SetupEntityId": cls})
    assert org.get(rid)["SetupEntityType"] == "ApexClass"
    with pytest.raises(ApiError, match="can't be granted through SetupEntityAccess"):
        org.insert("SetupEntityAccess", {"ParentId": ps, "SetupEntityId": uid(org, "jane.doe@acme.emulated")})


def test_at_most_two_semi_joins_per_where_clause(org):
    two = ("SELECT Id FROM User WHERE Id IN (SELECT AssigneeId FROM PermissionSetAssignment) AND ProfileId IN "
           "(SELECT Id FROM Profile)")
    assert q(org, two) is not None
    with pytest.raises(soql.QueryError, match="Maximum 2 semi join sub-selects are allowed"):
        q(org, two + " AND Id NOT IN (SELECT UserId FROM LoginHistory)")


def test_a_collection_mixing_setup_and_non_setup_objects_is_refused_unless_the_option_says_otherwise(http_org):
    http_org.state.options.dev_hub = True
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "ScratchOrgInfo"}, "Edition": "Developer"},
        {"attributes": {"type": "PermissionSetAssignment"}, "AssigneeId": "005000000000002AAA",
         "PermissionSetId": http_org.state.one("PermissionSet", Name="Sync_Reader")["Id"]}]}
    status, res = _post(http_org, "/services/data/v60.0/composite/sobjects", body)
    assert status == 200 and [r["errors"][0]["statusCode"] for r in res] == ["MIXED_DML_OPERATION"] * 2
    http_org.state.options.refuse_mixed_dml = False     # the [U] the other way: each record on its own
    status, res = _post(http_org, "/services/data/v60.0/composite/sobjects", body)
    assert {r["errors"][0]["statusCode"] for r in res if not r["success"]} <= {"REQUIRED_FIELD_MISSING"}
    assert all(r["errors"][0]["statusCode"] != "MIXED_DML_OPERATION" for r in res if not r["success"])


def test_the_deploy_limits_are_the_metadata_apis(org, monkeypatch):
    """10,000 files at once; 600 MB unzipped; 50 MB base64-encoded (Metadata API Developer Guide,
    deploy()). The byte limits are lowered here so the test needs no 600 MB."""
    jobs = mdapi.Jobs()
    members = {"ApexClass": [f"C{i}" for i in range(5001)]}
    files = {"package.xml": package_xml.build(members, "62.0")}
    for i in range(5001):
        files[f"classes/C{i}.cls"] = "public class C{} {{}}".format(i)
        files[f"classes/C{i}.cls-meta.xml"] = "<ApexClass/>"
    with pytest.raises(mdapi.SoapFault, match="10,000 at once"):
        call(org, jobs, f"<deploy><ZipFile>{_deploy_zip(files)}</ZipFile></deploy>")
    monkeypatch.setattr(mdapi, "MAX_UNZIPPED_BYTES", 1000)
    small = {"package.xml": package_xml.build({"StaticResource": ["big"]}, "62.0"),
             "staticresources/big.resource": "x" * 2000, "staticresources/big.resource-meta.xml": "<StaticResource/>"}
    with pytest.raises(mdapi.SoapFault, match="600 MB"):
        call(org, jobs, f"<deploy><ZipFile>{_deploy_zip(small)}</ZipFile></deploy>")
    monkeypatch.setattr(mdapi, "MAX_BASE64_BYTES", 100)
    with pytest.raises(mdapi.SoapFault, match="50 MB base64-encoded"):
        call(org, jobs, f"<deploy><ZipFile>{_deploy_zip(small)}</ZipFile></deploy>")
