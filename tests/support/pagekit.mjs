// The page tests' kit: a browser on the page for a file's tests and the check that nothing went
// wrong in it; reading the page (its state, its training, its canvases' pixels); driving it (the
// form, Pause, drawing on its pad).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LAB_URL, assertServerUp, launchBrowser } from './browser.mjs';
import { canvasStatsIn, isDrawn } from './inpage.mjs';

/** Where the page tests leave screenshots, model files and figures: tests/artifacts (git-ignored). */
export const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));

/**
 * A fresh browser and its page; every console error, page error and failed request is pushed
 * onto `problems` (testNoProblems asserts at the end that there are none).
 */
export async function openPage(problems, options = {}) {
  const browser = await launchBrowser(options);
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()} for ${res.url()}`);
  });
  return { browser, page };
}

/**
 * Registers the test each page-test file ends with: nothing was pushed onto `problems` (see
 * openPage) by the tests before it. Call it after the file's other tests, since node:test runs a
 * file's tests in the order they were registered.
 */
export function testNoProblems(problems) {
  test('no console errors, page errors or failed requests', () => {
    assert.deepEqual(problems, []);
  });
}

/** A fresh browser on the lab's page, once the server is known to be up. */
export async function openLabPage(problems) {
  await assertServerUp(LAB_URL);
  return openPage(problems);
}

/**
 * A browser on the lab's page for the tests of one file: opened before the first of them and
 * handed to `use({ browser, page })` (which may prepare it further), closed after the last.
 * Returns the list that every console error, page error and failed request goes onto, for
 * testNoProblems.
 */
export function browserForFile(use) {
  const problems = [];
  let browser;
  before(async () => {
    const opened = await openLabPage(problems);
    browser = opened.browser;
    await use(opened);
  });
  after(() => browser?.close());
  return problems;
}

/**
 * Watches a page's start, from before its navigation: every .wasm fetched (GET) and when it was
 * asked for, and when body[data-state] first said ready (window.readyAt, by the page's clock,
 * which is this machine's). `readyAt()` is that time once it has come; `wasmBeforeReady()` the distinct paths
 * of the wasm modules asked for by then.
 */
export async function watchStart(page) {
  const asked = [];
  // GETs only: the page's HEAD for the WebGPU module (is it built yet?) fetches no wasm.
  page.on('request', (r) => r.method() === 'GET' && r.url().endsWith('.wasm') && asked.push({ path: new URL(r.url()).pathname, at: Date.now() }));
  await page.addInitScript(() => {
    new MutationObserver(() => {
      if (document.body?.dataset.state === 'ready') window.readyAt ??= Date.now();
    }).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-state'] });
  });
  const readyAt = () => page.evaluate(() => window.readyAt);
  return {
    readyAt,
    async wasmBeforeReady() {
      const at = await readyAt();
      return [...new Set(asked.filter((r) => r.at <= at).map((r) => r.path))];
    },
  };
}

/**
 * Epochs for the runs that must still be training when a test looks: 100 epochs of 10,000
 * images is 31,300 steps, minutes on any machine (10 epochs ended within a 30 s watch on a fast one).
 */
export const MANY_EPOCHS = '100';

/** The model file the command line wrote for the page tests (`LAB_MODEL_FILE`), which must exist. */
export function requireModelFile(file) {
  assert.ok(file && existsSync(file), `LAB_MODEL_FILE must name a model file (got ${file})`);
}

/** Waits until body[data-state] is one of `wanted`; on timeout, says where the page stood. */
export async function waitForState(page, wanted, timeout) {
  await page
    .waitForFunction((states) => states.includes(document.body.dataset.state), [wanted].flat(), {
      timeout,
      polling: 250,
    })
    .catch(async (err) => {
      const state = await page.locator('body').getAttribute('data-state');
      const status = await page.locator('#status-message').innerText();
      throw new Error(`page never reached ${wanted}: state ${state}, status "${status}" (${err.message})`);
    });
}

/** How many steps the loss chart holds (one point a step). */
export const chartPoints = (page) => page.locator('#loss-chart').evaluate((c) => Number(c.dataset.points));

/** Waits until the loss chart holds at least `n` steps. */
export async function waitForPoints(page, n, timeout) {
  await page.waitForFunction((k) => Number(document.getElementById('loss-chart').dataset.points) >= k, n, {
    timeout,
    polling: 250,
  });
}

/**
 * Waits until the training loop has stopped: 'paused' shows at once, while the call in flight
 * still finishes. The memory line is refreshed (and the weights kept) once the loop has stopped,
 * for the step it stopped at.
 */
export async function loopStopped(page) {
  await page.waitForFunction(
    () => document.getElementById('memory').dataset.steps === document.getElementById('loss-chart').dataset.points,
    null,
    { timeout: 60_000, polling: 250 },
  );
}

/** Presses Pause and waits until the page has paused and its loop has stopped. */
export async function pause(page) {
  await page.click('#pause');
  await waitForState(page, 'paused', 60_000);
  await loopStopped(page);
}

/** The page's training workers: the lead ('training worker') and its helpers, by name. */
export async function trainingWorkers(page) {
  const named = await Promise.all(page.workers().map(async (w) => [w, await w.evaluate(() => self.name).catch(() => null)]));
  return named.filter(([, name]) => name?.startsWith('training worker')).map(([w, name]) => ({ worker: w, name }));
}

/**
 * The CPU pool's size the page settled on for the form's model (#backend-info's data-cpu-workers),
 * checked against the cores the browser reports: one worker a core up to 4 where it reports 2 or
 * fewer; where it reports more, 2 to 4, as many as lab/cores.js timed as usable.
 */
export async function cpuPoolSize(page) {
  const { workers, cores } = await page.evaluate(() => ({
    workers: Number(document.getElementById('backend-info').dataset.cpuWorkers),
    cores: navigator.hardwareConcurrency || 1,
  }));
  const most = Math.min(cores, 4);
  if (cores <= 2) assert.equal(workers, most, `one worker a core: ${cores} reported`);
  else assert.ok(workers >= 2 && workers <= most, `${workers} workers for ${cores} reported cores`);
  return workers;
}

/** Runs compare mode with `latent` as the dense model's code, and waits for its table to fill. */
export async function compareUntilFilled(page, latent, timeout) {
  await page.selectOption('#compare-latent', latent);
  await page.click('#compare');
  await page.waitForFunction(() => document.getElementById('compare-table').dataset.filled === 'yes', null, { timeout, polling: 500 });
}

/**
 * Opens an empty document of the lab's own origin in `page`, so that the wasm modules load as
 * the page's worker loads them, without the page itself starting up beside a module test.
 */
export async function openBlankPage(page) {
  const blank = new URL('module-test.html', LAB_URL).href;
  await page.route(blank, (route) => route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>module test</title>' }));
  await page.goto(blank);
}

/** Pixel statistics of each canvas matching `selector`. */
export function canvasStats(page, selector) {
  return page.evaluate(canvasStatsIn, selector);
}

export { isDrawn };

/** Draws a polyline on the pad; points are fractions of its width and height. */
export async function drawOnPad(page, points) {
  // page.mouse works in viewport coordinates: the pad must be on screen.
  await page.locator('#pad').scrollIntoViewIfNeeded();
  const box = await page.locator('#pad').boundingBox();
  const at = ([fx, fy]) => [box.x + fx * box.width, box.y + fy * box.height];
  await page.mouse.move(...at(points[0]));
  await page.mouse.down();
  for (const p of points.slice(1)) await page.mouse.move(...at(p), { steps: 14 });
  await page.mouse.up();
}

/**
 * Fills the training form; the page checks it at Train or Reset. codeActivation ('linear' or
 * 'relu', the dense model's only) and seed are left as they are unless given.
 */
export async function setSettings(
  page,
  { model, backend, subset = '1000', epochs = '1', learningRate = '0.003', codeActivation, seed },
) {
  await page.selectOption('#backend', backend);
  await page.selectOption('#model', model);
  if (codeActivation) await page.selectOption('#codeActivation', codeActivation);
  if (seed !== undefined) await page.fill('#seed', String(seed));
  await page.selectOption('#subset', subset);
  await page.fill('#epochs', epochs);
  await page.fill('#batchSize', '32');
  await page.fill('#learningRate', learningRate);
}
