#!/usr/bin/env python3
"""Benchmark: ``sf-intuser convert`` on many profiles against a bare lxml parse + serialize.

Both sides run as fresh processes in the same run, on the same files, and are measured the same
way: CPU time (user + system, from ``wait4``) and peak resident memory (``VmHWM``, read by the
process itself as it exits). The baseline reads each file, parses it with ``lxml.etree.fromstring``,
serializes it with ``tostring`` and writes the bytes out: the least any tool that rewrites metadata
must do. The convert side is the real command line: ``sf-intuser convert DIR -d OUT --json``.

Sets:
- ``corpus``: every profile of ../shared/corpus, copied under unique names (skipped when absent);
- ``generated``: 24 generated profiles of the shape of a real org's (28.5 MB in all, the largest
  4 MB: object, field, class, page, tab, record type, layout and app entries, ~200 user permissions,
  some with login IP ranges and hours).

Goals (issue 8): convert CPU within 2x of the baseline's; the many-file call's peak memory at most
1.5x that of converting the largest file alone; ``--version`` and ``convert --help`` under 0.15 s.

Usage: python scripts/bench_convert.py [--repeat N (default 5)] [--set corpus|generated|all]
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
PY = sys.executable

_HWM = """
import atexit, os
def _hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            open(os.environ['BENCH_HWM'], 'w').write(line.split()[1])
atexit.register(_hwm)
"""

BASELINE = _HWM + """
import sys
from pathlib import Path
from lxml import etree
out = Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for p in sorted(Path(sys.argv[1]).iterdir()):
    data = p.read_bytes()
    (out / p.name).write_bytes(etree.tostring(etree.fromstring(data), encoding="UTF-8", xml_declaration=True))
"""

CONVERT = _HWM + """
import sys
from sf_intuser.cli import run
sys.exit(run(sys.argv[1:]))
"""


def measure(argv: list[str], stdout=subprocess.DEVNULL) -> tuple[float, float, int]:
    """(cpu seconds, wall seconds, peak KB) of one child process."""
    with tempfile.NamedTemporaryFile() as hwm:
        env = {**os.environ, "BENCH_HWM": hwm.name}
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=stdout, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode() if proc.stderr else ""
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:4])} ... exited {proc.returncode}: {err[-2000:]}")
        peak = int(Path(hwm.name).read_text() or 0)
    return usage.ru_utime + usage.ru_stime, wall, peak


# --- the sets -----------------------------------------------------------------------------------


def corpus_set(dest: Path) -> bool:
    index = CORPUS / "index.json"
    if not index.exists():
        return False
    for e in json.loads(index.read_text()):
        if e["kind"] != "profile":
            continue
        src = CORPUS / e["path"]
        name = src.name.split(".profile")[0]
        repo = e["path"].split("/")[0]
        target = dest / f"{repo}__{name}.profile"
        n = 1
        while target.exists():   # one repository may hold several profiles of one name
            n += 1
            target = dest / f"{repo}__{name} ({n}).profile"
        shutil.copyfile(src, target)
    return True


PERMS = ("ActivitiesAccess AllowUniversalSearch AllowViewKnowledge ApexRestServices ApiEnabled AssignPermissionSets "
         "AssignTopics BulkApiHardDelete ChatterEditOwnPost ChatterFileLink ChatterInternalUser ChatterInviteExternalUsers "
         "ChatterOwnGroups ConnectOrgToEnvironmentHub ConsentApiUpdate ContentAdministrator ContentWorkspaces ConvertLeads "
         "CreateCustomizeDashboards CreateCustomizeFilters CreateCustomizeReports CreateDashboardFolders CreateLtngTempFolder "
         "CreatePackaging CreateReportFolders CreateTopics CreateWorkBadgeDefinition CreateWorkspaces CustomizeApplication "
         "DataExport DelegatedTwoFactor DeleteActivatedContract DeleteTopics DistributeFromPersWksp EditActivatedOrders "
         "EditBrandTemplates EditCaseComments EditEvent EditHtmlTemplates EditKnowledge EditMyDashboards EditMyReports "
         "EditOppLineItemUnitPrice EditPublicDocuments EditPublicFilters EditPublicTemplates EditReadonlyFields EditTask "
         "EditTopics EmailAdministration EmailMass EmailSingle EmailTemplateManagement EnableCommunityAppLauncher "
         "EnableNotifications ExportReport FreezeUsers GiveRecognitionBadge ImportCustomObjects ImportLeads ImportPersonal "
         "InstallPackaging LightningConsoleAllowedForUser LightningExperienceUser ListEmailSend ManageAnalyticSnapshots "
         "ManageAuthProviders ManageBusinessHourHolidays ManageCallCenters ManageCases ManageCategories ManageCertificates "
         "ManageChatterMessages ManageContentPermissions ManageContentProperties ManageContentTypes ManageCustomPermissions "
         "ManageCustomReportTypes ManageDashbdsInPubFolders ManageDataCategories ManageDataIntegrations ManageDynamicDashboards "
         "ManageEmailClientConfig ManageEntitlements ManageExchangeConfig ManageHealthCheck ManageInteraction "
         "ManageInternalUsers ManageIpAddresses ManageKnowledge ManageKnowledgeImportExport ManageLeads ManageLoginAccessPolicies "
         "ManageMobile ManageNetworks ManagePasswordPolicies ManageProfilesPermissionsets ManagePropositions ManagePvtRptsAndDashbds "
         "ManageRecommendationStrategies ManageReleaseUpdates ManageRemoteAccess ManageReportsInPubFolders ManageRoles "
         "ManageSandboxes ManageSessionPermissionSets ManageSharing ManageSolutions ManageSubscriptions ManageSynonyms "
         "ManageTranslation ManageUnlistedGroups ManageUsers MassInlineEdit MergeTopics ModerateChatter ModifyAllData "
         "ModifyDataClassification ModifyMetadata NewReportBuilder Packaging2 Packaging2Delete PasswordNeverExpires "
         "PrivacyDataAccess QueryAllFiles RemoveDirectMessageMembers ResetPasswords RunReports ScheduleJob ScheduleReports "
         "SelectFilesFromSalesforce SendCustomNotifications SendExternalEmailAvailable ShareInternalArticles "
         "ShowCompanyNameAsUserBadge SolutionImport SubmitMacrosAllowed SubscribeDashboardRolesGrps SubscribeDashboardToOtherUsers "
         "SubscribeReportRolesGrps SubscribeReportToOtherUsers SubscribeReportsRunAsUser SubscribeToLightningDashboards "
         "SubscribeToLightningReports TransactionalEmailSend TransferAnyCase TransferAnyEntity TransferAnyLead "
         "UseTeamReassignWizards UseWebLink ViewAllData ViewAllProfiles ViewAllUsers ViewDataAssessment ViewDataCategories "
         "ViewDeveloperName ViewEventLogFiles ViewFlowUsageAndFlowEventData ViewHealthCheck ViewHelpLink ViewMyTeamsDashboards "
         "ViewPlatformEvents ViewPublicDashboards ViewPublicReports ViewRoles ViewSetup ViewUserPII").split()


def generated_profile(rng: random.Random, target_bytes: int, with_policy: bool, admin: bool = False) -> bytes:
    """A profile shaped like a retrieved one: sections in schema order, entries sorted, booleans canonical.

    How much grants nothing follows the retrieved profiles of shared/corpus over 100 KB: there, 50% of
    field entries and 73% of Apex class entries are all false (the Admin profiles about 10% and 2%,
    the integration and minimum-access ones 55-90%). An ``admin`` profile grants nearly everything; the
    others are restricted; a set of one admin for three restricted profiles matches the corpus."""
    def entry(tag: str, fields: list[tuple[str, str]]) -> str:
        inner = "".join(f"\n        <{k}>{v}</{k}>" for k, v in fields)
        return f"    <{tag}>{inner}\n    </{tag}>"

    tf = lambda p=0.5: "true" if rng.random() < p else "false"  # noqa: E731
    read, edit, cls = (0.9, 0.7, 0.98) if admin else (0.37, 0.15, 0.04)
    n_obj = max(4, target_bytes // 3050)
    objs = sorted({f"Obj{i:04d}__c" for i in range(n_obj)} | {"Account", "Contact", "Case", "Lead", "Opportunity"})
    sec: dict[str, list[str]] = {k: [] for k in (
        "applicationVisibilities", "classAccesses", "custom", "fieldPermissions", "layoutAssignments", "loginHours",
        "loginIpRanges", "objectPermissions", "pageAccesses", "recordTypeVisibilities", "tabVisibilities",
        "userLicense", "userPermissions")}
    for i in range(max(2, n_obj // 20)):
        sec["applicationVisibilities"].append(entry("applicationVisibilities", [
            ("application", f"App{i:03d}"), ("default", "true" if i == 0 else "false"), ("visible", tf())]))
    for i in range(n_obj * 2):
        sec["classAccesses"].append(entry("classAccesses", [("apexClass", f"Class{i:05d}"), ("enabled", tf(cls))]))
    sec["custom"].append("    <custom>true</custom>")
    fields = []
    for o in objs:
        for j in range(14):
            fields.append(entry("fieldPermissions", [("editable", tf(edit)), ("field", f"{o}.Field{j:02d}__c"),
                                                     ("readable", tf(read))]))
    sec["fieldPermissions"] = sorted(fields, key=lambda s: s.split("<field>")[1])
    for o in objs[: n_obj // 2]:
        sec["layoutAssignments"].append(entry("layoutAssignments", [("layout", f"{o}-{o} Layout")]))
    if with_policy:
        sec["loginHours"].append("    <loginHours>\n        <mondayEnd>1080</mondayEnd>\n        <mondayStart>480</mondayStart>"
                                 "\n    </loginHours>")
        sec["loginIpRanges"].append(entry("loginIpRanges", [("endAddress", "203.0.113.255"),
                                                            ("startAddress", "203.0.113.0")]))
    for o in objs:
        sec["objectPermissions"].append(entry("objectPermissions", [
            ("allowCreate", tf(0.3)), ("allowDelete", tf(0.2)), ("allowEdit", tf(0.4)), ("allowRead", tf(0.8)),
            ("modifyAllRecords", "false"), ("object", o), ("viewAllRecords", tf(0.1))]))
    for i in range(n_obj // 5):
        sec["pageAccesses"].append(entry("pageAccesses", [("apexPage", f"Page{i:04d}"), ("enabled", tf(cls))]))
    for o in objs[: n_obj // 6]:
        sec["recordTypeVisibilities"].append(entry("recordTypeVisibilities", [
            ("default", "true"), ("recordType", f"{o}.Main"), ("visible", "true")]))
    for o in objs[: n_obj // 2]:
        sec["tabVisibilities"].append(entry("tabVisibilities", [
            ("tab", o), ("visibility", rng.choice(["DefaultOn", "DefaultOff", "Hidden"]))]))
    sec["userLicense"].append("    <userLicense>Salesforce</userLicense>")
    for p in sorted(rng.sample(PERMS, min(len(PERMS), 200))):
        sec["userPermissions"].append(entry("userPermissions", [("enabled", tf(0.8)), ("name", p)]))
    body = "\n".join(line for k in sec for line in sec[k])
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Profile xmlns="http://soap.sforce.com/2006/04/metadata">\n'
            + body + "\n</Profile>\n").encode()


def generated_set(dest: Path) -> None:
    """24 profiles, 28.5 MB in all, the largest 4 MB (the shape of the set in issue 8), one admin-like
    profile for three restricted ones (see :func:`generated_profile`)."""
    rng = random.Random(8)
    sizes = [4_000_000, 3_000_000, 2_600_000, 2_400_000, 2_100_000, 2_000_000, 1_900_000, 1_700_000, 1_500_000,
             1_300_000, 1_100_000, 1_000_000, 800_000, 700_000, 600_000, 500_000, 400_000, 300_000, 200_000,
             150_000, 100_000, 60_000, 30_000, 1_000]
    scale = 28_500_000 / sum(sizes)
    for i, size in enumerate(sizes):
        data = generated_profile(rng, int(size * scale), with_policy=i % 3 == 0, admin=i % 4 == 1)
        (dest / f"Generated Profile {i:02d}.profile").write_bytes(data)


# --- the run ------------------------------------------------------------------------------------


def bench_set(label: str, folder: Path, repeat: int) -> dict:
    files = sorted(folder.iterdir())
    mb = sum(p.stat().st_size for p in files) / 1e6
    largest = max(files, key=lambda p: p.stat().st_size)
    single = folder.parent / f"{label}-largest"
    single.mkdir()
    shutil.copyfile(largest, single / largest.name)
    base_cpu, conv_cpu, base_peak, conv_peak, one_peak = [], [], [], [], []
    for i in range(repeat):
        out = folder.parent / f"out-{label}-{i}"
        c, _, p = measure([PY, "-c", BASELINE, str(folder), str(out / "bare")])
        base_cpu.append(c)
        base_peak.append(p)
        c, _, p = measure([PY, "-c", CONVERT, "convert", str(folder), "-d", str(out / "conv"), "--format", "mdapi",
                           "--json"])
        conv_cpu.append(c)
        conv_peak.append(p)
        _, _, p = measure([PY, "-c", CONVERT, "convert", str(single), "-d", str(out / "one"), "--format", "mdapi",
                           "--json"])
        one_peak.append(p)
        shutil.rmtree(out)
    b, c = statistics.median(base_cpu), statistics.median(conv_cpu)
    # each repeat runs both sides back to back, so the ratio is taken per pair, then its median
    ratio = statistics.median(x / y for x, y in zip(conv_cpu, base_cpu))
    return {"set": label, "files": len(files), "MB": mb, "bare_cpu": b, "convert_cpu": c, "ratio": ratio,
            "bare_peak": max(base_peak) / 1024, "convert_peak": max(conv_peak) / 1024,
            "largest_MB": largest.stat().st_size / 1e6, "largest_peak": max(one_peak) / 1024,
            "peak_ratio": max(conv_peak) / max(one_peak)}


def startup(repeat: int) -> list[tuple[str, float]]:
    exe = Path(PY).parent / "sf-intuser"
    out = []
    for argv in (["--version"], ["convert", "--help"]):
        walls = [measure([str(exe), *argv])[1] for _ in range(repeat)]
        out.append((f"sf-intuser {' '.join(argv)}", statistics.median(walls)))
    return out


def main() -> None:
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 5
    # an installed package carries its bytecode; a checkout under PYTHONDONTWRITEBYTECODE would
    # otherwise recompile sf-intuser on every run and measure the compiler
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "sf_intuser")], check=True, stdout=subprocess.DEVNULL)
    which = sys.argv[sys.argv.index("--set") + 1] if "--set" in sys.argv else "all"
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp:
        base = Path(tmp)
        if which in ("corpus", "all"):
            (base / "corpus").mkdir()
            if corpus_set(base / "corpus"):
                rows.append(bench_set("corpus", base / "corpus", repeat))
            else:
                print("../shared/corpus is absent: the corpus set is skipped")
        if which in ("generated", "all"):
            (base / "generated").mkdir()
            generated_set(base / "generated")
            rows.append(bench_set("generated", base / "generated", repeat))
    print(f"convert vs bare lxml parse+serialize, CPU seconds, median of {repeat} paired runs (goal: ratio <= 2.0; "
          "peak of the many-file call <= 1.5x that of the largest file alone)")
    print(f"{'set':<10} {'files':>5} {'MB':>6} {'bare s':>7} {'convert s':>9} {'ratio':>6} {'bare MB':>8} "
          f"{'conv MB':>8} {'largest':>8} {'alone MB':>9} {'peak x':>7}")
    for r in rows:
        print(f"{r['set']:<10} {r['files']:>5} {r['MB']:>6.1f} {r['bare_cpu']:>7.2f} {r['convert_cpu']:>9.2f} "
              f"{r['ratio']:>5.2f}x {r['bare_peak']:>8.0f} {r['convert_peak']:>8.0f} {r['largest_MB']:>7.1f}M "
              f"{r['largest_peak']:>9.0f} {r['peak_ratio']:>6.2f}x")
    print()
    for label, wall in startup(max(repeat, 5)):
        print(f"{label:<28} {wall:.3f} s wall, median (goal < 0.15 s)")


if __name__ == "__main__":
    main()
