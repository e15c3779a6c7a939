// Predicting digits, the latent map, compare mode and keeping models, as a person uses them, in
// headless Chromium on the CPU backend (these features do not depend on the backend, and the CPU
// one trains 20-100x faster than SwiftShader's software GPU).
//
// LAB_MODEL_FILE: a conv model file written by the command line (`train --save`); build.sh
// trains one on 10,000 images first, so that a drawn digit can be read reliably and a native
// model is shown to load in the page.
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { LAB_URL } from '../support/browser.mjs';
import { wholeDrawingReadIn } from '../support/inpage.mjs';
import { ARTIFACTS, browserForFile, canvasStats, compareUntilFilled, drawOnPad, isDrawn, requireModelFile, testNoProblems, waitForState } from '../support/pagekit.mjs';

const MODEL_FILE = process.env.LAB_MODEL_FILE;
const READY_MS = 120_000;
const RUN_MS = 300_000;

let page;
const problems = browserForFile(async (opened) => {
  page = opened.page;
  requireModelFile(MODEL_FILE);
  await mkdir(ARTIFACTS, { recursive: true });
});

const keepStatus = () => page.locator('#keep-status').innerText();

/** Picks a model and subset on the CPU backend and makes a fresh model of it. */
async function freshModel(model, subset = '1000') {
  await page.selectOption('#backend', 'cpu');
  await page.selectOption('#model', model);
  await page.selectOption('#subset', subset);
  await page.fill('#epochs', '1');
  await page.fill('#learningRate', '0.001');
  await page.click('#reset');
  await page.waitForFunction((m) => document.getElementById('fact-model').textContent.startsWith(m.slice(0, 4)), model);
  await waitForState(page, 'ready', READY_MS);
}

async function loadFile(files) {
  await page.setInputFiles('#load-model', files);
  await page.waitForFunction(() => /^(Loaded|Could not load)/.test(document.getElementById('keep-status').textContent), null, {
    timeout: 60_000,
  });
  await waitForState(page, 'ready', READY_MS);
}

async function fitPredictors() {
  await page.click('#fit-predictors');
  await page.waitForFunction(() => document.getElementById('accuracy-knn').dataset.value !== '', null, { timeout: RUN_MS });
  await waitForState(page, 'ready', READY_MS);
  return {
    knn: Number(await page.locator('#accuracy-knn').getAttribute('data-value')),
    linear: Number(await page.locator('#accuracy-linear').getAttribute('data-value')),
  };
}

test('a conv model trained on the command line loads, and its codes predict test digits', { timeout: RUN_MS }, async () => {
  await page.goto(`${LAB_URL}?backend=cpu`);
  await waitForState(page, 'ready', READY_MS);
  await freshModel('conv');
  await loadFile(MODEL_FILE);
  assert.match(await keepStatus(), /^Loaded .*a conv model/);
  // A loaded model's dead code numbers are counted at once.
  assert.match(await page.locator('#fact-latent').innerText(), /^64 numbers \(ReLU\), \d+ dead$/);
  const accuracy = await fitPredictors();
  // Chance is 10%. One epoch on 10,000 images (313 steps) gives codes that sort most digits
  // (k-NN 75% over 1,000 training codes when measured); the full run reaches 97%.
  assert.ok(accuracy.knn > 0.6, `k-NN accuracy ${accuracy.knn}`);
  assert.ok(accuracy.linear > 0.4, `linear accuracy ${accuracy.linear}`);
  const cells = await page.locator('#confusion tbody td').allInnerTexts();
  assert.equal(cells.length, 100);
  assert.equal(cells.map(Number).reduce((a, b) => a + b, 0), 1000, 'the confusion matrix counts every test digit');
});

test('a drawn 1 is read as a 1, with three guesses per method, and marked on the map', { timeout: 60_000 }, async () => {
  await drawOnPad(page, [
    [0.5, 0.15],
    [0.5, 0.85],
  ]);
  await page.waitForFunction(wholeDrawingReadIn, null, { timeout: 30_000 });
  assert.equal(await page.locator('#guesses-knn').getAttribute('data-top'), '1');
  assert.equal(await page.locator('#guesses-knn li').count(), 3);
  assert.equal(await page.locator('#guesses-linear li').count(), 3);
  const [output] = await canvasStats(page, '#pad-output');
  assert.ok(isDrawn(output), 'the drawing is reconstructed');
});

test('clicking the latent map decodes that point', { timeout: 60_000 }, async () => {
  const map = page.locator('#latent-map');
  assert.equal(await map.getAttribute('data-points'), '1000', 'every test digit is on the map');
  await map.scrollIntoViewIfNeeded();
  const box = await map.boundingBox();
  await page.mouse.click(box.x + box.width * 0.4, box.y + box.height * 0.5);
  await page.waitForFunction(() => document.getElementById('map-decoded').dataset.empty === 'no', null, { timeout: 30_000 });
  assert.notEqual(await map.getAttribute('data-picked'), '');
  const [decoded] = await canvasStats(page, '#map-decoded');
  assert.ok(isDrawn(decoded), 'the decoded digit is drawn');
  await page.screenshot({ path: join(ARTIFACTS, 'page-predict.png'), fullPage: true });
});

test('interpolation ends are picked by clicking a digit of the grid and one on the map', { timeout: 60_000 }, async () => {
  const end = (slot) =>
    page.locator(`#interp-${slot}`).evaluate((el) => ({ ...el.dataset, text: el.innerText }));
  const stripEnds = () => page.locator('#interp-strip').getAttribute('data-ends');
  // Each end shows its digit: the picked test image and its label.
  const shown = async (slot) => {
    const e = await end(slot);
    const [tile] = await canvasStats(page, `#interp-${slot} canvas`);
    assert.ok(isDrawn(tile), `the ${slot} end's digit is drawn`);
    assert.match(e.text, new RegExp(`^${slot}: a ${e.label} \\(test image ${e.index}\\)$`));
    return e;
  };

  // The first end takes the next click: test image 4 of the grid's top row.
  await page.click('#interp-from');
  await page.locator('#recon-grid canvas:not(.output)').nth(4).click();
  const from = await shown('from');
  assert.equal(from.index, '4');
  assert.equal(from.label, String((await page.locator('#recon-grid canvas:not(.output)').nth(4).getAttribute('title')).match(/a (\d)/)[1]));
  assert.equal(from.active, 'no', 'the other end is next');
  assert.equal((await end('to')).active, 'yes');

  // Then the map: the test digit nearest to the click becomes the other end.
  const map = page.locator('#latent-map');
  await map.scrollIntoViewIfNeeded();
  const box = await map.boundingBox();
  await page.mouse.click(box.x + box.width * 0.6, box.y + box.height * 0.4);
  await page.waitForFunction(() => document.getElementById('latent-map').dataset.digit !== '');
  const picked = await map.getAttribute('data-digit');
  await page.waitForFunction((i) => document.getElementById('interp-to').dataset.index === i, picked);
  const to = await shown('to');
  assert.ok(Number(to.label) >= 0 && Number(to.label) <= 9);

  // Both ends picked, with predictors fitted: the strip is decoded between them at once.
  await page.waitForFunction((ends) => document.getElementById('interp-strip').dataset.ends === ends, `4,${picked}`, {
    timeout: 30_000,
  });
  const tiles = await canvasStats(page, '#interp-strip canvas');
  assert.equal(tiles.length, 8);
  assert.ok(tiles.every(isDrawn), 'every step is drawn');
  assert.equal(await stripEnds(), `4,${picked}`);

  // The Interpolate button draws the same strip again.
  await page.click('#interpolate');
  await page.waitForFunction(() => document.getElementById('interp-strip').dataset.filled === 'yes');
  assert.equal(await stripEnds(), `4,${picked}`);
});

test('a model downloads and loads back', { timeout: 60_000 }, async () => {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save-model')]);
  const path = join(ARTIFACTS, 'downloaded-conv.bin');
  await download.saveAs(path);
  const bytes = await readFile(path);
  assert.equal(bytes.subarray(0, 5).toString(), 'AELAB', 'the file starts with the lab marker');
  await loadFile(path);
  assert.match(await keepStatus(), /^Loaded downloaded-conv\.bin/);
});

test('compare mode trains both models on the same batches and fills the table', { timeout: RUN_MS }, async () => {
  await page.selectOption('#subset', '1000');
  await page.fill('#epochs', '1');
  await compareUntilFilled(page, '0', RUN_MS);
  const series = await page.locator('#compare-chart').getAttribute('data-series-points');
  assert.equal(series, 'dense:32,conv:32', 'both curves hold the 32 steps of one epoch');
  const cells = await page.locator('#compare-table tbody td').allInnerTexts();
  assert.equal(cells.length, 22, 'eleven rows, two models');
  assert.ok(cells.every((c) => c !== '–' && c !== ''), `every cell has a number: ${cells}`);
  assert.match(await page.locator('#compare-conclusion').innerText(), /reconstructs better: test MSE/);
  assert.equal(await page.locator('#compare-conclusion').getAttribute('data-dead-code'), '', "no model's whole code died");
  assert.equal(await page.locator('#compare-table td[data-model="conv"]').nth(1).innerText(), '64');
  await page.screenshot({ path: join(ARTIFACTS, 'page-insight.png'), fullPage: true });
});

test('a finished run is kept in the browser and offered on the next visit', { timeout: RUN_MS }, async () => {
  await page.selectOption('#model', 'conv');
  await page.click('#train');
  await page.waitForFunction(() => document.getElementById('status-message').textContent.startsWith('Done'), null, {
    timeout: RUN_MS,
  });
  // Keeping happens just after "Done": wait until IndexedDB holds it, then come back.
  const loadedAt = await page.evaluate(() => Date.now() - performance.now()); // kept after this
  for (const deadline = Date.now() + 30_000; !(await page.evaluate(keptSince, ['conv', loadedAt])); ) {
    assert.ok(Date.now() < deadline, 'the finished model was kept in IndexedDB within 30 s');
    await page.waitForTimeout(250);
  }
  await page.goto(`${LAB_URL}?backend=cpu`);
  await waitForState(page, 'ready', READY_MS);
  const offer = page.locator('#kept-offer button[data-kind="conv"]');
  await offer.waitFor({ timeout: 10_000 });
  await offer.click();
  await page.waitForFunction(() => document.getElementById('keep-status').textContent.startsWith('Loaded the kept conv model'));
});

/**
 * In the page: whether its IndexedDB keeps a model of `kind` saved after `since` (ms since the
 * epoch). It opens the database only once it exists: opening a missing one would make it, empty,
 * and the page's own first open would then find no store in it.
 */
async function keptSince([kind, since]) {
  const names = (await indexedDB.databases()).map((d) => d.name);
  if (!names.includes('autoencoder-lab')) return false;
  const db = await new Promise((resolve, reject) => {
    const req = indexedDB.open('autoencoder-lab');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  try {
    if (!db.objectStoreNames.contains('models')) return false;
    const kept = await new Promise((resolve, reject) => {
      const req = db.transaction('models').objectStore('models').get(kind);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    return !!kept && Date.parse(kept.savedAt) >= since;
  } finally {
    db.close();
  }
}

testNoProblems(problems);
