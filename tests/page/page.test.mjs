// The page as a person uses it, in headless Chromium (WebGPU on SwiftShader, see browser.mjs):
// load, train the conv model, draw a digit, switch to dense, run a whole epoch, and no errors
// along the way. Needs a server for www/ (./build.sh serve); LAB_URL says where (default
// http://127.0.0.1:8000/). LAB_BACKEND picks the backend of the conv and dense runs: webgpu
// (default, the path the lab is for) or cpu.
//
// Time: on SwiftShader a batch of 32 takes about 2 s (dense) to 3.5 s (conv) and the first step
// of each model 30-70 s (kernel compilation), so those runs are a dozen steps each, at a learning
// rate (0.003) that leaves the starting plateau within them. The whole-epoch run (32 steps, then
// the test MSE over 1,000 images, 20-40 s on SwiftShader) goes on the CPU backend, which does it
// in a few seconds. About 4 minutes in all with WebGPU, under a minute with LAB_BACKEND=cpu.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { LAB_URL } from '../support/browser.mjs';
import {
  ARTIFACTS,
  browserForFile,
  canvasStats as canvasStatsOf,
  drawOnPad,
  isDrawn,
  setSettings as setSettingsOf,
  testNoProblems,
  waitForState as waitForStateOf,
  watchStart,
} from '../support/pagekit.mjs';

const BACKEND = process.env.LAB_BACKEND ?? 'webgpu';

// Generous: a cold first step on the software GPU compiles every kernel (30-70 s).
const READY_MS = 180_000;
const RUN_MS = 360_000;
const STEPS_BEFORE_PAUSE = 12;
// Both backends run tens of steps a second (the CPU 20-40; WebGPU's dense step about 50 on
// SwiftShader, several a call), so a 1,000-image epoch of 32 steps can end before Pause lands:
// an epoch of 313 leaves time to press it mid-epoch.
const PAUSED_SUBSET = '10000';
const PAUSED_EPOCH_STEPS = Math.ceil(Number(PAUSED_SUBSET) / 32);
const LEARNING_RATE = '0.003';

let page;
const problems = browserForFile((opened) => (page = opened.page));

// --- reading the page -------------------------------------------------------------------------

const state = () => page.locator('body').getAttribute('data-state');
const statusText = () => page.locator('#status-message').innerText();

const waitForState = (wanted, timeout) => waitForStateOf(page, wanted, timeout);

async function chartData() {
  return page.locator('#loss-chart').evaluate((c) => ({
    points: Number(c.dataset.points),
    testPoints: Number(c.dataset.testPoints),
    firstLoss: Number(c.dataset.firstLoss),
    lastSmoothed: Number(c.dataset.lastSmoothed),
  }));
}

const canvasStats = (selector) => canvasStatsOf(page, selector);

const setSettings = ({ backend = BACKEND, ...fields }) =>
  setSettingsOf(page, { backend, learningRate: LEARNING_RATE, ...fields });

/** Waits for `steps` points on the chart, presses Pause, waits until the page has paused. */
async function trainThenPause(steps) {
  await page.waitForFunction((n) => Number(document.getElementById('loss-chart').dataset.points) >= n, steps, {
    timeout: RUN_MS,
    polling: 250,
  });
  await page.click('#pause');
  await waitForState('paused', 60_000);
  // The batch in flight finishes, then the grid is redrawn from the paused model.
  await page.waitForFunction(
    () => {
      const points = document.getElementById('loss-chart').dataset.points;
      return document.getElementById('recon-caption').textContent.includes(`after ${points} steps`);
    },
    null,
    { timeout: 120_000, polling: 250 },
  );
}

const drawSeven = () =>
  drawOnPad(page, [
    [0.25, 0.22],
    [0.75, 0.22],
    [0.42, 0.85],
  ]);

// --- the tests, in the order a person would go ------------------------------------------------

test('the page loads, fetches the data and says which backend it uses', { timeout: READY_MS }, async () => {
  const start = await watchStart(page);
  await page.goto(LAB_URL);
  await waitForState('ready', READY_MS);
  // Ready to train on the CPU module alone (each worker of the pool asks for it): WebGPU's, five
  // times its size, is fetched after, to be timed.
  assert.deepEqual(await start.wasmBeforeReady(), ['/pkg-cpu/autoencoder_lab_bg.wasm'], 'the wasm fetched before the page was ready');
  const backendInfo = await page.locator('#backend-info').innerText();
  assert.match(backendInfo, /backend|WebGPU/i);
  // The originals row shows the 16 test digits; the row below, the untrained model's output.
  const originals = await canvasStats('#recon-grid canvas:not(.output)');
  assert.equal(originals.length, 16);
  assert.ok(originals.every(isDrawn), 'every original digit is drawn');
  assert.match(await page.locator('#recon-caption').innerText(), /untrained/);
});

test('the backend is picked by timing both once the page is ready, and the page says so with the figures', { timeout: READY_MS }, async (t) => {
  const info = page.locator('#backend-info');
  // The timing runs in the background: WebGPU's module is fetched, then both are timed.
  await page.waitForFunction(() => document.getElementById('backend-info').dataset.timing === 'done', null, { timeout: READY_MS });
  const said = await info.innerText();
  const { chosen, chosenBy, measuredCpu, measuredWebgpu } = await info.evaluate((el) => ({ ...el.dataset }));
  t.diagnostic(said);
  assert.equal(chosenBy, 'measured');
  // This machine's only WebGPU adapter is SwiftShader, 20-100x slower than the CPU backend.
  assert.equal(chosen, 'cpu');
  assert.equal(await page.locator('#backend').inputValue(), 'cpu');
  const figure = (n) => Number(n).toLocaleString('en-US');
  // A figure, not a speed limit: with other work on both cores it fell to 41 images/s here.
  assert.ok(Number(measuredCpu) > 0, `the CPU trains at ${measuredCpu} images/s`);
  const cpuSaid = `^Backend: CPU \\(WebAssembly\\), the faster on this machine at training the \\w+ model \\(timed at start\\): ${figure(measuredCpu)} images/s`;
  if (measuredWebgpu) {
    assert.ok(Number(measuredWebgpu) < Number(measuredCpu), `WebGPU ${measuredWebgpu} images/s, the CPU ${measuredCpu}`);
    assert.match(said, new RegExp(`${cpuSaid} against WebGPU's ${figure(measuredWebgpu)} images/s \\([\\d,]+ GPU dispatches a step\\)`));
  } else {
    // SwiftShader's first step (compiling every kernel) takes 1.3-1.7 s here, and its steps pass
    // the limit only when other work crowds this machine's two cores: then the line says why
    // WebGPU lost.
    assert.match(said, new RegExp(`${cpuSaid}, while WebGPU lost: its (first step|steps) had not finished after`));
  }
  assert.match(said, /WebGPU is one click away/);
});

test('an empty pad shows "draw a digit", not a blank reconstruction', async () => {
  await page.click('#clear-pad');
  await page.waitForFunction(() => document.getElementById('pad-output').dataset.empty === 'yes');
  const caption = page.locator('#pad-output-caption');
  assert.ok(await caption.isVisible(), 'the caption is shown over the empty tile');
  assert.match(await caption.innerText(), /draw a digit/i);
});

test('bad values are refused next to their fields', async () => {
  await page.fill('#batchSize', '0');
  await page.fill('#learningRate', '-1');
  await page.fill('#epochs', 'abc');
  await page.click('#train');
  assert.match(await page.locator('#batchSize-error').innerText(), /at least 1/);
  assert.match(await page.locator('#learningRate-error').innerText(), /above 0/);
  assert.match(await page.locator('#epochs-error').innerText(), /whole number/);
  assert.equal(await state(), 'ready', 'nothing started');
  await setSettings({ model: 'conv' });
  assert.equal(await page.locator('#batchSize-error').innerText(), '');
  assert.equal(await page.locator('#learningRate-error').innerText(), '');
});

test('clicking Train twice fast starts one run', { timeout: READY_MS }, async () => {
  await setSettings({ model: 'conv', subset: PAUSED_SUBSET, epochs: '1' });
  // body[data-runs]: how many presses of Train the page has taken up as a fresh run.
  const runs = () => page.evaluate(() => Number(document.body.dataset.runs ?? 0));
  const before = await runs();
  await page.evaluate(() => {
    const train = document.getElementById('train');
    train.click();
    train.click(); // lands while the first click is starting the run: must do nothing
  });
  assert.equal(await runs(), before + 1, 'two fast clicks start one run');
  // The first click made the page busy at once; a fast backend may finish before we look.
  await waitForState(['training', 'ready'], READY_MS);
  if ((await state()) === 'training') {
    assert.ok(await page.locator('#train').isDisabled(), 'Train is disabled while training');
    assert.ok(await page.locator('#pause').isEnabled(), 'Pause is enabled while training');
  }
  assert.deepEqual(problems, []);
});

test(`the conv model trains: the chart grows and the loss falls (${BACKEND})`, { timeout: RUN_MS }, async () => {
  await trainThenPause(STEPS_BEFORE_PAUSE);
  assert.ok(await page.locator('#resume').isEnabled(), 'Resume is enabled when paused');
  // Mid-epoch the dead code numbers are not counted yet: the code's size and activation only.
  assert.equal(await page.locator('#fact-latent').innerText(), '64 numbers (ReLU)');
  const chart = await chartData();
  assert.ok(chart.points >= STEPS_BEFORE_PAUSE && chart.points < PAUSED_EPOCH_STEPS, `one point per step: ${chart.points}`);
  const shown = Number(await page.locator('#latest-loss').getAttribute('data-value'));
  assert.equal(shown, chart.lastSmoothed, "the page shows the chart's latest smoothed loss");
  assert.ok(shown < chart.firstLoss, `loss fell: first ${chart.firstLoss}, last smoothed ${shown}`);
  assert.match(await page.locator('#progress-text').innerText(), new RegExp(`^Epoch 1 of 1 · batch \\d+ of ${PAUSED_EPOCH_STEPS}`));
  if (BACKEND === 'webgpu') {
    // The other backend than the one picked at start, a click away, and its dispatches shown.
    assert.match(await page.locator('#backend-info').innerText(), /^Backend: WebGPU, picked by hand\. CPU \(WebAssembly\) was the faster/);
    assert.match(await page.locator('#progress-text').innerText(), /images\/s · [\d,]+ GPU dispatches a step/);
  }

  const outputs = await canvasStats('#recon-grid canvas.output');
  assert.equal(outputs.length, 16);
  assert.ok(outputs.every(isDrawn), `every reconstruction is drawn: ${JSON.stringify(outputs[0])}`);
});

test('a digit drawn with the mouse is reconstructed', { timeout: 120_000 }, async () => {
  await drawSeven();
  await page.waitForFunction(() => document.getElementById('pad-output').dataset.empty === 'no', null, {
    timeout: 120_000,
  });
  const [input] = await canvasStats('#pad-input');
  const [output] = await canvasStats('#pad-output');
  assert.ok(isDrawn(input), 'the 28x28 input is drawn');
  assert.ok(isDrawn(output), 'the reconstruction is drawn');
  assert.ok(!(await page.locator('#pad-output-caption').isVisible()), 'no caption over a reconstruction');
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `page-conv-${BACKEND}.png`), fullPage: true });
});

test(`switching to dense trains a fresh model (${BACKEND})`, { timeout: RUN_MS }, async () => {
  await setSettings({ model: 'dense', subset: PAUSED_SUBSET, epochs: '1' });
  await page.click('#train');
  await waitForState('training', READY_MS);
  await trainThenPause(STEPS_BEFORE_PAUSE);
  assert.match(await page.locator('#fact-model').innerText(), /dense/);
  assert.equal(await page.locator('#fact-latent').innerText(), '3 numbers (linear)');
  const chart = await chartData();
  assert.ok(chart.points >= STEPS_BEFORE_PAUSE && chart.points < PAUSED_EPOCH_STEPS, `a fresh chart: ${chart.points}`);
  assert.equal(chart.testPoints, 0);
  assert.ok(chart.lastSmoothed < chart.firstLoss, `loss fell: first ${chart.firstLoss}, last ${chart.lastSmoothed}`);
  // The drawing's reconstruction follows the model it now shows. It is asked for again each
  // time the grid is redrawn and comes after it: until then the tile holds the fresh model's
  // reconstruction, a flat grey. The tile says which model made it (data-steps).
  await page.waitForFunction(
    (steps) => document.getElementById('pad-output').dataset.steps === String(steps),
    chart.points,
    { timeout: 60_000 },
  );
  const [output] = await canvasStats('#pad-output');
  assert.ok(isDrawn(output), `the drawing is reconstructed by the dense model: ${JSON.stringify(output)}, ${chart.points} steps`);
});

test('a whole epoch ends with a test MSE point (CPU backend)', { timeout: RUN_MS }, async () => {
  // 1,000 images at batch 32 is one 32-step epoch, then the test MSE over 1,000 test images.
  await setSettings({ model: 'conv', backend: 'cpu', subset: '1000', epochs: '1' });
  await page.click('#train');
  await waitForState(['training', 'ready'], READY_MS);
  await page.waitForFunction(() => document.getElementById('status-message').textContent.startsWith('Done'), null, {
    timeout: RUN_MS,
    polling: 250,
  });
  const chart = await chartData();
  assert.equal(chart.points, 32, 'one point per step of the epoch');
  assert.equal(chart.testPoints, 1, 'one test MSE point for the epoch');
  const testMse = Number(await page.locator('#latest-test').getAttribute('data-value'));
  assert.ok(testMse > 0 && testMse < chart.firstLoss, `test MSE ${testMse} is below the first loss ${chart.firstLoss}`);
  // The progress line is brought up to date only after Done is said, the model kept in this
  // browser and the memory line refreshed: until then it still shows the last training line.
  await page.waitForFunction(() => /1 epoch done/.test(document.getElementById('progress-text').textContent), null, {
    timeout: 30_000,
  });
  assert.match(await page.locator('#backend-info').innerText(), /Backend: CPU/);
  await page.waitForFunction(() => document.getElementById('recon-caption').textContent.includes('after 32 steps'));
  const outputs = await canvasStats('#recon-grid canvas.output');
  assert.ok(outputs.every(isDrawn), 'every reconstruction is drawn');
  await page.screenshot({ path: join(ARTIFACTS, 'page.png'), fullPage: true });
});

test('clearing the pad brings the message back', async () => {
  await page.click('#clear-pad');
  await page.waitForFunction(() => document.getElementById('pad-output').dataset.empty === 'yes');
  assert.match(await page.locator('#pad-output-caption').innerText(), /draw a digit/i);
  assert.match(await page.locator('#pad-input-caption').innerText(), /draw a digit/i);
});

testNoProblems(problems);
