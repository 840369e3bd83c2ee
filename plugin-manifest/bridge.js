// `sf intuser <command>`: every sf-intuser command as an oclif command, through the explicit strategy.
// Each class is plain (not oclif's Command): oclif calls `static run(argv, config)` with the raw tokens
// after the command id, and Python owns flag parsing, --json and the exit code. The statics (summary,
// flags, examples) come from oclif.manifest.json, which scripts/gen_manifest.py makes from the click
// tree; oclif renders --help from that file without loading this one.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MISSING_HELP, PLUGIN_ROOT, runPython } from './lib/python.js';

const manifest = JSON.parse(readFileSync(join(PLUGIN_ROOT, 'oclif.manifest.json'), 'utf8'));

function wantsJson(argv) {
  return argv.includes('--json') || (process.env.SF_CONTENT_TYPE ?? '').toUpperCase() === 'JSON';
}

function commandClass(id, spec) {
  const words = id.split(':').slice(1); // intuser:emulator:serve -> emulator serve
  const cls = class {
    static async run(argv) {
      const r = await runPython([...words, ...argv]);
      if (r.error && r.code === 127) {
        const message = `sf-intuser: cannot start ${r.python.file} (from ${r.python.from}): ${r.error.code ?? r.error.message}. ${MISSING_HELP}`;
        if (wantsJson(argv)) {
          process.stdout.write(JSON.stringify({ name: 'PythonNotFound', message, exitCode: 127, status: 127,
            code: 'PythonNotFound', commandName: id, warnings: [] }, null, 2) + '\n');
        } else {
          process.stderr.write(message + '\n');
        }
      }
      process.exitCode = r.code;
    }
  };
  const { summary, description, examples, flags, args, hidden } = spec;
  Object.assign(cls, { id, summary, description, examples, flags, args, hidden, strict: false, enableJsonFlag: true });
  return cls;
}

export const COMMANDS = Object.fromEntries(
  Object.entries(manifest.commands).map(([id, spec]) => [id, commandClass(id, spec)]),
);
