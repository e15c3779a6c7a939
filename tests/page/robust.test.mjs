// The page holding up, in headless Chromium: a browser without WebGPU trains on the CPU fallback,
// training in the worker leaves the main thread free (no long task over 100 ms in 30 s), memory
// stays flat, a lost GPU device keeps the weights and continues, a hidden tab trains on or pauses
// by choice, any control can be clicked at any moment, and bad values are refused.
//
// LAB_LONG=1 runs the memory checks at the length (1,000 then 2,000 steps on WebGPU as
// well as on the CPU; about 25 minutes on SwiftShader); without it the WebGPU check compares 64
// with 128 steps, the CPU one 1,000 with 2,000. LAB_SEED replays the random clicks; the seed in use
// is printed.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { LAB_URL, assertServerUp } from '../support/browser.mjs';
import { ARTIFACTS, canvasStats, drawOnPad, isDrawn, openPage, setSettings as setSettingsOf, testNoProblems, waitForState } from '../support/pagekit.mjs';
import { seedFrom, shuffled, splitmix } from '../support/random.mjs';

const LONG = process.env.LAB_LONG === '1';
const SEED = seedFrom('LAB_SEED');
const READY_MS = 180_000;
const RUN_MS = LONG ? 3_600_000 : 600_000;
const CPU_STEPS = 1000;
// Past the first epochs (32 steps of 1,000 images each) and their test-set passes, which size the
// GPU pool and warm the device's caches.
const GPU_STEPS = LONG ? 1000 : 64;
const LONG_TASK_LIMIT_MS = 100;
const WATCH_MS = 30_000;
const FLAT = 0.05; // memory after 2n steps within 5% of memory after n
// Epochs for the runs that must still be training when a test looks: 100 epochs of 10,000 images
// is 31,300 steps, minutes on any machine (10 epochs ended within a 30 s watch on a fast one).
const MANY_EPOCHS = '100';

// What the tests measured, written to artifacts/robust.json at the end.
const measured = {};

let browser;
let page;
let cdp; // a DevTools session on the page, attached to its workers too
const workerSessions = [];
const problems = [];

before(async () => {
  await assertServerUp(LAB_URL);
  ({ browser, page } = await openPage(problems));
  // Every main-thread task over 50 ms, from the first script on.
  await page.addInitScript(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
  cdp = await browser.context.newCDPSession(page);
  cdp.on('Target.attachedToTarget', ({ sessionId, targetInfo }) => {
    if (targetInfo.type === 'worker') workerSessions.push(sessionId);
  });
  // The workers that time both backends at start come and go: those left are the training
  // workers (one, or on the CPU a pool of one per core).
  cdp.on('Target.detachedFromTarget', ({ sessionId }) => {
    if (workerSessions.includes(sessionId)) workerSessions.splice(workerSessions.indexOf(sessionId), 1);
  });
  cdp.on('Target.receivedMessageFromTarget', ({ message }) => {
    const reply = JSON.parse(message);
    workerReplies.get(reply.id)?.(reply);
    workerReplies.delete(reply.id);
  });
  await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
});

after(async () => {
  await browser?.close();
  await mkdir(ARTIFACTS, { recursive: true });
  await writeFile(join(ARTIFACTS, 'robust.json'), JSON.stringify(measured, null, 2));
});

// --- reading the page -------------------------------------------------------------------------

const state = () => page.locator('body').getAttribute('data-state');
const statusText = () => page.locator('#status-message').innerText();
const chartPoints = () => page.locator('#loss-chart').evaluate((c) => Number(c.dataset.points));

async function waitForPoints(n, timeout = RUN_MS) {
  await page.waitForFunction((k) => Number(document.getElementById('loss-chart').dataset.points) >= k, n, {
    timeout,
    polling: 250,
  });
}

const setSettings = (fields) => setSettingsOf(page, fields);

async function pause() {
  await page.click('#pause');
  await waitForState(page, 'paused', 60_000);
  await loopStopped();
}

/** 'paused' shows at once; the call in flight still finishes. The memory line is refreshed once
 * the loop has stopped, for the step it stopped at. */
async function loopStopped() {
  await page.waitForFunction(
    () => document.getElementById('memory').dataset.steps === document.getElementById('loss-chart').dataset.points,
    null,
    { timeout: 60_000, polling: 250 },
  );
}

let nextWorkerCall = 1;
const workerReplies = new Map();

/** Sends a DevTools command to one of the page's training workers (by default the last started). */
function workerCommand(method, params = {}, sessionId = workerSessions.at(-1)) {
  assert.ok(sessionId, 'the page started a worker');
  const id = nextWorkerCall++;
  return new Promise((resolve) => {
    workerReplies.set(id, resolve);
    cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params }) });
  });
}

/**
 * Memory after a garbage collection: the page's JS heap, the training workers' JS heaps (summed
 * over a CPU pool's workers), the lead worker's Rust heap, the GPU pool.
 */
async function memory() {
  const sessions = [...workerSessions];
  // Twice: what one collection frees can leave more for the next (weak references, finalizers).
  for (let i = 0; i < 2; i++) {
    await cdp.send('HeapProfiler.collectGarbage');
    for (const session of sessions) await workerCommand('HeapProfiler.collectGarbage', {}, session);
    await page.waitForTimeout(200);
  }
  const main = await cdp.send('Runtime.getHeapUsage');
  let workerHeap = 0;
  for (const session of sessions) workerHeap += (await workerCommand('Runtime.getHeapUsage', {}, session)).result.usedSize;
  const d = await page.locator('#memory').evaluate((el) => ({ ...el.dataset }));
  return {
    steps: Number(d.steps),
    workers: sessions.length,
    mainHeap: main.usedSize,
    workerHeap,
    rustHeap: Number(d.heapBytes),
    wasmMemory: Number(d.wasmBytes),
    gpuInUse: d.gpuInUse ? Number(d.gpuInUse) : null,
    gpuReserved: d.gpuReserved ? Number(d.gpuReserved) : null,
  };
}

/** Trains to n steps and to 2n, pausing at each to measure; asserts every figure stayed flat. */
async function memoryStaysFlat(t, n) {
  await waitForPoints(n);
  await pause();
  const first = await memory();
  await page.click('#resume');
  await waitForPoints(2 * n);
  await pause();
  const second = await memory();
  t.diagnostic(`memory at ${first.steps} and ${second.steps} steps: ${JSON.stringify({ first, second })}`);
  measured[t.name] = { first, second };
  // The wasm memory is left out: it is a high-water mark, grown in steps by the allocator,
  // while rustHeap counts the bytes actually in use.
  assert.equal(second.workers, first.workers, 'the same training workers both times');
  for (const key of ['mainHeap', 'workerHeap', 'rustHeap', 'gpuInUse', 'gpuReserved']) {
    if (first[key] === null) continue;
    const growth = (second[key] - first[key]) / first[key];
    assert.ok(growth <= FLAT, `${key} grew ${(100 * growth).toFixed(1)}%: ${first[key]} -> ${second[key]}`);
  }
  return { first, second };
}

async function hideTab(hidden) {
  await page.evaluate((h) => {
    Object.defineProperty(document, 'hidden', { value: h, configurable: true });
    Object.defineProperty(document, 'visibilityState', { value: h ? 'hidden' : 'visible', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

// --- the tests ---------------------------------------------------------------------------------

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
    await p.waitForFunction(() => Number(document.getElementById('loss-chart').dataset.points) >= 20, null, { timeout: 60_000 });
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
  await waitForPoints(5);
  assert.equal(await info.getAttribute('data-timing'), 'stopped');
  assert.equal(await page.locator('#backend').inputValue(), 'cpu');
  assert.match(await info.innerText(), /^Backend: CPU \(WebAssembly\)\. WebGPU .* was not timed against the CPU: training began before the timing ended\. WebGPU is one click away/);
  await page.click('#pause');
  await waitForState(page, 'paused', 60_000);
});

test(`no main-thread task over ${LONG_TASK_LIMIT_MS} ms during ${WATCH_MS / 1000} s of training in the worker, drawing meanwhile`, { timeout: RUN_MS }, async (t) => {
  await page.goto(LAB_URL);
  await waitForState(page, 'ready', READY_MS);
  await setSettings({ model: 'conv', backend: 'cpu', subset: '10000', epochs: MANY_EPOCHS, learningRate: '0.001' });
  await page.click('#train');
  await waitForState(page, 'training', READY_MS);
  await waitForPoints(1);
  const t0 = await page.evaluate(() => performance.now());
  // Meanwhile a person draws, which reconstructs and redraws on every stroke.
  const frames = page.evaluate((ms) => new Promise((resolve) => {
    let n = 0;
    const end = performance.now() + ms;
    const tick = () => (performance.now() < end ? (n++, requestAnimationFrame(tick)) : resolve(n));
    requestAnimationFrame(tick);
  }), WATCH_MS);
  for (let i = 0; i < 3; i++) {
    await drawOnPad(page, [[0.3, 0.2], [0.7, 0.2], [0.45, 0.85]]);
    await page.click('#clear-pad');
  }
  const frameCount = await frames;
  const tasks = (await page.evaluate(() => window.longTasks)).filter((t) => t.start >= t0);
  const longest = Math.max(0, ...tasks.map((t) => t.duration));
  const steps = await chartPoints();
  t.diagnostic(`${WATCH_MS / 1000} s of training: ${steps} steps, ${frameCount} frames, ${tasks.length} tasks over 50 ms, longest ${longest.toFixed(0)} ms`);
  measured.longTasks = { seconds: WATCH_MS / 1000, steps, frames: frameCount, tasksOver50ms: tasks.length, longestMs: longest };
  assert.equal(await state(), 'training', 'still training');
  assert.ok(steps > 50, `it trained meanwhile: ${steps} steps`);
  assert.ok(longest <= LONG_TASK_LIMIT_MS, `long tasks: ${JSON.stringify(tasks)}`);
});

test(`memory stays flat on the CPU backend: ${CPU_STEPS} and ${2 * CPU_STEPS} steps`, { timeout: RUN_MS }, async (t) => {
  // A fresh run after the one above, which warmed up the JIT: from here on the page's heap grows
  // only by the loss curve it keeps (about 45 bytes a step). The conv model, which trains on a
  // pool of one worker per core: every worker's JS heap is counted.
  await page.click('#pause');
  await waitForState(page, 'paused', 60_000);
  await setSettings({ model: 'conv', backend: 'cpu', subset: '10000', epochs: MANY_EPOCHS, learningRate: '0.001' });
  await page.click('#train');
  await waitForState(page, 'training', READY_MS);
  const { first } = await memoryStaysFlat(t, CPU_STEPS);
  const cores = await page.evaluate(() => navigator.hardwareConcurrency || 1);
  assert.equal(first.workers, Math.min(cores, 4), 'one training worker per core');
});

test(`memory stays flat on WebGPU, GPU pool included: ${GPU_STEPS} and ${2 * GPU_STEPS} steps`, { timeout: RUN_MS }, async (t) => {
  await setSettings({ model: 'conv', backend: 'webgpu', subset: '1000', epochs: '200' });
  await page.click('#train');
  await waitForState(page, 'training', READY_MS);
  const { first } = await memoryStaysFlat(t, GPU_STEPS);
  assert.ok(first.gpuInUse > 0, 'the GPU pool is reported on WebGPU');
  assert.match(await page.locator('#progress-text').innerText(), /images\/s · [\d,]+ GPU dispatches a step/);
});

test('a lost GPU device keeps the last weights and training continues in a new worker', { timeout: RUN_MS }, async () => {
  // Paused on WebGPU: the weights were copied out at the pause.
  const kept = await chartPoints();
  await page.click('#resume');
  await waitForPoints(kept + 3);
  const workers = page.workers();
  assert.equal(workers.length, 1, 'one training worker');
  assert.ok((await workers[0].evaluate(() => self.labDevices.length)) >= 1, 'the worker holds a WebGPU device');
  await workers[0].evaluate(() => self.labDevices.forEach((d) => d.destroy()));

  await waitForState(page, 'lost', 60_000);
  await page.waitForFunction(() => !document.getElementById('retry').hidden, null, { timeout: 10_000 });
  const said = await statusText();
  assert.match(said, /GPU device was lost/);
  assert.match(said, new RegExp(`as of step ${kept} is kept`));
  assert.equal(await page.locator('#retry').innerText(), 'Continue');
  assert.ok(await page.locator('#train').isDisabled(), 'nothing else can be started meanwhile');

  await page.click('#retry');
  await waitForState(page, 'training', READY_MS);
  assert.match(await statusText(), new RegExp(`Training goes on on WebGPU from the weights of step ${kept}`));
  await waitForPoints(kept + 2);
  await pause();
  await page.waitForFunction(() => /after \d+ steps/.test(document.getElementById('recon-caption').textContent));
  assert.ok((await canvasStats(page, '#recon-grid canvas.output')).every(isDrawn), 'reconstructions are drawn after recovery');
  assert.equal(page.workers().length, 1, 'the lost worker is gone, one new one runs');
});

test('a hidden tab pauses when asked to and picks up again; otherwise it trains on, and Pause still answers at once', { timeout: RUN_MS }, async (t) => {
  await setSettings({ model: 'dense', backend: 'cpu', subset: '10000', epochs: MANY_EPOCHS });
  await page.click('#train');
  await waitForState(page, 'training', READY_MS);
  await waitForPoints(5);

  await page.uncheck('#train-hidden');
  await hideTab(true);
  await waitForState(page, 'paused', 30_000);
  await loopStopped();
  assert.match(await statusText(), /hidden/);
  const whilePaused = await chartPoints();
  await page.waitForTimeout(1000);
  assert.equal(await chartPoints(), whilePaused, 'no steps while paused in a hidden tab');
  await hideTab(false);
  await waitForState(page, 'training', 30_000);

  await page.check('#train-hidden');
  const before = await chartPoints();
  await hideTab(true);
  await page.waitForTimeout(3000);
  assert.equal(await state(), 'training');
  const hiddenSteps = (await chartPoints()) - before;
  assert.ok(hiddenSteps > 10, `it trained on while hidden: ${hiddenSteps} steps`);
  await hideTab(false);
  // One call at a time: Pause lands after the call in flight, not after a queue of them.
  const t0 = Date.now();
  await page.click('#pause');
  await waitForState(page, 'paused', 10_000);
  await loopStopped();
  const settled = await chartPoints();
  await page.waitForTimeout(1000);
  assert.equal(await chartPoints(), settled, 'nothing queued runs after the pause');
  t.diagnostic(`hidden 3 s: ${hiddenSteps} steps; Pause answered in ${Date.now() - t0} ms`);
  measured.hiddenTab = { hiddenSteps, pauseMs: Date.now() - t0 };
});

test('every control is safe to click at any moment', { timeout: RUN_MS }, async () => {
  console.log(`random clicks from seed ${SEED} (LAB_SEED=${SEED} replays them)`);
  const replay = `(replay with LAB_SEED=${SEED})`;
  await page.click('#resume');
  await waitForState(page, 'training', 30_000);
  const controls = ['#train', '#pause', '#resume', '#step', '#reset', '#fit-predictors', '#interpolate', '#compare', '#compare-stop', '#save-model', '#clear-pad'];
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
  assert.doesNotMatch(await statusText(), /Unexpected error/, `after the clicks ${clicked.join(' ')} ${replay}`);
  // Still works: a fresh run trains.
  if ((await state()) === 'training') await page.click('#pause');
  await waitForState(page, ['ready', 'paused'], RUN_MS);
  await setSettings({ model: 'conv', backend: 'cpu', subset: '1000', epochs: '1' });
  await page.click('#train');
  await page.waitForFunction(() => document.getElementById('status-message').textContent.startsWith('Done'), null, { timeout: RUN_MS });
  assert.equal(await chartPoints(), 32);
});

test('bad values in every field are refused with a message, and nothing starts', async () => {
  const cases = [
    ['#epochs', '0', /at least 1/],
    ['#epochs', '2.5', /whole number/],
    ['#batchSize', '0', /at least 1/],
    ['#batchSize', '2000', /at most the subset/],
    ['#learningRate', '-0.001', /above 0/],
    ['#learningRate', 'fast', /a number/],
    ['#learningRate', '5', /at most 1/],
    ['#seed', '-1', /at least 0/],
    ['#seed', '', /enter seed/],
  ];
  for (const [field, value, why] of cases) {
    await setSettings({ model: 'conv', backend: 'cpu' });
    await page.fill(field, value);
    await page.click('#train');
    const error = await page.locator(`${field}-error`).innerText();
    assert.match(error, why, `${field} = "${value}"`);
    assert.equal(await state(), 'ready', `${field} = "${value}" started nothing`);
  }
  await setSettings({ model: 'conv', backend: 'cpu' });
});

testNoProblems(problems);
