"""Hardened parsing and Salesforce-faithful writing."""

from __future__ import annotations

import pytest

from sf_intuser.metadata import xml

PS = b"""<?xml version="1.0" encoding="UTF-8"?>
<PermissionSet xmlns="http://soap.sforce.com/2006/04/metadata">
    <description>Sales, AM&apos;s &amp; &quot;CS&quot; &lt;team&gt;</description>
    <hasActivationRequired>false</hasActivationRequired>
    <label>X</label>
</PermissionSet>
"""


def test_round_trip_is_byte_exact_with_salesforce_escapes():
    doc = xml.parse(PS)
    assert xml.text(doc.root, "description") == "Sales, AM's & \"CS\" <team>"
    assert doc.to_bytes() == PS


def test_round_trip_keeps_missing_final_newline_and_crlf():
    no_nl = PS.rstrip(b"\n")
    assert xml.parse(no_nl).to_bytes() == no_nl
    crlf = PS.replace(b"\n", b"\r\n")
    assert xml.parse(crlf).to_bytes() == crlf


def test_reindents_two_space_files_to_four_and_self_closes_empty():
    src = b'<?xml version="1.0" encoding="UTF-8"?>\n<Profile xmlns="http://soap.sforce.com/2006/04/metadata">\n  <custom>true</custom>\n  <loginHours></loginHours>\n</Profile>\n'  # noqa: E501
    assert xml.parse(src).to_bytes() == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Profile xmlns="http://soap.sforce.com/2006/04/metadata">\n'
        b"    <custom>true</custom>\n    <loginHours/>\n</Profile>\n"
    )


def test_serialize_twice_gives_same_bytes():
    doc = xml.parse(PS)
    assert doc.to_bytes() == doc.to_bytes()


@pytest.mark.parametrize(
    "payload",
    [
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        b'<Profile xmlns="http://soap.sforce.com/2006/04/metadata"><description>&lol2;</description></Profile>',
        b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<Profile xmlns="http://soap.sforce.com/2006/04/metadata"><description>&xxe;</description></Profile>',
        b'<?xml version="1.0"?><!DOCTYPE Profile SYSTEM "http://127.0.0.1:1/evil.dtd"><Profile/>',
    ],
    ids=["entity-bomb", "external-entity", "external-dtd"],
)
def test_hostile_xml_is_refused_with_the_file_named(payload):
    with pytest.raises(xml.MetadataXmlError) as err:
        xml.parse(payload, source="profiles/Evil.profile")
    assert "profiles/Evil.profile" in str(err.value)
    assert "DTD" in err.value.problem


def test_malformed_xml_names_file_and_fix():
    with pytest.raises(xml.MetadataXmlError) as err:
        xml.parse(b"<Profile><custom>true</Profile>", source="Broken.profile")
    assert str(err.value).startswith("Broken.profile: not well-formed XML")
    assert "re-retrieve" in err.value.fix


def test_size_limit():
    with pytest.raises(xml.MetadataXmlError) as err:
        xml.parse(PS, source="big.profile", max_bytes=100)
    assert "over the 100-byte limit" in str(err.value)
