#!/usr/bin/env node
// How long the page takes to be ready to train, and which wasm modules it fetched by then.
//
//   node tests/bench/startup.mjs [--runs 3] [--second-visit]
//
// Needs a server for www/ (./build.sh serve; LAB_URL, default http://127.0.0.1:8000/). Each run
// is a fresh browser (an empty cache), timed from navigation until body[data-state] first says
// ready. Prints one JSON line per run, then a summary line:
// {"runs":[ms,..],"median_ready_ms":..,"wasm_before_ready":[{"path","gzip_bytes"},..]}
// --second-visit times, in each fresh browser, the visit after the first instead: once the first
// has kept the page (app/offline.js says "Saved"), a reload, served from the kept copy.
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { LAB_URL, assertServerUp, launchBrowser } from '../support/browser.mjs';
import { watchStart } from '../support/pagekit.mjs';

const { values: opts } = parseArgs({ options: { runs: { type: 'string', default: '3' }, 'second-visit': { type: 'boolean', default: false } } });
const runs = Number(opts.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a whole number of at least 1, not ${opts.runs}`);

/** One page load, cold (or the second, from the kept copy): { readyMs, wasm: the .wasm paths asked for before ready }. */
async function loadOnce() {
  const browser = await launchBrowser();
  try {
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    if (opts['second-visit']) {
      await page.goto(LAB_URL);
      await page.waitForFunction(() => document.getElementById('offline-info').dataset.state === 'saved', null, { timeout: 300_000, polling: 100 });
    }
    const start = await watchStart(page);
    const t0 = Date.now();
    await page.goto(LAB_URL);
    await page.waitForFunction(() => window.readyAt, null, { timeout: 180_000, polling: 50 });
    return { readyMs: (await start.readyAt()) - t0, wasm: await start.wasmBeforeReady() };
  } finally {
    await browser.close();
  }
}

await assertServerUp(LAB_URL);
const times = [];
let wasm = [];
for (let i = 0; i < runs; i++) {
  const r = await loadOnce();
  times.push(r.readyMs);
  wasm = r.wasm;
  console.log(JSON.stringify({ run: i + 1, ready_ms: r.readyMs, wasm_before_ready: r.wasm }));
}
const sorted = [...times].sort((a, b) => a - b);
const sizes = [];
for (const path of wasm) {
  const body = Buffer.from(await (await fetch(new URL(path.slice(1), LAB_URL))).arrayBuffer());
  sizes.push({ path, gzip_bytes: gzipSync(body, { level: 9 }).length });
}
console.log(JSON.stringify({ visit: opts['second-visit'] ? 'second' : 'first', runs: times, median_ready_ms: sorted[Math.floor(sorted.length / 2)], wasm_before_ready: sizes }));
