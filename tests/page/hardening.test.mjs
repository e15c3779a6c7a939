// The page against hostile input: its Content-Security-Policy is in force (an injected inline
// script does not run, and the page still trains on both backends under it), and a bad model file
// is refused next to Load without touching the model, its training or the models kept in the
// browser. Which files are bad is the parser's to say, and tested where it is cheapest: natively
// (tests/models.rs, tests/fuzz.rs) and in the wasm module (tests/module/); here, the page's two
// answers to a refusal, for a file of the other model and for any other bad file.
//
// LAB_MODEL_FILE: a conv model file written by the command line (build.sh trains one).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { test } from 'node:test';
import { LAB_URL } from '../support/browser.mjs';
import { browserForFile, requireModelFile, setSettings, testNoProblems, waitForState } from '../support/pagekit.mjs';
import { tryInjectionIn } from '../support/inpage.mjs';

const MODEL_FILE = process.env.LAB_MODEL_FILE;
const READY_MS = 120_000;
const RUN_MS = 300_000;

let page;
const problems = browserForFile((opened) => (page = opened.page));

const status = () => page.locator('#status-message').innerText();
const keepStatus = () => page.locator('#keep-status').innerText();

async function stepOnce() {
  await page.click('#step');
  await page.waitForFunction(() => /^Trained one batch/.test(document.getElementById('status-message').textContent), null, {
    timeout: RUN_MS,
  });
  await waitForState(page, 'ready', READY_MS);
  return Number((await status()).match(/step ([\d,]+)/)[1].replace(/,/g, ''));
}

test('the page is served and written with its Content-Security-Policy, and an injected inline script does not run', { timeout: READY_MS }, async () => {
  const response = await fetch(LAB_URL);
  const header = response.headers.get('content-security-policy');
  assert.match(header ?? '', /script-src 'self' 'wasm-unsafe-eval'/, 'the server sends the policy');
  assert.match(header, /frame-ancestors 'none'/);
  // 'wasm-unsafe-eval' is allowed; the quote before 'unsafe-eval' keeps it from matching.
  assert.doesNotMatch(header, /'unsafe-inline'|'unsafe-eval'/, 'no inline script or JS eval is allowed');
  await page.goto(LAB_URL);
  await waitForState(page, 'ready', READY_MS);
  const meta = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  assert.ok(header.startsWith(meta), 'the header is the page meta tag’s policy, plus frame-ancestors');
  const outcome = await page.evaluate(tryInjectionIn);
  assert.equal(outcome.injectedRan, false, 'an injected <script> ran');
  assert.equal(outcome.handlerRan, false, 'an injected inline event handler ran');
  assert.ok(outcome.violations.some((d) => d.startsWith('script-src')), `no script-src violation reported: ${outcome.violations}`);
  // The refusals are the browser's console errors that this test caused; any other counts.
  problems.splice(0, problems.length, ...problems.filter((p) => !/Content Security Policy/.test(p)));
});

test("the service worker and the manifest come from the page's own origin alone, and the worker runs under the policy", { timeout: 3 * READY_MS }, async () => {
  const directives = (policy) => new Map(policy.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name, values.join(' ')]));
  const meta = directives(await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content'));
  assert.equal(meta.get('worker-src'), "'self'", 'workers, the service worker among them, from this origin only');
  assert.equal(meta.get('manifest-src'), "'self'");
  // The service worker's own fetches are held to the policy its script came with: this origin's.
  const worker = await fetch(new URL('sw.js', LAB_URL));
  assert.ok(worker.ok);
  assert.equal(directives(worker.headers.get('content-security-policy')).get('connect-src'), "'self'");
  // The page registers it (once started and its backends timed) from its own origin, over its folder.
  await page.waitForFunction(() => document.getElementById('offline-info').dataset.state === 'saved', null, { timeout: 2 * READY_MS, polling: 500 });
  const registered = await page.evaluate(async () => {
    const reg = await navigator.serviceWorker.getRegistration();
    return { script: reg.active.scriptURL, scope: reg.scope };
  });
  assert.deepEqual(registered, { script: new URL('sw.js', LAB_URL).href, scope: new URL('./', LAB_URL).href });
  // The manifest, linked once the page has started, is the page's own, served as a manifest.
  const manifest = await page.locator('link[rel="manifest"]').evaluate((link) => link.href);
  assert.equal(manifest, new URL('manifest.webmanifest', LAB_URL).href);
  const served = await fetch(manifest);
  assert.equal(served.headers.get('content-type'), 'application/manifest+json');
  const { start_url: start, icons } = await served.json();
  assert.equal(start, './');
  for (const icon of icons) assert.ok((await fetch(new URL(icon.src, manifest))).ok, `${icon.src} is served`);
});

for (const backend of ['cpu', 'webgpu']) {
  test(`under the policy the conv model trains on the ${backend === 'cpu' ? 'CPU' : 'WebGPU'} backend`, { timeout: RUN_MS }, async () => {
    await setSettings(page, { model: 'conv', backend });
    await page.click('#reset');
    await waitForState(page, 'ready', READY_MS);
    assert.equal(await stepOnce(), 1);
    assert.equal(await stepOnce(), 2);
    assert.match(await page.locator('#backend-info').innerText(), backend === 'cpu' ? /CPU/ : /WebGPU/);
  });
}

/** What the page says of its model, and the models it keeps in the browser. */
async function modelShown() {
  return {
    model: await page.locator('#fact-model').innerText(),
    parameters: await page.locator('#fact-parameters').innerText(),
    latent: await page.locator('#fact-latent').innerText(),
    kept: await page.locator('#kept-offer').innerText(),
  };
}

/** `text` as a regular expression that matches it literally. */
const literally = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Loads `file` (a path, or { name, mimeType, buffer }) with Load model file; returns what the page said of it. */
async function loadModelFile(file) {
  const name = typeof file === 'string' ? basename(file) : file.name;
  await page.setInputFiles('#load-model', file);
  await page.waitForFunction(
    (pattern) => new RegExp(`^(Loaded|Could not load) ${pattern}`).test(document.getElementById('keep-status').textContent),
    literally(name),
    { timeout: 60_000 },
  );
  await waitForState(page, 'ready', READY_MS);
  return keepStatus();
}

test('a bad model file is refused next to Load, saying what to do, and the model, its training and the kept models stay as they were', { timeout: RUN_MS }, async () => {
  requireModelFile(MODEL_FILE);
  const whole = await readFile(MODEL_FILE);
  const name = literally(basename(MODEL_FILE));
  await setSettings(page, { model: 'conv', backend: 'cpu' });
  await page.click('#reset');
  await waitForState(page, 'ready', READY_MS);
  assert.equal(await stepOnce(), 1);
  assert.equal(await stepOnce(), 2);
  const before = await modelShown();

  // A bad file, here one cut short: the parser's reason, and no advice about the model.
  const cut = { name: 'cut.bin', mimeType: 'application/octet-stream', buffer: whole.subarray(0, whole.length >> 1) };
  const said = await loadModelFile(cut);
  assert.match(said, /^Could not load cut\.bin: .*\. The current model is unchanged\.$/);
  assert.doesNotMatch(said, /Choose that model/);
  assert.deepEqual(await modelShown(), before);
  // Training goes on from where it was: the next step is the third.
  assert.equal(await stepOnce(), 3);
  // And the untouched file loads, so the refusal was about the cut.
  assert.match(await loadModelFile(MODEL_FILE), new RegExp(`^Loaded ${name}: a conv model`));

  // A file of the other model: the page says which model to choose.
  await setSettings(page, { model: 'dense', backend: 'cpu' });
  await page.click('#reset');
  await waitForState(page, 'ready', READY_MS);
  const dense = await modelShown();
  assert.match(
    await loadModelFile(MODEL_FILE),
    new RegExp(`^Could not load ${name}: .*holds a conv model, but a dense model was asked for.* Choose that model in the Training panel, then load the file again\\. The current model is unchanged\\.$`),
  );
  assert.deepEqual(await modelShown(), dense);
});

testNoProblems(problems);
