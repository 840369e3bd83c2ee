"""Every Metadata API type and how its files sit in a Metadata API zip, so that the emulated org can
tell each file of a deploy to its component and account for every member of the manifest.

The table (``data/metadata_types.json``) is generated from the pinned sf CLI's own registry
(``@salesforce/source-deploy-retrieve`` ``metadataRegistry.json``; ``scripts/gen_metadata_types.py``),
the same one sf uses to write the zips it deploys. Layouts in a zip (Metadata API Developer Guide,
"Deploying and Retrieving Metadata with the Zip File"; the registry's strategies):

- most types: ``<directory>/<name>.<suffix>``; types with a body beside their XML
  (``matchingContentFile``, ``mixedContent``: ApexClass, ApexTrigger, StaticResource, ...) add a
  ``-meta.xml`` beside it;
- bundles (LightningComponentBundle, AuraDefinitionBundle, ...): ``<directory>/<name>/...``;
- types in folders (Report, Dashboard, EmailTemplate, Document): ``<directory>/<folder>/<name>.<suffix>``,
  named ``<folder>/<name>``; the folder itself is ``<directory>/<folder>-meta.xml``;
- children: elements of a parent's file that are components of their own, named
  ``<Parent>.<child>`` (a CustomObject's ``fields`` are CustomFields ``Account.Region__c``), or by the
  child's name alone (CustomLabels' ``labels``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "metadata_types.json"
#: files of a deploy zip that are not components (Metadata API Developer Guide, "Deleting Components
#: from an Organization": destructiveChanges.xml, destructiveChangesPre.xml, destructiveChangesPost.xml)
MANIFESTS = ("package.xml", "destructiveChanges.xml", "destructiveChangesPre.xml", "destructiveChangesPost.xml")


@dataclass(frozen=True)
class MdType:
    name: str
    directory: str
    suffix: str | None
    adapter: str | None = None
    in_folder: bool = False
    folder_type: str | None = None
    #: element in the parent's file -> child type
    children: dict[str, str] = field(default_factory=dict)
    child_names_alone: bool = False


@lru_cache(maxsize=1)
def types() -> dict[str, MdType]:
    raw = json.loads(DATA.read_text(encoding="utf-8"))["types"]
    return {name: MdType(name, t["directory"], t.get("suffix"), t.get("adapter"), bool(t.get("inFolder")),
                         t.get("folderType"), dict(t.get("children") or {}), bool(t.get("childNamesAlone")))
            for name, t in raw.items()}


@lru_cache(maxsize=1)
def by_directory() -> dict[str, list[MdType]]:
    out: dict[str, list[MdType]] = {}
    for t in types().values():
        out.setdefault(t.directory, []).append(t)
    return out


@lru_cache(maxsize=1)
def parent_of() -> dict[str, MdType]:
    """child type -> its parent type"""
    return {child: t for t in types().values() for child in t.children.values()}


@dataclass
class ZipComponent:
    type: str
    name: str
    #: path in the zip (below the package root) -> bytes
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def first_file(self) -> str:
        return main_file(self.files)


def main_file(files: dict[str, bytes]) -> str:
    """A component's main file among its files: its body, else its -meta.xml."""
    bodies = [p for p in files if not p.endswith("-meta.xml")]
    return sorted(bodies or files)[0]


def classify(rel: str) -> tuple[str, str] | None:
    """(type, full name) of the component a file (path below the package root) belongs to, or None
    for a file no type claims."""
    parts = rel.split("/")
    candidates = by_directory().get(parts[0])
    if not candidates or len(parts) < 2:
        return None
    bundle = next((t for t in candidates if t.adapter == "bundle"), None)
    if bundle is not None and len(parts) >= 3:
        return bundle.name, parts[1]
    fname = parts[-1]
    base = fname[:-len("-meta.xml")] if fname.endswith("-meta.xml") else fname
    in_folder = next((t for t in candidates if t.in_folder), None)
    if in_folder is not None:
        if len(parts) == 2:
            # the folder's own file: <dir>/<folder>-meta.xml (or <folder>.<folderSuffix>-meta.xml)
            folder = types().get(in_folder.folder_type or "")
            stem = base
            if folder and folder.suffix and stem.endswith("." + folder.suffix):
                stem = stem[:-len(folder.suffix) - 1]
            return (folder.name if folder else in_folder.name), stem
        sub = "/".join(parts[1:-1])
        stem = base[:-len(in_folder.suffix) - 1] if in_folder.suffix and base.endswith("." + in_folder.suffix) \
            else base
        return in_folder.name, f"{sub}/{stem}"
    if len(parts) != 2:
        return None
    for t in sorted(candidates, key=lambda t: -len(t.suffix or "")):
        if t.suffix and base.endswith("." + t.suffix):
            return t.name, base[:-len(t.suffix) - 1]
    if len(candidates) == 1 and candidates[0].adapter == "mixedContent":
        return candidates[0].name, base.split(".")[0]
    return None
