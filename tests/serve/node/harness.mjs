// Starts a real `flas serve` on a free port of 127.0.0.1 with the bundled chat model and flow, and
// stops it afterwards. FLAS_BIN: the flas program; FLAS_MODELS: the models folder.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';

export const models = process.env.FLAS_MODELS;
export const bin = process.env.FLAS_BIN;
assert.ok(bin && models, 'FLAS_BIN and FLAS_MODELS must be set (ctest sets them)');

export async function startServer(extraArgs = [], env = {}) {
  const args = ['serve', '--model', `${models}/tiny-gemma2-chat`, '--flow', `${models}/tiny-gemma2-chat-flow`,
                ...(extraArgs.includes('--host') ? [] : ['--host', '127.0.0.1']), '--port', '0', ...extraArgs];
  // One OpenMP thread unless told otherwise: ctest runs tests side by side, and a thread team spinning
  // at its barriers on an oversubscribed machine slows the bundled (tiny) model by orders of magnitude.
  const threads = { OMP_NUM_THREADS: process.env.FLAS_SERVE_THREADS || '1', OMP_WAIT_POLICY: 'passive' };
  const proc = spawn(bin, args, { stdio: ['ignore', 'inherit', 'pipe'], env: { ...process.env, ...threads, ...env } });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('flas serve did not start in 60 s:\n' + log)), 60000);
    proc.stderr.on('data', (d) => {
      log += d.toString();
      process.stderr.write(d);
      const m = log.match(/listening on (http:\/\/[^\s]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`flas serve exited with ${code}:\n${log}`)); });
  });
  const server = {
    url, proc,
    get log() { return log; },
    alive() { return proc.exitCode === null && proc.signalCode === null; },
    // Resident memory of the server process, in MiB.
    rssMiB() { return Number(readFileSync(`/proc/${proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024; },
    async stop() {
      if (!server.alive()) return;
      const exited = new Promise((r) => proc.on('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
      if (server.alive()) proc.kill('SIGKILL');
    },
  };
  const health = await fetch(`${url}/health`);
  assert.equal(health.status, 200);
  return server;
}

// Runs `body(server)` against a fresh server, always stopping it; exits non-zero on failure.
export async function withServer(extraArgs, body, env = {}) {
  let server;
  try {
    server = await startServer(extraArgs, env);
    await body(server);
    assert.ok(server.alive(), 'the server must still be running after the test');
    console.log('PASS');
  } catch (e) {
    console.error('FAIL:', e);
    process.exitCode = 1;
  } finally {
    if (server) await server.stop();
  }
}

export async function postJson(url, body, headers = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers },
                                 body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}
