// The CPU backend's pool of workers (www/js/lab/pool.js, www/js/worker/poolstep.js), in headless
// Chromium: a step cut over two workers has the one-worker step's losses (up to the order of float
// sums) and the same losses twice for the same seed; and the page trains on one worker per core
// and says how many. A helper worker that dies: recovery.test.mjs. Needs a server for www/
// (LAB_URL, default http://127.0.0.1:8000/).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LAB_URL } from '../support/browser.mjs';
import { browserForFile, cpuPoolSize, pause, setSettings, testNoProblems, trainingWorkers, waitForPoints, waitForState } from '../support/pagekit.mjs';

const READY_MS = 180_000;
const RUN_MS = 600_000;
const STEPS = 15;

let browser;
let page;
const problems = browserForFile((opened) => ({ browser, page } = opened));

/** bench.html's run of `model` on the CPU with a pool of `workers`: its losses and pool size. */
async function benchRun(model, workers) {
  const bench = await browser.context.newPage();
  try {
    const url = new URL('bench.html', LAB_URL);
    url.search = new URLSearchParams({ backend: 'cpu', model, warmup: 0, steps: STEPS, workers }).toString();
    await bench.goto(url.href);
    const result = await (await bench.waitForFunction(() => window.benchResult, null, { timeout: RUN_MS, polling: 250 })).jsonValue();
    assert.equal(result.error, undefined, `bench.html failed: ${result.error}`);
    return { losses: [result.first_loss, ...result.losses], workers: result.workers };
  } finally {
    await bench.close();
  }
}

for (const model of ['dense', 'conv']) {
  test(`${model}: a step cut over 2 workers has the 1-worker losses, and the same losses twice`, { timeout: RUN_MS }, async () => {
    const one = await benchRun(model, 1);
    const two = await benchRun(model, 2);
    const again = await benchRun(model, 2);
    assert.equal(one.workers, 1);
    assert.equal(two.workers, 2);
    assert.equal(two.losses.length, STEPS + 1);
    // Same seed, same pool size: the gradients are added in one fixed order, so bit for bit.
    assert.deepEqual(again.losses, two.losses, 'two runs of the same pool differ');
    // Against one worker only the order of float sums differs: about 1e-6 relative a step; a
    // part left out or counted twice would be off by a tenth or more from the first step.
    for (const [i, loss] of two.losses.entries()) {
      const expected = one.losses[i];
      assert.ok(Math.abs(loss - expected) <= 1e-3 * expected, `step ${i}: ${loss} on 2 workers vs ${expected} on 1`);
    }
    assert.ok(two.losses.at(-1) < 0.9 * two.losses[0], `it trains: ${two.losses[0]} -> ${two.losses.at(-1)}`);
  });
}

test('the CPU backend trains on one worker per usable core (at most 4), and the page says how many', { timeout: RUN_MS }, async () => {
  await page.goto(new URL('?backend=cpu', LAB_URL).href);
  await waitForState(page, 'ready', READY_MS);
  const expected = await cpuPoolSize(page);
  const info = page.locator('#backend-info');
  const text = await info.innerText();
  if (expected > 1) assert.match(text, new RegExp(`trains on ${expected} workers`));
  else assert.match(text, /trains on one worker/);

  await setSettings(page, { model: 'conv', backend: 'cpu', subset: '10000', epochs: '100' });
  await page.click('#train');
  await waitForState(page, 'training', READY_MS);
  await waitForPoints(page, 10, RUN_MS);
  if (expected > 1) {
    await page.waitForFunction(() => /images\/s on \d+ workers/.test(document.getElementById('progress-text').textContent), null, { timeout: 60_000 });
    assert.match(await page.locator('#progress-text').innerText(), new RegExp(`images/s on ${expected} workers`));
  }
  assert.equal((await trainingWorkers(page)).length, expected, 'one training worker per part of the pool');
  await pause(page);
});

testNoProblems(problems);
