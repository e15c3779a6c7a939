// A hidden tab, in headless Chromium: it pauses when the person asked for that and picks up when
// the tab is back; otherwise it trains on, one call at a time, so that Pause still answers at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LAB_URL } from '../support/browser.mjs';
import { MANY_EPOCHS, browserForFile, chartPoints, loopStopped, setSettings, testNoProblems, waitForPoints, waitForState } from '../support/pagekit.mjs';

const READY_MS = 180_000;
const RUN_MS = 600_000;

let page;
const problems = browserForFile((opened) => (page = opened.page));

const state = () => page.locator('body').getAttribute('data-state');

async function hideTab(hidden) {
  await page.evaluate((h) => {
    Object.defineProperty(document, 'hidden', { value: h, configurable: true });
    Object.defineProperty(document, 'visibilityState', { value: h ? 'hidden' : 'visible', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

test('a hidden tab pauses when asked to and picks up again; otherwise it trains on, and Pause still answers at once', { timeout: RUN_MS }, async (t) => {
  await page.goto(LAB_URL);
  await waitForState(page, 'ready', READY_MS);
  await setSettings(page, { model: 'dense', backend: 'cpu', subset: '10000', epochs: MANY_EPOCHS });
  await page.click('#train');
  await waitForState(page, 'training', READY_MS);
  await waitForPoints(page, 5, RUN_MS);

  await page.uncheck('#train-hidden');
  await hideTab(true);
  await waitForState(page, 'paused', 30_000);
  await loopStopped(page);
  assert.match(await page.locator('#status-message').innerText(), /hidden/);
  const whilePaused = await chartPoints(page);
  await page.waitForTimeout(1000);
  assert.equal(await chartPoints(page), whilePaused, 'no steps while paused in a hidden tab');
  await hideTab(false);
  await waitForState(page, 'training', 30_000);

  await page.check('#train-hidden');
  const before = await chartPoints(page);
  await hideTab(true);
  await page.waitForTimeout(3000);
  assert.equal(await state(), 'training');
  const hiddenSteps = (await chartPoints(page)) - before;
  assert.ok(hiddenSteps > 10, `it trained on while hidden: ${hiddenSteps} steps`);
  await hideTab(false);
  // One call at a time: Pause lands after the call in flight, not after a queue of them.
  const t0 = Date.now();
  await page.click('#pause');
  await waitForState(page, 'paused', 10_000);
  await loopStopped(page);
  const settled = await chartPoints(page);
  await page.waitForTimeout(1000);
  assert.equal(await chartPoints(page), settled, 'nothing queued runs after the pause');
  t.diagnostic(`hidden 3 s: ${hiddenSteps} steps; Pause answered in ${Date.now() - t0} ms`);
});

testNoProblems(problems);
