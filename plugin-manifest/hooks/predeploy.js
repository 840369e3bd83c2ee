// The pre-deploy gate: sf's `scopedPreDeploy` event (source-deploy-retrieve MetadataApiDeploy.pre(),
// emitted before the deploy request is built, for `project deploy start`, `--dry-run` and
// `project deploy validate` of source-format components) reaches this oclif hook through
// sf-plugins-core's SfCommand. It hands the profiles and permission sets of the deploy to
// `sf-intuser gate` and blocks the deploy on an error finding.
//
// Fails closed: oclif swallows a hook error that has no non-zero `oclif.exit` and lets the deploy go
// on, so every failure here (a bug, no Python, a timeout, unreadable output) blocks with an exit code,
// and says how to skip the gate on purpose. Runs once per deploy even when several plugins declare
// the same hook (each declaration subscribes a runHook that runs every plugin's hook): a WeakSet of
// the component sets already checked, kept on globalThis, so every copy of this module shares it.
import { runPython } from '../lib/python.js';

const CHECKED = new Set(['Profile', 'PermissionSet']);
const BYPASS = 'To deploy without the sf-intuser check on purpose, set SF_INTUSER_SKIP_PREDEPLOY=1.';
const SEEN = (globalThis.__sfIntuserPreDeploySeen ??= new WeakSet());
const TRUE = new Set(['1', 'true', 'yes']);

function emitWarning(message) {
  const lifecycle = globalThis.salesforceCoreLifecycle;
  if (lifecycle?.emitWarning) return lifecycle.emitWarning(message);
  process.emitWarning(message);
}

function componentsOf(componentSet) {
  const out = [];
  for (const c of componentSet.getSourceComponents()) {
    const type = c?.type?.name;
    if (!CHECKED.has(type)) continue;
    out.push({ type, fullName: c.fullName, xmlPath: c.xml ?? null,
      destructive: c.getDestructiveChangesType?.() ?? null });
  }
  return out;
}

function shortFinding(f) {
  return `  ${f.severity}: ${f.file}: ${f.element}: ${f.message}. Fix: ${f.fix}`;
}

// SF_INTUSER_PREDEPLOY_TIMEOUT: seconds, a positive number (default 120). Anything else would turn the
// timeout off or make it meaningless, so it blocks the deploy (fail closed) naming the variable.
export function timeoutSeconds(raw) {
  if (raw === undefined || raw === '') return 120;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    throw new Error(`SF_INTUSER_PREDEPLOY_TIMEOUT is ${JSON.stringify(raw)}, not a number of seconds above 0; ` +
      'set it to one (for example 300) or unset it for the default of 120');
  }
  return n;
}

async function check(options) {
  if (TRUE.has(String(process.env.SF_INTUSER_SKIP_PREDEPLOY ?? '').toLowerCase())) {
    await emitWarning('sf-intuser pre-deploy check skipped: SF_INTUSER_SKIP_PREDEPLOY is set.');
    return;
  }
  const componentSet = options?.result?.componentSet;
  if (!componentSet || typeof componentSet.getSourceComponents !== 'function') {
    throw new Error('the scopedPreDeploy event carried no component set');
  }
  if (SEEN.has(componentSet)) return;
  SEEN.add(componentSet);
  const components = componentsOf(componentSet);
  if (components.length === 0) return; // nothing the gate checks: no Python start
  const payload = JSON.stringify({ commandId: options.commandId, orgId: options.result.orgId,
    argv: options.argv, components });
  const seconds = timeoutSeconds(process.env.SF_INTUSER_PREDEPLOY_TIMEOUT);
  const r = await runPython(['gate', '--json'], { input: payload, capture: true, timeoutMs: seconds * 1000 });
  let envelope;
  try { envelope = JSON.parse(r.stdout); } catch { envelope = undefined; }
  const result = envelope?.result;
  if (r.code === 0 && result) {
    for (const f of result.findings ?? []) {
      if (f.severity === 'warning') await emitWarning(`sf-intuser: ${f.file}: ${f.element}: ${f.message}. Fix: ${f.fix}`);
    }
    return;
  }
  if (r.code === 1 && result && result.errors > 0) {
    const errors = result.findings.filter((f) => f.severity === 'error');
    block(`sf-intuser pre-deploy check blocked the deploy: ${errors.length} error(s) in the profiles and ` +
      `permission sets of this deploy.\n${errors.map(shortFinding).join('\n')}\n` +
      'Fix them (sf-intuser convert writes compliant copies), or run `sf-intuser lint` on the folder to see all. ' + BYPASS,
      'IntuserPreDeployBlocked');
  }
  const why = r.code === 127 ? `cannot start ${r.python.file} (from ${r.python.from})`
    : r.code === 124 ? `no answer in ${seconds} s (SF_INTUSER_PREDEPLOY_TIMEOUT)`
      : `sf-intuser gate exited ${r.code}: ${(envelope?.message ?? r.stderr ?? '').trim().split('\n').slice(-3).join(' ')}`;
  throw new Error(why);
}

// Stops the deploy with an error sf reports under our code: sf's --json envelope takes `name` from the
// error's name (SfCommandError.from), and oclif lets a hook error through only with a non-zero
// `oclif.exit` (docs/plugin-bridge.md section 3.5).
function block(message, code) {
  const err = new Error(message);
  err.name = code;
  err.code = code;
  err.exitCode = 1;
  err.oclif = { exit: 1 };
  throw err;
}

export default async function scopedPreDeploy(options) {
  try {
    return await check.call(this, options);
  } catch (e) {
    if (e?.oclif?.exit) throw e;
    block(`sf-intuser pre-deploy hook failed, so the deploy is blocked: ${e?.message ?? e}. ${BYPASS}`,
      'IntuserPreDeployFailed');
  }
}
