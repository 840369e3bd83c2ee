"""The schema check's fast path (one XSD validation in libxml2) says "no problem" exactly when the
element-by-element walk finds none: on the corpus, the bundled examples and generated profiles."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from sf_intuser.metadata import schema, xml
from tests.conftest import CORPUS, EXAMPLE, corpus_index

NS = xml.MD_NS
SECTIONS = ("custom", "description", "objectPermissions", "userLicense", "userPermissions", "fieldPermissions",
            "bogus", "tabVisibilities", "loginIpRanges")
BOOLS = ("true", "false", " true ", "True", "1", "")


def _entry(section: str, flag: str, n: int) -> str:
    if section in ("custom",):
        return f"<custom>{flag}</custom>"
    if section == "description":
        return "<description>d &amp; e</description>"
    if section == "userLicense":
        return "<userLicense>Salesforce</userLicense>"
    if section == "objectPermissions":
        return (f"<objectPermissions><allowCreate>{flag}</allowCreate><allowRead>true</allowRead>"
                f"<object>Obj{n}__c</object></objectPermissions>")
    if section == "fieldPermissions":
        return f"<fieldPermissions><editable>false</editable><field>A.F{n}</field><readable>{flag}</readable>" \
               "</fieldPermissions>"
    if section == "userPermissions":
        return f"<userPermissions><enabled>{flag}</enabled><name>P{n}</name></userPermissions>"
    if section == "tabVisibilities":
        return f"<tabVisibilities><tab>T{n}</tab><visibility>{'DefaultOn' if flag == 'true' else flag}</visibility>" \
               "</tabVisibilities>"
    if section == "loginIpRanges":
        return "<loginIpRanges><endAddress>1.1.1.2</endAddress><startAddress>1.1.1.1</startAddress></loginIpRanges>"
    return "<bogus>1</bogus>"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SECTIONS), st.sampled_from(BOOLS)), max_size=12))
def test_fast_and_full_checks_agree_on_generated_profiles(entries):
    body = "".join(_entry(s, f, i) for i, (s, f) in enumerate(entries))
    root = etree.fromstring(f'<Profile xmlns="{NS}">{body}</Profile>'.encode())
    fast = schema.check(root, "Profile")
    full = schema._check(root, "Profile")
    assert fast == full


def test_fast_and_full_checks_agree_on_real_files():
    paths = [CORPUS / e["path"] for e in corpus_index() if e["kind"] != "wsdl"]
    paths += sorted(EXAMPLE.rglob("*-meta.xml"))
    checked = 0
    for p in paths:
        doc = xml.parse(p.read_bytes(), str(p))
        if not schema.is_known_type(doc.type_name):
            continue
        assert schema.check(doc.root, doc.type_name) == schema._check(doc.root, doc.type_name), p
        checked += 1
    assert checked >= 5
