from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
WSDL = CORPUS / "forcedotcom__wsdl" / "resources" / "metadata.wsdl"
EXAMPLE = ROOT / "sf_intuser" / "examples" / "acme"


#: `make test` (and so CI) sets this: a broken setup fails instead of passing with tests skipped
STRICT = os.environ.get("SF_INTUSER_STRICT") == "1"


def pytest_sessionstart(session):
    """Under SF_INTUSER_STRICT=1, the pinned sf CLI must be installed (the end-to-end tests would
    otherwise skip), and a ../shared that is there must hold the corpus and its WSDL (the corpus tests
    would otherwise skip). A machine with no ../shared at all runs without the corpus tests, as the
    README says, and the summary says so."""
    if not STRICT:
        return
    from tests.e2e import SHIM

    problems = []
    if not SHIM.exists():
        problems.append(f"the pinned sf CLI is not installed ({SHIM.relative_to(ROOT)}): run `make setup`")
    if SHARED.exists() and not ((CORPUS / "index.json").is_file() and WSDL.is_file()):
        problems.append(f"{SHARED} is there but its corpus is incomplete (corpus/index.json and the WSDL)")
    if problems:
        pytest.exit("SF_INTUSER_STRICT: " + "; ".join(problems), returncode=1)


def pytest_terminal_summary(terminalreporter):
    if not SHARED.exists():
        terminalreporter.write_line("note: ../shared is absent: the corpus tests were skipped")


def corpus_index() -> list[dict]:
    if not (CORPUS / "index.json").exists():
        return []
    return json.loads((CORPUS / "index.json").read_text())


@pytest.fixture(scope="session")
def corpus() -> list[dict]:
    entries = corpus_index()
    if not entries:
        pytest.skip("../shared/corpus is absent")
    return entries


@pytest.fixture(scope="session")
def md_schema():
    """The Metadata API XSD from the v66 WSDL, with global elements for the root types."""
    if not WSDL.exists():
        pytest.skip("../shared/corpus WSDL is absent")
    from lxml import etree

    tree = etree.parse(str(WSDL), etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    xsd_ns = "http://www.w3.org/2001/XMLSchema"
    schema_el = tree.find(f".//{{{xsd_ns}}}schema")
    src = etree.tostring(schema_el)
    # re-root the schema so the WSDL's namespace declarations apply
    new = etree.fromstring(src)
    nsmap = dict(new.nsmap)
    nsmap.update({"tns": "http://soap.sforce.com/2006/04/metadata", "xsd": xsd_ns})
    root = etree.Element(new.tag, nsmap=nsmap, attrib=dict(new.attrib))
    for child in new:
        root.append(child)
    for name in ("Profile", "PermissionSet", "PermissionSetGroup", "ConnectedApp", "Package"):
        el = etree.SubElement(root, f"{{{xsd_ns}}}element")
        el.set("name", name)
        el.set("type", f"tns:{name}")
    return etree.XMLSchema(root)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One emulated org and one sf login per test module (the real CLI, a private HOME)."""
    from tests.e2e import start_org

    emu, runner = start_org(tmp_path_factory.mktemp("home"))
    yield emu, runner
    emu.stop()


@pytest.fixture()
def org(server):
    """The module's org, seeded afresh and without faults, for each test."""
    from sf_intuser.emulator import seed

    emu, runner = server
    emu.state = seed.load()
    emu.faults.clear()
    return emu, runner
