// Training that loses its worker, in headless Chromium: a lost GPU device, and a helper worker of
// the CPU pool that dies, each keep the weights last copied out and offer to continue, and
// training goes on in new workers from there. Needs a server for www/ (LAB_URL, default
// http://127.0.0.1:8000/).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LAB_URL } from '../support/browser.mjs';
import { browserForFile, canvasStats, chartPoints, isDrawn, pause, setSettings, testNoProblems, trainingWorkers, waitForPoints, waitForState } from '../support/pagekit.mjs';

const READY_MS = 180_000;
const RUN_MS = 600_000;

let page;
const problems = browserForFile((opened) => (page = opened.page));

const statusText = () => page.locator('#status-message').innerText();

/**
 * Trains to `steps`, pauses (the weights are copied out at a pause), resumes and trains `more`
 * steps past it. Returns the step whose weights were kept.
 */
async function trainPastAPause(steps, more) {
  await page.click('#train');
  await waitForState(page, 'training', READY_MS);
  await waitForPoints(page, steps, RUN_MS);
  await pause(page);
  const kept = await chartPoints(page);
  await page.click('#resume');
  await waitForPoints(page, kept + more, RUN_MS);
  return kept;
}

/**
 * After a training worker is lost: the status says `why` and that the weights of step `kept` are
 * kept, Continue is the one thing offered, and it trains on `backend` from those weights until
 * `more` steps past them, with the reconstructions drawn.
 */
async function continuesAfterTheLoss(kept, why, backend, more) {
  await waitForState(page, 'lost', 60_000);
  await page.waitForFunction(() => !document.getElementById('retry').hidden, null, { timeout: 10_000 });
  const said = await statusText();
  assert.match(said, why);
  assert.match(said, new RegExp(`as of step ${kept} is kept`));
  assert.equal(await page.locator('#retry').innerText(), 'Continue');
  assert.ok(await page.locator('#train').isDisabled(), 'nothing else can be started meanwhile');

  await page.click('#retry');
  await waitForState(page, 'training', READY_MS);
  assert.match(await statusText(), new RegExp(`Training goes on on ${backend} from the weights of step ${kept}`));
  await waitForPoints(page, kept + more, RUN_MS);
  await pause(page);
  await page.waitForFunction(() => /after \d+ steps/.test(document.getElementById('recon-caption').textContent));
  assert.ok((await canvasStats(page, '#recon-grid canvas.output')).every(isDrawn), 'reconstructions are drawn after recovery');
}

test('a lost GPU device keeps the last weights and training continues in a new worker', { timeout: RUN_MS }, async () => {
  await page.goto(LAB_URL);
  await waitForState(page, 'ready', READY_MS);
  // Once both backends are timed, the workers that timed them are gone: the one left trains.
  await page.waitForFunction(() => document.getElementById('backend-info').dataset.timing === 'done', null, { timeout: READY_MS });
  await setSettings(page, { model: 'conv', backend: 'webgpu', subset: '1000', epochs: '200' });
  const kept = await trainPastAPause(3, 3);
  const workers = page.workers();
  assert.equal(workers.length, 1, 'one training worker');
  assert.ok((await workers[0].evaluate(() => self.labDevices.length)) >= 1, 'the worker holds a WebGPU device');
  await workers[0].evaluate(() => self.labDevices.forEach((d) => d.destroy()));

  await continuesAfterTheLoss(kept, /GPU device was lost/, 'WebGPU', 2);
  assert.equal(page.workers().length, 1, 'the lost worker is gone, one new one runs');
});

test('a helper worker that dies is recovered like a lost GPU device: the last weights kept, training goes on', { timeout: RUN_MS }, async () => {
  await page.goto(new URL('?backend=cpu&workers=2', LAB_URL).href);
  await waitForState(page, 'ready', READY_MS);
  await setSettings(page, { model: 'dense', backend: 'cpu', subset: '10000', epochs: '100' });
  const kept = await trainPastAPause(10, 5);

  const helper = (await trainingWorkers(page)).find((w) => w.name === 'training worker 2 of 2');
  assert.ok(helper, 'the pool has a second worker');
  // An uncaught error ends the helper's script the way a crash would.
  await helper.worker.evaluate(() => setTimeout(() => {
    throw new Error('the helper crashed on purpose');
  }));

  await continuesAfterTheLoss(kept, /training worker 2 of 2 stopped/, 'CPU \\(WebAssembly\\)', 5);
  const workers = await trainingWorkers(page);
  assert.deepEqual(workers.map((w) => w.name).sort(), ['training worker', 'training worker 2 of 2'], 'a new pool of two, the dead one gone');
});

// The deliberate crash and the lost device are reported by the page as lost workers, not as errors.
testNoProblems(problems);
