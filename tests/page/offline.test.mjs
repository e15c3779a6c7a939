// The page kept in the browser by its service worker (www/sw.js), in headless Chromium, each test
// on a server of its own (tools/serve.py, the page's policy included) over a copy of www/ that
// the test may stop or rebuild, on a port of its own (so a registration from one test cannot
// serve another's):
// - after one visit and a training run, with the server stopped, a reload opens the page from
//   the copy, says so, and trains again with the same losses; images never loaded are refused
//   with a message that says why, and the model stays;
// - a rebuild with a changed module (the CPU module's JS and wasm, and the list of files with its
//   version regenerated, as ./build.sh build does): a page from the copy keeps running the old
//   build whole while the new one installs, says a new build waits, and its button moves the page
//   to the new build whole (one cache, every byte the new list's); a server caught between two
//   builds (a file that is not the one its list names) is refused, and the old build stays.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../support/engines.mjs';
import { openPage, testNoProblems, waitForState } from '../support/pagekit.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const READY_MS = 120_000;
const RUN_MS = 300_000;
// Small runs: the dense model on the CPU, 1,000 images, one epoch (32 steps).
const RUN = '?backend=cpu&model=dense&images=1000&epochs=1&lr=0.003&seed=3';

const problems = [];
const cleanup = [];
after(async () => {
  for (const undo of cleanup.reverse()) await undo();
});

/** A copy of the built www/ and a server for it; stop() ends the server, as a network gone would. */
async function serveCopy() {
  const dir = await mkdtemp(join(tmpdir(), 'autoencoder-lab-offline-'));
  await cp(join(ROOT, 'www'), dir, { recursive: true });
  const port = await freePort();
  const server = spawn('python3', [join(ROOT, 'tools/serve.py'), String(port), dir], { stdio: 'ignore' });
  const exited = new Promise((resolve) => server.once('exit', resolve));
  const url = `http://127.0.0.1:${port}/`;
  for (let tries = 0; ; tries++) {
    if (await fetch(url).then((r) => r.ok, () => false)) break;
    assert.ok(tries < 100, `the copy's server did not start on ${url}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const stop = async () => {
    server.kill();
    await exited;
  };
  cleanup.push(async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, url, stop };
}

/** Regenerates the copy's list of files and its version, as ./build.sh build does; the new list. */
async function relist(dir) {
  await new Promise((resolve, reject) => {
    const tool = spawn('node', [join(ROOT, 'tools/offline-files.mjs'), dir], { stdio: 'ignore' });
    tool.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`offline-files.mjs exited with ${code}`))));
  });
  const source = await readFile(join(dir, 'offline-files.js'), 'utf8');
  return JSON.parse(source.slice(source.indexOf('{'), source.lastIndexOf('}') + 1));
}

/** A wasm custom section (id 0) named `name`: the module changes, what it does does not. */
function customSection(name, payload) {
  const body = Buffer.concat([Buffer.from([name.length]), Buffer.from(name), Buffer.from(payload)]);
  assert.ok(body.length < 128, 'one byte of length');
  return Buffer.concat([Buffer.from([0, body.length]), body]);
}

/** A rebuild of the CPU module: its JS glue and its wasm both change. */
async function rebuildCpuModule(dir, build) {
  await appendFile(join(dir, 'pkg-cpu/autoencoder_lab.js'), `\n// rebuilt: ${build}\n`);
  await appendFile(join(dir, 'pkg-cpu/autoencoder_lab_bg.wasm'), customSection('lab-build', build));
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

const offline = (page) => page.locator('#offline-info').evaluate((el) => ({ ...el.dataset, text: el.textContent }));

async function waitForOffline(page, state, timeout = READY_MS) {
  await page
    .waitForFunction((s) => document.getElementById('offline-info').dataset.state === s, state, { timeout, polling: 250 })
    .catch(async (err) => {
      throw new Error(`the offline line never said ${state}: ${JSON.stringify(await offline(page))} (${err.message})`);
    });
  return offline(page);
}

/** Trains the form's run to its end; what the loss chart then holds. */
async function trainToEnd(page) {
  await page.click('#train');
  await page.waitForFunction(() => document.getElementById('status-message').textContent.startsWith('Done'), null, { timeout: RUN_MS, polling: 250 });
  await waitForState(page, 'ready', READY_MS);
  return page.locator('#loss-chart').evaluate((c) => ({ points: c.dataset.points, firstLoss: c.dataset.firstLoss, lastSmoothed: c.dataset.lastSmoothed, lastTest: c.dataset.lastTest }));
}

/** What the page gets for `path` (through its service worker, if one serves it): its SHA-256 and text's end. */
function fetchedByPage(page, path) {
  return page.evaluate(async (p) => {
    const bytes = await (await fetch(p)).arrayBuffer();
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    return { sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''), tail: new TextDecoder().decode(bytes.slice(-40)) };
  }, path);
}

/** Every cache the page's origin holds, with each entry's path and SHA-256. */
function cachesOf(page) {
  return page.evaluate(async () => {
    const out = {};
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      out[name] = {};
      for (const request of await cache.keys()) {
        const bytes = await (await cache.match(request)).arrayBuffer();
        const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
        out[name][new URL(request.url).pathname.slice(1)] = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
      }
    }
    return out;
  });
}

test('after one visit and a run, with the server stopped, a reload opens the page from the copy and trains again', { timeout: 3 * RUN_MS }, async () => {
  const server = await serveCopy();
  const { browser, page } = await openPage(problems);
  cleanup.push(() => browser.close());
  await page.goto(new URL(RUN, server.url).href);
  await waitForState(page, 'ready', READY_MS);
  const saved = await waitForOffline(page, 'saved');
  assert.match(saved.text, /^Saved in this browser \(build [0-9a-f]{12}\): the page opens and trains here without a network, with the data it has loaded \(1,000 training images\)\.$/);
  const first = await trainToEnd(page);
  assert.equal(first.points, '32');

  await server.stop();
  assert.equal(await fetch(server.url).then(() => 'up', () => 'down'), 'down', 'the server is gone');
  await page.reload();
  await waitForState(page, 'ready', READY_MS);
  const cached = await waitForOffline(page, 'cached');
  assert.equal(cached.version, saved.version);
  assert.match(cached.text, /^Running from the copy saved in this browser \(build [0-9a-f]{12}\): it works without a network, with the data it has loaded \(1,000 training images\)\.$/);
  assert.deepEqual(await trainToEnd(page), first, 'the same run, from the copy: the same losses');
  assert.equal(await page.evaluate(() => !!navigator.serviceWorker.controller), true);
  // The WebGPU module was kept too (this browser has an adapter), so it can be picked offline.
  const kept = Object.keys(Object.values(await cachesOf(page))[0]);
  assert.ok(kept.includes('pkg/autoencoder_lab_bg.wasm') && kept.includes('data/train-00.idx.gz'), `kept: ${kept}`);

  // Images this browser never loaded: said plainly, and the model from the copy stays and trains.
  const before = problems.length;
  await page.selectOption('#subset', '5000');
  await page.click('#train');
  await page.waitForFunction(() => document.getElementById('status-message').textContent.startsWith('Could not start training'), null, { timeout: READY_MS });
  assert.match(
    await page.locator('#status-message').innerText(),
    /^Could not start training: could not fetch train-0\d\.idx\.gz \(.*\); without a network, only the images loaded on an earlier visit are at hand/,
  );
  await waitForState(page, 'ready', READY_MS);
  await page.click('#step');
  await page.waitForFunction(() => /^Trained one batch \(step 33\)/.test(document.getElementById('status-message').textContent), null, { timeout: RUN_MS });
  // The browser logs each fetch that failed as a console error: this step's, and expected.
  const logged = problems.splice(before);
  assert.ok(logged.every((p) => /Failed to load resource/.test(p)), `other problems: ${logged}`);
});

test('a rebuilt module: the page from the copy runs the old build whole, then moves to the new one whole', { timeout: 3 * RUN_MS }, async () => {
  const server = await serveCopy();
  const { browser, page } = await openPage(problems);
  cleanup.push(() => browser.close());
  const wasm = 'pkg-cpu/autoencoder_lab_bg.wasm';
  const glue = 'pkg-cpu/autoencoder_lab.js';
  const v1 = await relist(server.dir);
  await page.goto(new URL(RUN, server.url).href);
  await waitForState(page, 'ready', READY_MS);
  assert.equal((await waitForOffline(page, 'saved')).version, v1.version);

  // Caught between two builds: the new list names a wasm the server no longer has.
  await rebuildCpuModule(server.dir, 'half');
  await relist(server.dir);
  await appendFile(join(server.dir, wasm), customSection('lab-build', 'more'));
  await page.reload();
  await waitForState(page, 'ready', READY_MS);
  const refused = await waitForOffline(page, 'failed');
  assert.match(refused.text, /^Not saved for offline use: pkg-cpu\/autoencoder_lab_bg\.wasm on the server is not the one this build lists/);
  assert.deepEqual(await fetchedByPage(page, wasm).then((f) => f.sha256), v1.core[wasm], 'the page runs the old wasm');
  assert.deepEqual(Object.keys(await cachesOf(page)), [`autoencoder-lab-${v1.version}`], 'nothing of the refused build is kept');

  // The rebuild finished: its list matches the server.
  const v2 = await relist(server.dir);
  assert.notEqual(v2.version, v1.version);
  await page.reload();
  await waitForState(page, 'ready', READY_MS);
  const waiting = await waitForOffline(page, 'update');
  assert.match(waiting.text, /^A new build of the page is waiting: this tab still runs the one saved before\./);
  // Until it is taken, the old build, whole: its glue and its wasm, not the server's.
  assert.equal((await fetchedByPage(page, wasm)).sha256, v1.core[wasm]);
  assert.equal((await fetchedByPage(page, glue)).sha256, v1.core[glue]);
  await page.click('#step');
  await page.waitForFunction(() => /^Trained one batch/.test(document.getElementById('status-message').textContent), null, { timeout: RUN_MS });
  await waitForState(page, 'ready', READY_MS);

  await Promise.all([page.waitForEvent('load', { timeout: READY_MS }), page.click('#offline-update')]);
  await waitForState(page, 'ready', READY_MS);
  const moved = await waitForOffline(page, 'cached');
  assert.equal(moved.version, v2.version);
  assert.equal((await fetchedByPage(page, wasm)).sha256, v2.core[wasm]);
  assert.match((await fetchedByPage(page, glue)).tail, /rebuilt: half/);
  // One cache, every byte in it the new list's (or, for a chunk, the data index's).
  const held = await cachesOf(page);
  assert.deepEqual(Object.keys(held), [`autoencoder-lab-${v2.version}`]);
  const index = JSON.parse(await readFile(join(server.dir, 'data/index.json'), 'utf8'));
  const chunks = Object.fromEntries([...index.train, ...index.test].map((e) => [`data/${e.file}`, e.sha256]));
  const listed = { ...v2.core, ...v2.webgpu, ...chunks };
  for (const [path, hash] of Object.entries(held[`autoencoder-lab-${v2.version}`])) assert.equal(hash, listed[path], path);
  for (const path of Object.keys(v2.core)) assert.ok(path in held[`autoencoder-lab-${v2.version}`], `${path} is kept`);
  // The new module's JS and wasm work together: the page trains on them.
  await page.click('#step');
  await page.waitForFunction(() => /^Trained one batch/.test(document.getElementById('status-message').textContent), null, { timeout: RUN_MS });
  assert.equal(sha256(await readFile(join(server.dir, wasm))), v2.core[wasm]);
});

testNoProblems(problems);
