"""convert as a whole (pure): inputs keyed by file, unique names, what is reported, and the two
paths of the profile rewrite (in place and general) giving the same bytes and changes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sf_intuser.metadata import access, fastpath, naming, profile, xml
from sf_intuser.migrate.convert import DuplicateInputs, Input, convert
from tests.conftest import CORPUS
from tests.test_rewrites import HEAD, NS, PROFILE, profiles


def _profile(body: str = "", license: str = "Salesforce") -> bytes:
    return HEAD + b"<Profile" + NS + b">" + body.encode() + b"<userLicense>" + license.encode() + \
        b"</userLicense></Profile>"


OBJ = ("<objectPermissions><allowCreate>false</allowCreate><allowDelete>false</allowDelete>"
       "<allowEdit>false</allowEdit><allowRead>true</allowRead><modifyAllRecords>false</modifyAllRecords>"
       "<object>{}</object><viewAllRecords>false</viewAllRecords></objectPermissions>")


def _ps_names(res) -> dict[str, str]:
    return {o.sources[0]: o.name for o in res.outputs if o.type == "PermissionSet"}


# --- names ----------------------------------------------------------------------------------------


def test_transliteration_keeps_letters():
    assert naming.api_name("Über Profil", "_Intuser") == "Uber_Profil_Intuser"
    assert naming.api_name("Straße Æble Øst", "") == "Strasse_AEble_Ost"
    assert naming.api_name("Продажи", "_Intuser") == "Prodazhi_Intuser"
    assert naming.api_name("Δίκτυο", "") == "Diktyo"
    cjk = naming.api_name("統合ユーザー", "_Intuser")
    assert cjk.startswith("X") and cjk.endswith("_Intuser") and cjk != naming.api_name("別の名前", "_Intuser")
    assert naming.api_name("3rd party", "") == "X_3rd_party"
    assert len(naming.api_name("A" * 200, "_Intuser")) == 80


def test_two_files_with_one_profile_name_are_refused_naming_both():
    inputs = [Input("Profile", "Admin", _profile(OBJ.format("A__c")), "repo1/profiles/Admin.profile"),
              Input("Profile", "admin", _profile(OBJ.format("B__c")), "repo2/profiles/admin.profile-meta.xml")]
    with pytest.raises(DuplicateInputs) as err:
        convert(inputs)
    assert "repo1/profiles/Admin.profile" in str(err.value) and "repo2/profiles/admin.profile-meta.xml" in str(err.value)
    # a profile and a permission set may share a name: they are different components
    ok = convert([Input("Profile", "Admin", _profile(OBJ.format("A__c")), "p/Admin.profile"),
                  Input("PermissionSet", "Admin", origin="ps/Admin.permissionset", load=lambda: _ps("Admin"))])
    assert {o.sources[0] for o in ok.outputs if o.type == "PermissionSet"} == {"p/Admin.profile",
                                                                                "ps/Admin.permissionset"}


def _ps(label: str, license: str = "Salesforce") -> bytes:
    return (HEAD + b"<PermissionSet" + NS + b"><hasActivationRequired>false</hasActivationRequired><label>"
            + label.encode() + b"</label><license>" + license.encode() + b"</license>"
            + OBJ.format("X__c").encode() + b"</PermissionSet>")


def test_names_that_clean_up_alike_get_stable_distinct_names_with_a_warning():
    names = ["Sales - Integration", "Sales Integration", "Sales (Integration)"]
    inputs = [Input("Profile", n, _profile(OBJ.format(f"O{i}__c")), f"f{i}") for i, n in enumerate(names)]
    res = convert(inputs)
    got = _ps_names(res)
    assert len(set(got.values())) == 3 and all(v.startswith("Sales_Integration_") for v in got.values())
    assert all(len(w) and "would all become PermissionSet Sales_Integration_Intuser" in w for w in res.warnings)
    # stable: the same inputs in another order give the same names
    again = _ps_names(convert(list(reversed(inputs))))
    assert again == got
    # and every profile points at its own permission set
    assert {res.profile_targets[n]["permissionSet"] for n in names} == set(got.values())


def test_an_existing_file_keeps_its_name_only_for_its_own_source():
    inputs = [Input("Profile", "Sales Integration", _profile(OBJ.format("A__c")), "a")]
    mine = naming.Existing("out/permissionsets/Sales_Integration_Intuser.permissionset-meta.xml",
                           "profile Sales Integration")
    res = convert(inputs, existing=lambda t, n: mine if n.lower() == "sales_integration_intuser" else None)
    assert _ps_names(res) == {"a": "Sales_Integration_Intuser"} and not res.warnings
    theirs = naming.Existing("force-app/permissionsets/Sales_Integration_Intuser.permissionset-meta.xml", None)
    res = convert(inputs, existing=lambda t, n: theirs if n.lower() == "sales_integration_intuser" else None)
    (name,) = _ps_names(res).values()
    assert name != "Sales_Integration_Intuser" and name.endswith("_Intuser")
    assert "already exists in force-app/permissionsets" in res.warnings[0] and "not generated" in res.warnings[0]


def test_generated_description_names_its_source():
    rw = profile.to_permission_set(PROFILE, "Sync User")
    assert naming.source_of(xml.text(xml.parse(rw.data).root, "description")) == "profile Sync User"
    plan = profile.plan_api_profiles({"Sync User": PROFILE})
    desc = xml.text(xml.parse(plan.profiles[0].data).root, "description")
    assert naming.source_of(desc) == "profile Sync User"
    assert naming.source_of("Our integration user") is None


# --- what is reported -----------------------------------------------------------------------------


def test_skipped_profiles_are_listed_with_the_reason():
    res = convert([Input("Profile", "Min", _profile("", "Salesforce Integration"), "p/Min.profile")])
    assert res.skipped == [{"type": "Profile", "name": "Min", "file": "p/Min.profile",
                            "reason": "already on the Salesforce Integration license: nothing to convert"}]
    assert res.outputs == []


RT = ("<recordTypeVisibilities><default>{d}</default><recordType>Account.{n}</recordType>"
      "<visible>true</visible></recordTypeVisibilities>")


def test_a_dropped_default_record_type_is_a_warning_and_false_defaults_are_silent():
    data = _profile(OBJ.format("Account") + RT.format(d="true", n="Customer") + RT.format(d="false", n="Partner"))
    for fast in (True, False):
        rw = profile.to_permission_set(data, "P", fast=fast)
        about = [c for c in rw.changes if c.section == "recordTypeVisibilities" and c.name != "*"]
        assert [(c.action, c.name) for c in about] == [("warning", "Account.Customer")]
        assert "default record type for Account" in about[0].reason and "RecordTypeId" in about[0].reason


def test_a_profile_without_object_or_field_access_gets_a_warning_naming_the_retrieve():
    res = convert([Input("Profile", "Bare", _profile("<userPermissions><enabled>true</enabled><name>ApiEnabled"
                                                     "</name></userPermissions>"), "p/Bare.profile")])
    (w,) = [c for c in res.changes if c.rule == "incomplete-retrieve"]
    assert w.action == "warning" and '-m "Profile:Bare"' in w.reason and "-m CustomObject:Account" in w.reason
    full = convert([Input("Profile", "Full", _profile(OBJ.format("Account")), "p/Full.profile")])
    assert not [c for c in full.changes if c.rule == "incomplete-retrieve"]


def test_empty_login_hours_are_not_said_to_be_carried():
    res = convert([Input("Profile", "P", _profile(OBJ.format("A__c") + "<loginHours/>"), "p/P.profile")])
    assert res.profile_targets["P"]["apiOnlyProfile"] == "Minimum Access - API Only Integrations"
    assert not [c for c in res.changes if "carried" in c.reason]
    assert not [o for o in res.outputs if o.type == "Profile"]


def test_streaming_sink_holds_no_bytes_and_loads_each_input_once():
    seen: list[str] = []
    loads: list[str] = []

    def loader(n):
        def load():
            loads.append(n)
            return _profile(OBJ.format(f"{n}__c"))
        return load

    res = convert([Input("Profile", n, origin=n, load=loader(n)) for n in ("A", "B", "C")],
                  sink=lambda key, data: seen.append(key))
    assert sorted(loads) == ["A", "B", "C"]
    assert len(seen) == len(res.outputs) == 3 and all(o.data is None for o in res.outputs)


# --- least privilege over random sets of inputs ------------------------------------------------------

_NAMES = st.sampled_from(["Sales - Integration", "Sales Integration", "Sales (Integration)", "Über Profil",
                          "Uber Profil", "Admin", "admin", "API Only - Admin", "統合", "統合ユーザー", "3rd Party",
                          "Marketing_Sync", "Marketing Sync"]) | st.from_regex(r"[A-Za-z][A-Za-z0-9 _-]{0,20}",
                                                                               fullmatch=True)


@st.composite
def input_sets(draw):
    n = draw(st.integers(1, 6))
    out = []
    for i in range(n):
        kind = draw(st.sampled_from(["Profile", "PermissionSet"]))
        name = draw(_NAMES)
        if kind == "Profile":
            data = draw(profiles())
        else:
            data = draw(profiles()).replace(b"<Profile", b"<PermissionSet").replace(b"</Profile>", b"</PermissionSet>")
            data = data.replace(b"<custom>true</custom>", b"").replace(
                b"<userLicense>Salesforce</userLicense>", b"<hasActivationRequired>false</hasActivationRequired>"
                b"<label>L</label><license>Salesforce</license>")
            data = data.replace(b"<tabVisibilities>", b"<tabSettings>").replace(b"</tabVisibilities>", b"</tabSettings>")
            for old, new in ((b"DefaultOn", b"Visible"), (b"DefaultOff", b"Available"), (b"Hidden", b"None")):
                data = data.replace(old, new)
        out.append(Input(kind, name, data, f"src{i}/{name}"))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(input_sets())
def test_every_generated_permission_set_derives_from_one_source_and_grants_nothing_beyond_it(inputs):
    keys = [(i.type, i.name.lower()) for i in inputs]
    if len(set(keys)) < len(keys):
        with pytest.raises(DuplicateInputs):
            convert(inputs)
        return
    res = convert(inputs)
    by_key = {i.key: i for i in inputs}
    names = [(o.type, o.name.lower()) for o in res.outputs]
    assert len(set(names)) == len(names), names                     # no two outputs share a name
    for o in res.outputs:
        root = xml.parse(o.data).root
        if o.type == "PermissionSet":
            (src,) = o.sources                                       # exactly one source
            before = access.grants(xml.parse(by_key[src].data).root)
            assert access.grants(root) <= before                     # nothing beyond it
            assert naming.source_of(xml.text(root, "description")).endswith(" " + by_key[src].name)
        else:
            common = set.intersection(*(profile.enabled_user_permissions(xml.parse(by_key[s].data).root)
                                        for s in o.sources))
            assert profile.enabled_user_permissions(root) <= common | {"ApiUserOnly"}
    for _name, target in res.profile_targets.items():                 # each profile points at its own set
        (own,) = [o for o in res.outputs if o.type == "PermissionSet" and o.sources == [target["file"]]]
        assert target["permissionSet"] == own.name


# --- the two paths of the profile rewrite --------------------------------------------------------


def _same(data: bytes, name: str = "P") -> bool:
    a = profile.to_permission_set(data, name, fast=True)
    b = profile.to_permission_set(data, name, fast=False)
    assert a.data == b.data
    assert sorted(map(repr, a.changes)) == sorted(map(repr, b.changes))
    doc = xml.parse(data, comments=False)
    return fastpath.to_permission_set(doc.root, label="l", description="d", license=None, file="f",
                                      comments_possible=False) is not None


def test_in_place_and_general_paths_agree_on_every_corpus_profile(corpus):
    fast = 0
    for e in corpus:
        if e["kind"] == "profile":
            fast += _same((CORPUS / e["path"]).read_bytes())
    assert fast >= 25   # the retrieved ones take the fast path; hand-edited ones the general path


_IRREGULAR = [
    (b"<enabled>true</enabled>", b"<enabled>True</enabled>"),               # hand-edited boolean
    (b"<visibility>DefaultOff</visibility>", b"<visibility>Shown</visibility>"),   # unknown value
    (b"<custom>true</custom>", b"<custom>true</custom><!-- note -->"),      # a comment
    (b"<allowCreate>", b"<hidden>x</hidden><allowCreate>"),                 # an unknown field
    (b"<editable>", b"<editable>false</editable><editable>"),              # a field twice
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profiles(), st.lists(st.sampled_from(_IRREGULAR), max_size=2), st.booleans(), st.booleans())
def test_in_place_and_general_paths_agree_on_generated_and_irregular_profiles(data, edits, shuffle, formatted):
    for old, new in edits:
        data = data.replace(old, new, 1)
    if formatted:   # as a retrieve writes it: the prefilter takes the entries granting nothing out first
        data = xml.parse(data).to_bytes()
    if shuffle:   # entries out of key order: both paths sort them
        data = data.replace(b"<fieldPermissions>", b"<fieldPermissions>", 1)
        root = xml.parse(data).root
        fields = list(root.iterchildren(xml.q("fieldPermissions")))
        if len(fields) > 1:
            fields[0].addprevious(fields[-1])
        data = xml.serialize(root)
    _same(data)


FORMATTED = xml.serialize(xml.parse(_profile(
    "<classAccesses><apexClass>Off</apexClass><enabled>false</enabled></classAccesses>"
    "<classAccesses><apexClass>On</apexClass><enabled>true</enabled></classAccesses>"
    "<fieldPermissions><editable>false</editable><field>A.X__c</field><readable>false</readable></fieldPermissions>"
    "<fieldPermissions><editable>false</editable><field>A.Y__c</field><readable>true</readable></fieldPermissions>"
    + OBJ.format("A")
    + "<tabVisibilities><tab>T</tab><visibility>Hidden</visibility></tabVisibilities>")).root)


def test_prefilter_takes_out_only_root_entries_that_grant_nothing():
    rest, counts = fastpath.prefilter(FORMATTED)
    assert counts == {"classAccesses": 1, "fieldPermissions": 1, "tabVisibilities": 1}
    assert b"<apexClass>Off</apexClass>" not in rest and b"<field>A.X__c</field>" not in rest
    assert b"<apexClass>On</apexClass>" in rest and b"<field>A.Y__c</field>" in rest
    assert access.grants(xml.parse(rest).root) == access.grants(xml.parse(FORMATTED).root)
    # where text may not be markup, nothing is touched
    for extra in (b"<!-- note -->", b"<![CDATA[x]]>", b"<?pi x?>"):
        marked = FORMATTED.replace(b"<userLicense>", extra + b"<userLicense>")
        assert fastpath.prefilter(marked) == (marked, {})
    # an entry indented deeper than the root's is not a root entry
    nested = FORMATTED.replace(b"\n    <classAccesses>\n        <apexClass>Off", b"\n        <classAccesses>\n"
                               b"        <apexClass>Off")
    assert "classAccesses" not in fastpath.prefilter(nested)[1]


def test_prefiltered_entries_are_reported_as_granting_nothing():
    fast = profile.to_permission_set(FORMATTED, "P")
    general = profile.to_permission_set(FORMATTED, "P", fast=False)
    assert fast.data == general.data
    nogrant = {(c.section, c.count) for c in fast.changes if c.rule == "no-grant"}
    assert nogrant == {("classAccesses", 1), ("fieldPermissions", 1), ("tabVisibilities", 1)}
