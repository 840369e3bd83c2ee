#!/usr/bin/env python3
"""Generate ``plugin-manifest/oclif.manifest.json`` from the click command tree.

oclif renders ``sf intuser <cmd> --help`` from this file without loading the plugin or starting
Python, and ignores it (warning on every sf run) when its ``version`` differs from package.json's.
One entry per click command, id ``intuser:<group>:<command>``; flags in oclif's manifest shape
(``{name, type, char?, summary, required?, default?, multiple?, options?, helpGroup?}``); ``--json``
and ``--flags-dir`` go in the GLOBAL help group as sf shows them. Examples are taken from the
"Examples:" block of each docstring, with ``sf-intuser`` written as ``<%= config.bin %> intuser``.

Usage: python scripts/gen_manifest.py          write the manifest
       python scripts/gen_manifest.py --check  exit 1 when the manifest on disk is stale
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import click

HERE = Path(__file__).resolve().parent
PLUGIN = HERE.parent / "plugin-manifest"
TOPIC = "intuser"
GLOBAL = {"json", "flags-dir"}


def _split_help(text: str) -> tuple[str, str, list[str]]:
    """(summary, description, examples) from a click docstring."""
    lines = [ln.rstrip() for ln in inspect.cleandoc(text or "").splitlines()]
    first = 0
    while first < len(lines) and lines[first].strip():
        first += 1
    summary = " ".join(ln.strip() for ln in lines[:first])
    body: list[str] = []
    examples: list[str] = []
    in_examples = False
    for ln in lines[first:]:
        s = ln.strip()
        if s == "\b":
            continue
        if s.lower().rstrip(":") in ("example", "examples"):
            in_examples = True
            continue
        if in_examples:
            if s.startswith("sf-intuser "):
                examples.append("<%= config.bin %> " + TOPIC + " " + s[len("sf-intuser "):])
            elif s:
                in_examples = False
                body.append(ln)
            continue
        body.append(ln)
    description = "\n".join(body).strip()
    return summary, description, examples


def _flag(p: click.Option) -> tuple[str, dict]:
    longs = [o for o in p.opts if o.startswith("--")]
    shorts = [o for o in p.opts if len(o) == 2 and o.startswith("-") and o[1] != "-"]
    name = max(longs, key=len)[2:] if longs else p.name.replace("_", "-")
    flag: dict = {"name": name, "type": "boolean" if p.is_flag else "option",
                  "summary": " ".join((p.help or "").split())}
    if shorts:
        flag["char"] = shorts[-1][1]
    if len(longs) > 1:   # sf's own spellings beside ours (-p/--no-prompt and -y/--yes): oclif flag aliases
        flag["aliases"] = [o[2:] for o in longs if o[2:] != name]
    if len(shorts) > 1:
        flag["charAliases"] = [o[1] for o in shorts[:-1]]
    if p.required:
        flag["required"] = True
    if p.multiple:
        flag["multiple"] = True
    if isinstance(p.type, click.Choice):
        flag["options"] = list(p.type.choices)
    default = p.default
    if not p.is_flag and not p.multiple and isinstance(default, (str, int, float, Path)) and default != "":
        flag["default"] = default if isinstance(default, (int, float)) else str(default)
    if p.is_flag and p.secondary_opts:
        flag["allowNo"] = True
    if name in GLOBAL:
        flag["helpGroup"] = "GLOBAL"
    return name, flag


def _commands(group: click.Group, prefix: list[str]):
    for name in sorted(group.commands):
        cmd = group.commands[name]
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, [*prefix, name])
        else:
            yield [*prefix, name], cmd


def build(version: str) -> dict:
    from sf_intuser.cli import main

    commands: dict[str, dict] = {}
    ARG_HELP = {
        "run_dir": "The run folder `sf intuser plan` wrote (intuser-runs/<org>-<time>).",
        "paths": "Files, folders or SFDX project roots holding profiles and permission sets (one or more).",
    }
    for path, cmd in _commands(main, []):
        cid = ":".join([TOPIC, *path])
        summary, description, examples = _split_help(cmd.help or "")
        flags = {}
        args = {}
        for p in cmd.params:
            if isinstance(p, click.Option):
                if p.name == "help":
                    continue
                n, f = _flag(p)
                flags[n] = f
            elif isinstance(p, click.Argument):
                # shown by `sf intuser CMD --help` as ARGUMENTS: NAME  description (one, described)
                name = "run" if p.name == "run_dir" else (p.metavar or p.name).lower()
                args[name] = {"name": name, "required": bool(p.required),
                              "description": ARG_HELP.get(p.name, (p.metavar or p.name).upper())}
        commands[cid] = {
            "id": cid, "summary": summary, "description": description, "examples": examples,
            "flags": flags, "args": args, "strict": False, "hidden": bool(cmd.hidden), "aliases": [],
            "hiddenAliases": [], "hasDynamicHelp": False, "enableJsonFlag": "json" in flags,
            "pluginName": "sf-intuser", "pluginAlias": "sf-intuser", "pluginType": "core",
        }
    return {"commands": commands, "version": version}


def rendered() -> str:
    version = json.loads((PLUGIN / "package.json").read_text(encoding="utf-8"))["version"]
    return json.dumps(build(version), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    out = PLUGIN / "oclif.manifest.json"
    text = rendered()
    if "--check" in argv:
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            print(f"{out.relative_to(HERE.parent)} is stale: run python scripts/gen_manifest.py", file=sys.stderr)
            return 1
        return 0
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out.relative_to(HERE.parent)} ({len(json.loads(text)['commands'])} commands)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
