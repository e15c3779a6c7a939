// A run in a link, in headless Chromium: a link with settings opens the page with exactly those
// in the form, says so, and runs nothing; a link's bad values get the form's own messages and
// their fields keep the defaults; editing the form rewrites the address (no new history entry);
// the link Copy link hands over opens, in another browser, the same form, whose run has the same
// losses for the same seed. The link's parsing, value by value, is tests/unit/link.test.mjs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LAB_URL } from '../support/browser.mjs';
import { browserForFile, chartPoints, openPage, testNoProblems, waitForState } from '../support/pagekit.mjs';

const READY_MS = 120_000;
const RUN_MS = 300_000;

let page;
// Every address the page asked for, to show that a link makes it fetch nothing elsewhere.
const requested = [];
const problems = browserForFile((opened) => {
  page = opened.page;
  page.on('request', (r) => requested.push(r.url()));
});

const FIELDS = ['backend', 'model', 'codeActivation', 'subset', 'epochs', 'batchSize', 'learningRate', 'seed'];
const form = (p = page) => p.evaluate((ids) => Object.fromEntries(ids.map((id) => [id, document.getElementById(id).value])), [...FIELDS, 'compare-latent']);
const search = (p = page) => new URL(p.url()).searchParams;

/** Trains the form's run to its end; what the loss chart then holds. */
async function trainToEnd(p) {
  await p.click('#train');
  await p.waitForFunction(() => document.getElementById('status-message').textContent.startsWith('Done'), null, { timeout: RUN_MS, polling: 250 });
  await waitForState(p, 'ready', READY_MS);
  return p.locator('#loss-chart').evaluate((c) => ({ points: c.dataset.points, firstLoss: c.dataset.firstLoss, lastSmoothed: c.dataset.lastSmoothed, lastTest: c.dataset.lastTest }));
}

test('a link with settings opens with exactly those in the form, says so, and runs nothing', { timeout: READY_MS }, async () => {
  const link = '?backend=cpu&model=dense&code=relu&images=5000&epochs=3&batch=64&lr=0.003&seed=5&compare=relu';
  await page.goto(new URL(link, LAB_URL).href);
  await waitForState(page, 'ready', READY_MS);
  assert.deepEqual(await form(), {
    backend: 'cpu',
    model: 'dense',
    codeActivation: 'relu',
    subset: '5000',
    epochs: '3',
    batchSize: '64',
    learningRate: '0.003',
    seed: '5',
    'compare-latent': 'relu',
  });
  const note = await page.locator('#link-note').innerText();
  assert.match(note, /^Settings from the link: the CPU backend, the dense model, a ReLU code, 5,000 images, 3 epochs, batch 64, learning rate 0\.003, seed 5\. Compare: the code sizes from the link\. Nothing runs until you press Train\.$/);
  // The model made at start is the link's, and nothing trained it.
  assert.equal(await page.locator('#fact-latent').innerText(), '3 numbers (ReLU)');
  assert.equal(await chartPoints(page), 0);
  assert.equal(await page.evaluate(() => document.body.dataset.runs ?? '0'), '0', 'no run started');
  assert.equal(await page.locator('#backend-info').getAttribute('data-chosen-by'), 'address', 'the backend is the link’s, not timed');
  // No field says anything is wrong, and the address still is the link.
  assert.deepEqual(await page.evaluate(() => [...document.querySelectorAll('.field-error')].map((e) => e.textContent).filter(Boolean)), []);
  assert.equal(new URL(page.url()).search, link);
  const elsewhere = requested.filter((url) => !url.startsWith(new URL(LAB_URL).origin) && !/^(data|blob):/.test(url));
  assert.deepEqual(elsewhere, [], 'the page asked another origin for something');
});

test("a link's bad values get the form's messages, and their fields the defaults", { timeout: READY_MS }, async () => {
  await page.goto(new URL('?model=dense&epochs=many&batch=0&lr=fast&seed=-1&images=123&compare=9', LAB_URL).href);
  await waitForState(page, 'ready', READY_MS);
  const fields = await form();
  assert.deepEqual(
    { model: fields.model, subset: fields.subset, epochs: fields.epochs, batchSize: fields.batchSize, learningRate: fields.learningRate, seed: fields.seed, compare: fields['compare-latent'] },
    { model: 'dense', subset: '10000', epochs: '2', batchSize: '32', learningRate: '0.001', seed: '0', compare: '0' },
    'the good value taken, the defaults for the bad ones',
  );
  const error = (id) => page.locator(`#${id}-error`).innerText();
  assert.match(await error('epochs'), /^epochs must be a whole number: the link's "many" is not used, the default stands$/);
  assert.match(await error('batchSize'), /^batch size must be at least 1: /);
  assert.match(await error('learningRate'), /^learning rate must be a number, e\.g\. 0\.001: /);
  assert.match(await error('seed'), /^seed must be at least 0: /);
  assert.match(await error('subset'), /^choose a subset: /);
  assert.match(await error('compare-latent'), /^choose one of the code sizes offered/);
  assert.equal(await error('model'), '');
  assert.equal(await page.locator('#epochs').getAttribute('aria-invalid'), '', 'the field is marked');
  assert.match(await page.locator('#link-note').innerText(), /the dense model\. 6 values in it could not be used: the marked fields keep their defaults\./);
  // The page started on those settings; a changed field drops the link's word on it, not the others'.
  assert.match(await page.locator('#status-message').innerText(), /^Ready/);
  await page.fill('#epochs', '4');
  assert.equal(await error('epochs'), '');
  assert.match(await error('seed'), /^seed must be at least 0/);
});

test('editing the form rewrites the address, without a new history entry', { timeout: READY_MS }, async () => {
  await page.goto(LAB_URL);
  await waitForState(page, 'ready', READY_MS);
  assert.equal(new URL(page.url()).search, '', 'a page on its defaults keeps its address');
  const entries = await page.evaluate(() => history.length);
  await page.selectOption('#model', 'dense');
  assert.equal(search().get('model'), 'dense');
  assert.equal(search().get('code'), 'linear');
  await page.selectOption('#codeActivation', 'relu');
  await page.fill('#seed', '11');
  await page.fill('#learningRate', '0.002');
  await page.selectOption('#subset', '1000');
  await page.selectOption('#compare-latent', '16');
  assert.equal(
    new URL(page.url()).search,
    '?model=dense&code=relu&images=1000&epochs=2&batch=32&lr=0.002&seed=11&compare=16',
    'every setting, the backend only once picked by hand',
  );
  await page.selectOption('#backend', 'webgpu');
  assert.equal(search().get('backend'), 'webgpu');
  await page.selectOption('#model', 'conv');
  assert.equal(search().get('code'), null, "the conv model's code is no choice");
  assert.equal(await page.evaluate(() => history.length), entries);
});

test('the copied link opens the same form in another browser, and its run has the same losses', { timeout: 3 * RUN_MS }, async () => {
  await page.goto(LAB_URL);
  await waitForState(page, 'ready', READY_MS);
  await page.selectOption('#backend', 'cpu');
  await page.selectOption('#model', 'dense');
  await page.selectOption('#subset', '1000');
  await page.fill('#epochs', '1');
  await page.fill('#learningRate', '0.003');
  await page.fill('#seed', '3');
  const run = await trainToEnd(page);
  assert.equal(run.points, '32');
  await page.click('#copy-link');
  const field = page.locator('#run-link');
  assert.ok(await field.isVisible(), 'the link is shown to copy');
  const link = await field.inputValue();
  assert.equal(link, page.url(), 'the link is the address, which follows the form');
  // The clipboard answers asynchronously: the note says "Copying…" until it has.
  const note = page.locator('#run-link-note');
  await page.waitForFunction(() => document.getElementById('run-link-note').dataset.how !== 'copying', null, { timeout: 10_000 });
  assert.match(await note.getAttribute('data-how'), /^(copied|select)$/);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'run-link', 'selected for copying');

  const other = await openPage(problems);
  try {
    await other.page.goto(link);
    await waitForState(other.page, 'ready', READY_MS);
    assert.deepEqual(await form(other.page), await form(page));
    assert.deepEqual(await trainToEnd(other.page), run, 'the same losses, step by step to the test MSE');
  } finally {
    await other.browser.close();
  }
});

testNoProblems(problems);
