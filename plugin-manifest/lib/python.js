// How the sf plugin reaches the sf-intuser Python tool: which interpreter, and running it.
// Plain Node (no dependencies): the plugin must load in any sf >= 2 without an npm install.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PLUGIN_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export const MISSING_HELP =
  'Set SF_INTUSER_PYTHON to a Python that has sf-intuser installed, run `make setup` in the sf-intuser ' +
  'checkout next to this plugin, or put sf-intuser on PATH (pipx install sf-intuser).';

// The order: SF_INTUSER_PYTHON, the project's .venv next to the plugin, sf-intuser on PATH.
// Python starts isolated (-I: neither the current folder nor PYTHONPATH on sys.path, no user site):
// sf runs in the user's project, and a folder sf_intuser/ there (one file in a pull request) must
// never be imported in place of the installed tool, least of all by the pre-deploy gate.
export function findPython(env = process.env) {
  if (env.SF_INTUSER_PYTHON) {
    return { file: env.SF_INTUSER_PYTHON, pre: ['-I', '-m', 'sf_intuser'], from: 'SF_INTUSER_PYTHON' };
  }
  const venv = process.platform === 'win32'
    ? join(PLUGIN_ROOT, '..', '.venv', 'Scripts', 'python.exe')
    : join(PLUGIN_ROOT, '..', '.venv', 'bin', 'python');
  if (existsSync(venv)) return { file: venv, pre: ['-I', '-m', 'sf_intuser'], from: 'the .venv next to the plugin' };
  // a console script puts its own folder first on sys.path, not the current one; PYTHONSAFEPATH and no
  // PYTHONPATH keep it that way (isolatedEnv)
  return { file: 'sf-intuser', pre: [], from: 'PATH' };
}

// The child's environment: PYTHONPATH and PYTHONHOME dropped, PYTHONSAFEPATH set (Python 3.11+: the
// current folder is never put on sys.path), whatever the shell had.
export function isolatedEnv(base, extra = {}) {
  const env = { ...base, SF_INTUSER_VIA_SF: '1', PYTHONSAFEPATH: '1', ...extra };
  delete env.PYTHONPATH;
  delete env.PYTHONHOME;
  delete env.PYTHONSTARTUP;
  return env;
}

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'];

// Runs sf-intuser with args. stdio 'inherit' (commands) or piped with `input` written to stdin and
// stdout/stderr collected (the hook). Signals sent to sf are passed to the child, so a CI runner or
// `timeout` that signals only sf's pid leaves no orphan. Resolves {code, stdout, stderr, error}:
// the child's exit code, 128+n when a signal ended it, 127 when it could not start.
export function runPython(args, { input, capture = false, timeoutMs = 0, env = {} } = {}) {
  const py = findPython();
  return new Promise((resolve) => {
    let child;
    const out = [];
    const err = [];
    let timer;
    const forward = (sig) => { try { child.kill(sig); } catch { /* already gone */ } };
    const done = (result) => {
      for (const sig of FORWARDED) process.removeListener(sig, forward);
      if (timer) clearTimeout(timer);
      resolve({ python: py, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ...result });
    };
    try {
      child = spawn(py.file, [...py.pre, ...args], {
        stdio: capture ? ['pipe', 'pipe', 'pipe'] : 'inherit',
        env: isolatedEnv(process.env, env),
      });
    } catch (e) {
      done({ code: 127, error: e });
      return;
    }
    for (const sig of FORWARDED) process.on(sig, forward);
    child.on('error', (e) => done({ code: 127, error: e }));
    if (capture) {
      child.stdout.on('data', (b) => out.push(b));
      child.stderr.on('data', (b) => err.push(b));
      child.stdin.on('error', () => { /* a child that exits early closes its stdin */ });
      child.stdin.end(input ?? '');
    }
    if (timeoutMs > 0) {
      timer = setTimeout(() => { forward('SIGTERM'); done({ code: 124, error: new Error(`timed out after ${timeoutMs / 1000} s`) }); }, timeoutMs);
    }
    child.on('close', (code, signal) => {
      done({ code: code ?? 128 + (constants.signals[signal] ?? 0) });
    });
  });
}
