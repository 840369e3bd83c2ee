"""The shared corpus: byte-exact round trips, schema validity of inputs and of everything we write."""

from __future__ import annotations

import pytest
from lxml import etree

from sf_intuser.metadata import access, schema, xml
from sf_intuser.migrate.convert import Input, convert
from tests.conftest import CORPUS

pytestmark = pytest.mark.corpus

DECL = b'<?xml version="1.0" encoding="UTF-8"?>'


def _written_by_salesforce(data: bytes) -> bool:
    """Salesforce's own layout: its declaration, no trailing blanks, 4 spaces per nesting level."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if lines[0] != DECL or b"\r" in data.replace(b"\r\n", b""):
        return False
    depth = 0
    for line in lines[1:]:
        if not line:
            continue
        if line != line.rstrip():
            return False
        body = line.lstrip(b" ")
        closing = body.startswith(b"</")
        if closing:
            depth -= 1
        if len(line) - len(body) != 4 * depth:
            return False
        if not closing and not body.endswith(b"/>") and b"</" not in body:
            depth += 1
    return True


def _files(corpus):
    return [e for e in corpus if e["kind"] != "wsdl"]


def test_every_salesforce_written_file_round_trips(corpus):
    checked = 0
    for e in _files(corpus):
        data = (CORPUS / e["path"]).read_bytes()
        if not _written_by_salesforce(data):
            continue
        out = xml.parse(data, e["path"]).to_bytes()
        assert out.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n"), e["path"]
        assert out == data, e["path"]  # line endings and final newline are kept too
        checked += 1
    # the filter must not hollow the test out: the corpus has 79 files, most written by Salesforce
    assert checked >= 60


def test_schema_checker_agrees_with_the_xsd(corpus, md_schema):
    """Our element-order check finds a problem exactly where the WSDL schema rejects a file."""
    agree = 0
    for e in _files(corpus):
        doc = xml.parse((CORPUS / e["path"]).read_bytes(), e["path"])
        ours = schema.check(doc.root, doc.type_name)
        xsd_ok = md_schema.validate(doc.root.getroottree())
        assert (not ours) == xsd_ok, (e["path"], ours[:2], md_schema.error_log.last_error)
        agree += 1
    assert agree == len(_files(corpus))


def test_convert_outputs_validate_and_never_widen_access(corpus, md_schema):
    inputs = []
    sources = {}
    for e in _files(corpus):
        if e["kind"] not in ("profile", "permissionset", "permissionsetgroup", "connectedapp"):
            continue
        data = (CORPUS / e["path"]).read_bytes()
        type_name = {"profile": "Profile", "permissionset": "PermissionSet",
                     "permissionsetgroup": "PermissionSetGroup", "connectedapp": "ConnectedApp"}[e["kind"]]
        name = e["path"]  # unique across repositories
        inputs.append(Input(type_name, name, data, e["path"]))
        sources[name] = data
    res = convert(inputs)
    assert not res.errors
    n_ps = n_profiles = 0
    for rw in res.outputs:
        root = etree.fromstring(rw.data)
        assert md_schema.validate(root.getroottree()), (rw.name, md_schema.error_log.last_error)
        assert xml.parse(rw.data).to_bytes() == rw.data  # written as Salesforce writes
        if rw.type == "PermissionSet":
            n_ps += 1
            (src,) = rw.sources
            granted_before = access.grants(xml.parse(sources[src]).root)
            granted_after = access.grants(root)
            assert granted_after <= granted_before, (rw.name, sorted(granted_after - granted_before)[:5])
        else:
            n_profiles += 1
            assert xml.text(root, "userLicense") == "Salesforce Integration"
            # an API-only profile grants no object, field, class or page access at all
            assert access.grants(root) <= {access.Grant("userPermissions", p, "enabled")
                                           for p in ("ApiEnabled", "ApiUserOnly", "ChatterInternalUser")}
    assert n_ps >= 20 and n_profiles >= 5


def test_biggest_profile_converts_and_keeps_every_grant_the_license_allows(corpus):
    e = max((e for e in corpus if e["kind"] == "profile"), key=lambda e: e["bytes"])
    data = (CORPUS / e["path"]).read_bytes()
    from sf_intuser.metadata import profile

    rw = profile.to_permission_set(data, "Admin")
    before = access.grants(xml.parse(data).root)
    after = access.grants(xml.parse(rw.data).root)
    dropped = {c.name for c in rw.changes if c.action == "dropped" and c.section == "userPermissions"}
    lost = {g for g in before - after if not (g.section == "userPermissions" and g.key in dropped)}
    assert not lost
    assert len(after) > 1000


def test_lint_finds_no_error_in_files_real_orgs_hold(corpus):
    """Rules that real orgs contradict are warnings: every profile and permission set of the corpus
    (retrieved from or deployed to real orgs) and of the bundled example passes without an error."""
    from sf_intuser.hooks.lint import LintInput, lint
    from sf_intuser.workspace import classify_path
    from tests.conftest import EXAMPLE

    items = []
    for p in [CORPUS / e["path"] for e in _files(corpus)] + sorted(EXAMPLE.rglob("*-meta.xml")):
        mf = classify_path(p)
        if mf is not None and mf.type in ("Profile", "PermissionSet"):
            items.append(LintInput(str(p), mf.type, mf.name, p.read_bytes()))
    findings = lint(items)
    assert len(items) >= 60
    assert [f for f in findings if f.severity == "error"] == []
    # the contradicted rules still speak, as warnings
    assert {"api-profile-objects", "schema-noncanonical-value", "schema-retired-element",
            "integration-permset-refused"} <= {f.rule for f in findings}
