#!/usr/bin/env node
// Training speed of both models in a headless browser, through www/bench.html.
//
//   node tests/bench/bench.mjs [--engine chromium|firefox|webkit] [--backends webgpu,cpu]
//                            [--models dense,conv] [--warmup N] [--steps N] [--batch 32]
//                            [--per-call N|page] [--timeout 600] [--workers N] [--native FILE]
//
// --engine picks the browser (tests/support/engines.mjs): Chromium (the default; WebGPU on
// SwiftShader) or Firefox ESR (WebGPU on Mesa's lavapipe, with the prefs a person would set) or
// WebKitGTK (Safari's engine; no WebGPU in Debian's build, and it needs a display: build.sh runs
// it under xvfb-run).
// By default each backend runs as the page trains on it, for as long as a figure takes to settle:
// WebGPU 30 warm-up + 40 timed steps, as many a call as the page's training loop asks (calls of
// about 200 ms, up to 64 steps and at least 6 while they take 500 ms at most: --per-call page,
// www/js/lab/callsize.js; the warm-up goes on a
// call or two until the page asks a number of steps a call it has run, and no call is cut short,
// since the WebGPU step records each new number once: www/js/bench/bench.js); the CPU 50 warm-up +
// 200 timed steps, 16 a call (its workers' wasm is still being optimised by the browser during
// the first few dozen steps). --warmup, --steps and --per-call set both; --per-call 1 gives
// WebGPU's cost of a call at its worst, one step each. Run as the page asks, WebGPU also runs
// each model at the most steps a call the page asks of any GPU (64, callsize.js; 64 warm-up +
// 128 timed steps), for the host's time a step on a GPU fast enough to reach that cap: what
// bounds the speed on any GPU, where this machine's software adapter asks few steps a call.
// Needs a server for www/ (./build.sh serve; LAB_URL, default http://127.0.0.1:8000/).
// Each backend and model gets a fresh browser, so ready_ms and first_step_ms are cold numbers
// (wasm compile, data fetch, kernel compilation). The CPU backend trains on a pool of workers as
// the page does, one per core the browser reports unless --workers says how many. --native names
// a file of `bench --json` lines from the command line, measured in the same run (./build.sh
// bench-web makes it), for the browser/native ratio. Prints a table per backend, then exactly
// one JSON line last: {"engine":..,"adapter":..,"backends":{"webgpu":{"dense":{images_per_sec,
// timed_steps,first_step_ms,ready_ms,steps_per_call,dispatches_per_step,submits_per_step,readbacks_per_call,
// host_ms_per_step,host_ms_per_step_at_cap,host_ms_per_call,wait_ms_per_call,workers,native_images_per_sec,
// ratio_to_native},..},"cpu":{..}},
// "native":{"dense":..},"wasm_gzip_bytes":{"webgpu":..,"cpu":..}}, each backend's wasm module as
// served, gzipped at level 9 (the CPU trains in the CPU-only module, www/pkg-cpu).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { LAB_URL, assertServerUp } from '../support/browser.mjs';
import { ENGINES, openEngine } from '../support/engines.mjs';
import { MAX_STEPS_PER_CALL } from '../../www/js/lab/callsize.js';

// The most steps a call the page asks of WebGPU: the bench's second run of each model.
const CAP = MAX_STEPS_PER_CALL.webgpu;

// Each backend's wasm module, as the page's worker loads it (www/js/worker/worker.js).
const MODULES = { webgpu: 'pkg/autoencoder_lab_bg.wasm', cpu: 'pkg-cpu/autoencoder_lab_bg.wasm' };

const { values: opts } = parseArgs({
  options: {
    backends: { type: 'string', default: 'webgpu,cpu' },
    backend: { type: 'string' }, // one backend: the same as --backends with one name
    engine: { type: 'string', default: 'chromium' },
    models: { type: 'string', default: 'dense,conv' },
    warmup: { type: 'string' },
    steps: { type: 'string' },
    batch: { type: 'string', default: '32' },
    'per-call': { type: 'string' },
    timeout: { type: 'string', default: '600' },
    native: { type: 'string' },
    workers: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (opts.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 34).join('\n'));
  process.exit(0);
}

function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(2);
}

const backends = (opts.backend ?? opts.backends).split(',').map((b) => b.trim()).filter(Boolean);
for (const b of backends) if (!['webgpu', 'cpu'].includes(b)) fail(`backends are webgpu and cpu, not "${b}"`);
if (!ENGINES.includes(opts.engine)) fail(`engines are ${ENGINES.join(', ')}, not "${opts.engine}"`);
const models = opts.models.split(',').map((m) => m.trim()).filter(Boolean);
for (const m of models) if (!['dense', 'conv'].includes(m)) fail(`unknown model "${m}" in --models`);
const numbers = {};
if (opts['per-call'] === 'page') numbers['per-call'] = 'page';
for (const [name, min] of [['warmup', 0], ['steps', 1], ['batch', 1], ['per-call', 1], ['timeout', 1], ['workers', 1]]) {
  if (opts[name] === undefined || numbers[name] !== undefined) continue;
  const v = Number(opts[name]);
  if (!Number.isInteger(v) || v < min) fail(`--${name} must be a whole number >= ${min}`);
  numbers[name] = v;
}

// Each backend's run when the command line does not say (see the top of this file).
const DEFAULT_RUN = { webgpu: { warmup: 30, steps: 40, 'per-call': 'page' }, cpu: { warmup: 50, steps: 200, 'per-call': 16 } };

/** warm-up, timed steps and steps per call for `backend`: the command line's, else its defaults. */
const runOf = (backend) => ({ ...DEFAULT_RUN[backend], ...numbers });

/** Opens bench.html for one model in a fresh browser and returns window.benchResult. */
async function measure(backend, model, run = runOf(backend)) {
  const url = new URL('bench.html', LAB_URL);
  url.search = new URLSearchParams({
    backend,
    model,
    warmup: run.warmup,
    steps: run.steps,
    batch: numbers.batch,
    per_call: run['per-call'],
    ...(opts.workers ? { workers: numbers.workers } : {}),
  }).toString();
  const browser = await openEngine(opts.engine, { webgpu: true });
  try {
    await browser.goto(url.href);
    const result = await browser.waitFor(() => window.benchResult, undefined, {
      timeout: numbers.timeout * 1000,
      polling: 500,
      what: `${model} on ${backend}: window.benchResult`,
    });
    if (result.error) throw new Error(`${model}: ${result.error}`);
    const problems = await browser.problems();
    if (problems.length) console.error(`  problems in the page (${model}):\n    ${problems.join('\n    ')}`);
    return result;
  } finally {
    await browser.close();
  }
}

/** { webgpu, cpu }: each module's bytes gzipped at level 9, as the server sends it; null if missing. */
async function wasmGzipBytes() {
  const sizes = {};
  for (const [backend, path] of Object.entries(MODULES)) {
    const response = await fetch(new URL(path, LAB_URL));
    if (!response.ok) console.error(`bench: ${path} is missing (build it with ./build.sh build)`);
    sizes[backend] = response.ok ? gzipSync(Buffer.from(await response.arrayBuffer()), { level: 9 }).length : null;
  }
  return sizes;
}

const round = (v, digits) => (v === null || v === undefined ? null : Number(v.toFixed(digits)));

/** The command line's images/s per model, from `bench --json` lines. */
function nativeSpeeds(file) {
  if (!file) return {};
  const speeds = {};
  for (const line of readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith('{'))) {
    const r = JSON.parse(line);
    speeds[r.model] = r.images_per_sec;
  }
  return speeds;
}
const native = nativeSpeeds(opts.native);
const ratio = (r, model) => (native[model] ? r.images_per_sec / native[model] : null);

await assertServerUp(LAB_URL).catch((err) => fail(err.message));

const results = {}; // backend -> model -> result
for (const backend of backends) {
  results[backend] = {};
  for (const model of models) {
    const run = runOf(backend);
    console.error(`bench: ${model} on ${backend} (${run.warmup} warm-up + ${run.steps} timed steps of ${numbers.batch})…`);
    results[backend][model] = await measure(backend, model).catch((err) => fail(err.message));
    if (backend === 'webgpu' && run['per-call'] === 'page') {
      console.error(`bench: ${model} on ${backend}, ${CAP} steps a call (${CAP} warm-up + ${2 * CAP} timed)…`);
      const capped = await measure(backend, model, { warmup: CAP, steps: 2 * CAP, 'per-call': CAP }).catch((err) => fail(err.message));
      results[backend][model].host_ms_per_step_at_cap = capped.host_ms_per_step;
    }
  }
}
const wasmGzip = await wasmGzipBytes();

// The human tables, one per backend.
let adapter = null;
for (const [backend, byModel] of Object.entries(results)) {
  const rows = [['model', 'params', 'ready ms', 'first step ms', 'ms/step', 'images/s', 'steps/call', 'dispatches/step', 'submits/step', 'read-backs/call', 'host ms/step', 'wait ms/call', 'workers', 'native images/s', 'browser/native', 'loss first -> last']];
  for (const [model, r] of Object.entries(byModel)) {
    rows.push([
      model,
      r.parameters.toLocaleString('en-US'),
      r.ready_ms.toFixed(0),
      r.first_step_ms.toFixed(0),
      r.ms_per_step.toFixed(1),
      r.images_per_sec.toFixed(1),
      r.steps_per_call.toFixed(1),
      r.dispatches_per_step === null ? '-' : r.dispatches_per_step.toFixed(1),
      r.submits_per_step == null ? '-' : r.submits_per_step.toFixed(1),
      r.readbacks_per_call == null ? '-' : r.readbacks_per_call.toFixed(1),
      r.host_ms_per_step == null ? '-' : r.host_ms_per_step.toFixed(2),
      r.wait_ms_per_call == null ? '-' : r.wait_ms_per_call.toFixed(1),
      r.workers === null ? '-' : String(r.workers),
      native[model] ? native[model].toFixed(0) : '-',
      native[model] ? `${ratio(r, model).toFixed(3)}x` : '-',
      `${r.first_loss.toFixed(4)} -> ${r.last_loss.toFixed(4)}`,
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const first = Object.values(byModel)[0];
  if (backend === 'webgpu') adapter = first?.adapter ?? null;
  const run = runOf(backend);
  console.log(`\n${opts.engine}, backend ${backend} (${first?.adapter ?? '?'}), batch ${numbers.batch}, ` +
    `${run.warmup} warm-up + ${run.steps} timed steps or more (whole calls), ` +
    (run['per-call'] === 'page' ? 'as many a call as the page asks' : `${run['per-call']} step(s) per call`));
  for (const [i, row] of rows.entries()) {
    console.log(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  const onGpu = Object.entries(byModel).filter(([, r]) => r.host_ms_per_call != null);
  if (onGpu.length) {
    // A call costs the host about the same whatever it holds, so few steps a call (a slow GPU's)
    // make a high figure a step; this says which.
    console.log('host ms a call: ' + onGpu.map(([model, r]) => `${model} ${r.host_ms_per_call.toFixed(2)} (${r.steps_per_call.toFixed(1)} steps)`).join(', '));
  }
  const capped = Object.entries(byModel).filter(([, r]) => r.host_ms_per_step_at_cap != null);
  if (capped.length) {
    const bound = (ms) => Number(((1000 / ms) * numbers.batch).toPrecision(2)).toLocaleString('en-US');
    console.log(`host ms/step at ${CAP} steps a call (what the page asks of a GPU fast enough): ` +
      capped.map(([model, r]) => `${model} ${r.host_ms_per_step_at_cap.toFixed(2)} (the host's bound: about ${bound(r.host_ms_per_step_at_cap)} images/s)`).join(', '));
  }
}
const mb = (n) => (n === null ? 'missing' : `${(n / 1e6).toFixed(2)} MB (${n} bytes)`);
console.log(`wasm gzip -9: WebGPU module ${mb(wasmGzip.webgpu)}, CPU module ${mb(wasmGzip.cpu)}`);

// The machine-readable line, last.
const summary = (r, model) => ({
  images_per_sec: round(r.images_per_sec, 1),
  timed_steps: r.timed_steps,
  first_step_ms: round(r.first_step_ms, 1),
  ready_ms: round(r.ready_ms, 1),
  steps_per_call: round(r.steps_per_call, 1),
  dispatches_per_step: round(r.dispatches_per_step, 1),
  submits_per_step: round(r.submits_per_step, 1),
  readbacks_per_call: round(r.readbacks_per_call, 1),
  host_ms_per_step: round(r.host_ms_per_step, 2),
  host_ms_per_step_at_cap: round(r.host_ms_per_step_at_cap, 2),
  host_ms_per_call: round(r.host_ms_per_call, 2),
  wait_ms_per_call: round(r.wait_ms_per_call, 1),
  workers: r.workers,
  native_images_per_sec: round(native[model], 1),
  ratio_to_native: round(ratio(r, model), 3),
});
console.log(
  JSON.stringify({
    engine: opts.engine,
    adapter,
    backends: Object.fromEntries(
      Object.entries(results).map(([backend, byModel]) => [
        backend,
        Object.fromEntries(Object.entries(byModel).map(([model, r]) => [model, summary(r, model)])),
      ]),
    ),
    native: Object.fromEntries(Object.entries(native).map(([m, v]) => [m, { images_per_sec: round(v, 1) }])),
    wasm_gzip_bytes: wasmGzip,
  }),
);
