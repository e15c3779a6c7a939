// Every control of the page clicked at random while it trains, in headless Chromium: disabled or
// not, in any order, fast. No click fails, nothing says "Unexpected error", and a fresh run trains
// to its end afterwards. LAB_SEED replays the clicks; the seed in use is printed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LAB_URL } from '../support/browser.mjs';
import { MANY_EPOCHS, browserForFile, chartPoints, setSettings, testNoProblems, waitForState } from '../support/pagekit.mjs';
import { seedFrom, shuffled, splitmix } from '../support/random.mjs';

const SEED = seedFrom('LAB_SEED');
const READY_MS = 180_000;
const RUN_MS = 600_000;

let page;
const problems = browserForFile((opened) => (page = opened.page));

const state = () => page.locator('body').getAttribute('data-state');

test('every control is safe to click at any moment', { timeout: RUN_MS }, async () => {
  console.log(`random clicks from seed ${SEED} (LAB_SEED=${SEED} replays them)`);
  const replay = `(replay with LAB_SEED=${SEED})`;
  await page.goto(LAB_URL);
  await waitForState(page, 'ready', READY_MS);
  await setSettings(page, { model: 'dense', backend: 'cpu', subset: '10000', epochs: MANY_EPOCHS });
  await page.click('#train');
  await waitForState(page, 'training', READY_MS);
  const controls = ['#train', '#pause', '#resume', '#step', '#reset', '#fit-predictors', '#interpolate', '#compare', '#compare-stop', '#save-model', '#clear-pad', '#copy-link'];
  const random = splitmix(SEED);
  const clicked = [];
  // Disabled or not, in every order, fast: force skips the wait for them to be enabled. A click
  // that fails (the control gone or hidden) is a failure of the page, said with the seed.
  for (let round = 0; round < 4; round++) {
    for (const selector of shuffled(controls, random)) {
      clicked.push(selector);
      await page.click(selector, { force: true, timeout: 2000 }).catch((err) => {
        throw new Error(`click ${clicked.length} (${selector}) failed ${replay}: ${err.message}`);
      });
      await page.waitForTimeout(40);
    }
  }
  await page.click('#compare-stop', { force: true });
  await waitForState(page, ['ready', 'paused', 'training'], RUN_MS);
  assert.doesNotMatch(await page.locator('#status-message').innerText(), /Unexpected error/, `after the clicks ${clicked.join(' ')} ${replay}`);
  // Still works: a fresh run trains.
  if ((await state()) === 'training') await page.click('#pause');
  await waitForState(page, ['ready', 'paused'], RUN_MS);
  await setSettings(page, { model: 'conv', backend: 'cpu', subset: '1000', epochs: '1' });
  await page.click('#train');
  await page.waitForFunction(() => document.getElementById('status-message').textContent.startsWith('Done'), null, { timeout: RUN_MS });
  assert.equal(await chartPoints(page), 32);
});

testNoProblems(problems);
