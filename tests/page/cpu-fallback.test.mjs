// The CPU backend when WebGPU cannot be used yet or at all, in headless Chromium: a browser
// without WebGPU says so and trains on the CPU fallback (and a server with less data than the
// form asks for refuses the subset); Train pressed while WebGPU is still being timed starts at
// once on the CPU, and the backend line says WebGPU was not timed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LAB_URL } from '../support/browser.mjs';
import { browserForFile, canvasStats, isDrawn, openPage, testNoProblems, waitForPoints, waitForState } from '../support/pagekit.mjs';

const READY_MS = 180_000;
const RUN_MS = 600_000;

let page;
const problems = browserForFile((opened) => (page = opened.page));

test('without WebGPU the page says so and trains on the CPU fallback; a subset larger than the data is refused', { timeout: READY_MS }, async () => {
  const alone = await openPage(problems, { webgpu: false });
  try {
    const p = alone.page;
    // A server with only 5,000 training images.
    await p.route('**/data/index.json', async (route) => {
      const index = await (await route.fetch()).json();
      await route.fulfill({ json: { ...index, train: index.train.slice(0, 5) } });
    });
    await p.goto(LAB_URL);
    await waitForState(p, 'ready', READY_MS);
    assert.match(await p.locator('#backend-info').innerText(), /No WebGPU here: .*CPU backend/);
    assert.equal(await p.locator('#backend').inputValue(), 'cpu');
    assert.ok(await p.locator('#backend option[value="webgpu"]').isDisabled(), 'WebGPU cannot be picked');

    assert.ok(await p.locator('#subset option[value="10000"]').isDisabled(), 'a subset the server lacks cannot be picked');
    assert.equal(await p.locator('#subset').inputValue(), '5000', "the default (10,000) falls back to the server's largest");
    // A form left over from before (or edited by hand) still asks for it: refused all the same.
    await p.locator('#subset').evaluate((s) => {
      s.value = '10000';
      s.dispatchEvent(new Event('change', { bubbles: true }));
    });
    await p.click('#train');
    assert.match(await p.locator('#subset-error').innerText(), /only 5,000 training images/);
    assert.equal(await p.locator('body').getAttribute('data-state'), 'ready', 'nothing started');

    await p.selectOption('#subset', '1000');
    await p.fill('#learningRate', '0.003');
    await p.click('#train');
    await waitForPoints(p, 20, 60_000);
    await p.click('#pause');
    await waitForState(p, 'paused', 60_000);
    const { first, last } = await p.locator('#loss-chart').evaluate((c) => ({ first: Number(c.dataset.firstLoss), last: Number(c.dataset.lastSmoothed) }));
    assert.ok(last < first, `the loss fell on the CPU fallback: ${first} -> ${last}`);
    await p.waitForFunction(() => /after \d+ steps/.test(document.getElementById('recon-caption').textContent));
    assert.ok((await canvasStats(p, '#recon-grid canvas.output')).every(isDrawn), 'reconstructions are drawn');
  } finally {
    await alone.browser.close();
  }
});

test('Train while WebGPU is still being timed: training starts at once on the CPU, and the line says WebGPU was not timed', { timeout: READY_MS }, async () => {
  await page.goto(LAB_URL);
  await waitForState(page, 'ready', READY_MS);
  const info = page.locator('#backend-info');
  // WebGPU's module is fetched and both backends timed after the page is ready: seconds here.
  assert.equal(await info.getAttribute('data-timing'), 'running');
  assert.match(await info.innerText(), /^Backend: CPU \(WebAssembly\), for now: WebGPU .* is being timed against it in the background/);
  await page.click('#train');
  await waitForState(page, 'training', READY_MS);
  await waitForPoints(page, 5, RUN_MS);
  assert.equal(await info.getAttribute('data-timing'), 'stopped');
  assert.equal(await page.locator('#backend').inputValue(), 'cpu');
  assert.match(await info.innerText(), /^Backend: CPU \(WebAssembly\)\. WebGPU .* was not timed against the CPU: training began before the timing ended\. WebGPU is one click away/);
  await page.click('#pause');
  await waitForState(page, 'paused', 60_000);
});

testNoProblems(problems);
