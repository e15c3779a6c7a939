// The page served before its WebGPU module is built, as `./build.sh serve` does on a cold machine
// (the CPU module first, WebGPU's behind the server): the page is ready on the CPU and says
// WebGPU's module is still being built; once the module is served, the page offers WebGPU and
// times it against the CPU, without a reload. The server's 404s for the module are faked here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LAB_URL } from '../support/browser.mjs';
import { openPage, waitForState } from '../support/pagekit.mjs';

const READY_MS = 180_000;
const MODULE = '**/pkg/autoencoder_lab_bg.wasm';

const seen = [];
// The 404s this test fakes, and the console's word for each, are expected; anything else is not.
const problems = {
  push: (p) => seen.push(p),
  get unexpected() {
    return seen.filter((p) => !/HTTP 404 for .*\/pkg\/autoencoder_lab_bg\.wasm|status of 404/.test(p));
  },
};

test('served before its WebGPU module is built, the page trains on the CPU, then offers WebGPU once the module is there', { timeout: READY_MS * 2 }, async () => {
  const { browser, page } = await openPage(problems);
  try {
    let built = false;
    let asked = 0;
    await page.route(MODULE, (route) => {
      asked++;
      return built ? route.continue() : route.fulfill({ status: 404, body: 'not built yet' });
    });
    await page.goto(LAB_URL);
    await waitForState(page, 'ready', READY_MS);
    const info = page.locator('#backend-info');
    assert.match(await info.innerText(), /this browser has WebGPU .*module is still being built .*as soon as the module is there/);
    assert.equal(await info.getAttribute('data-chosen-by'), 'building');
    assert.equal(await page.locator('#backend').inputValue(), 'cpu');
    assert.ok(await page.locator('#backend option[value="webgpu"]').isDisabled(), 'WebGPU is not offered yet');

    // The page looks again by itself (every 5 s): once the module is served, WebGPU is offered
    // and timed against the CPU, as at a start with both modules there.
    const looked = asked;
    built = true;
    await page.waitForFunction(() => !document.querySelector('#backend option[value="webgpu"]').disabled, null, { timeout: 30_000 });
    assert.ok(asked > looked, 'the page asked for the module again');
    await page.waitForFunction(() => document.getElementById('backend-info').dataset.timing === 'done', null, { timeout: READY_MS });
    assert.equal(await info.getAttribute('data-chosen-by'), 'measured');
    assert.match(await info.innerText(), /WebGPU/);
    assert.doesNotMatch(await info.innerText(), /still being built/);
  } finally {
    await browser.close();
  }
});

test('no console errors, page errors or failed requests but the faked 404s', () => {
  assert.deepEqual(problems.unexpected, []);
});
