// Long training runs in headless Chromium: training in the worker leaves the main thread free
// (no task over 100 ms in 30 s, while a person draws), and memory stays flat, on the CPU backend
// and on WebGPU, GPU pool included. The long-task run comes first: it also warms up the JIT for the
// memory checks that follow it.
//
// LAB_LONG=1 runs the memory checks at the length (1,000 then 2,000 steps on WebGPU as
// well as on the CPU; about 25 minutes on SwiftShader); without it the WebGPU check compares 64
// with 128 steps, the CPU one 1,000 with 2,000. The figures go to tests/artifacts/long-run.json.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LAB_URL } from '../support/browser.mjs';
import {
  ARTIFACTS,
  MANY_EPOCHS,
  browserForFile,
  chartPoints,
  cpuPoolSize,
  drawOnPad,
  pause,
  setSettings,
  testNoProblems,
  waitForPoints,
  waitForState,
} from '../support/pagekit.mjs';

const LONG = process.env.LAB_LONG === '1';
const READY_MS = 180_000;
const RUN_MS = LONG ? 3_600_000 : 600_000;
const CPU_STEPS = 1000;
// Past the first epochs (32 steps of 1,000 images each) and their test-set passes, which size the
// GPU pool and warm the device's caches.
const GPU_STEPS = LONG ? 1000 : 64;
// What a page that trains or draws on its main thread would show: the thread blocked for a good
// part of the watch (Total Blocking Time: each task's time past 50 ms, added up), or one long
// stall. A machine busy with other work stretches tasks too, but briefly: two test suites side by
// side on 2 cores (a load of 6) gave 15 tasks over 50 ms, the longest 148 ms, 1.7% of 30 s
// blocked; a quiet machine none over 50 ms.
const BLOCKED_SHARE_LIMIT = 0.1;
const STALL_LIMIT_MS = 250;
const WATCH_MS = 30_000;
const FLAT = 0.05; // memory after 2n steps within 5% of memory after n

// What the tests measured, written to long-run.json at the end.
const measured = {};

let browser;
let page;
let cdp; // a DevTools session on the page, attached to its workers too
const workerSessions = [];
const problems = browserForFile(async (opened) => {
  ({ browser, page } = opened);
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
  await mkdir(ARTIFACTS, { recursive: true });
  await writeFile(join(ARTIFACTS, 'long-run.json'), JSON.stringify(measured, null, 2));
});

// --- reading the page and its workers ---------------------------------------------------------

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
  await waitForPoints(page, n, RUN_MS);
  await pause(page);
  const first = await memory();
  await page.click('#resume');
  await waitForPoints(page, 2 * n, RUN_MS);
  await pause(page);
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

// --- the tests ---------------------------------------------------------------------------------

test(`the main thread blocked under ${100 * BLOCKED_SHARE_LIMIT}% of the time and never ${STALL_LIMIT_MS} ms, during ${WATCH_MS / 1000} s of training in the worker, drawing meanwhile`, { timeout: RUN_MS }, async (t) => {
  await page.goto(LAB_URL);
  await waitForState(page, 'ready', READY_MS);
  await setSettings(page, { model: 'conv', backend: 'cpu', subset: '10000', epochs: MANY_EPOCHS, learningRate: '0.001' });
  await page.click('#train');
  await waitForState(page, 'training', READY_MS);
  await waitForPoints(page, 1, RUN_MS);
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
  const blockedMs = tasks.reduce((sum, t) => sum + Math.max(0, t.duration - 50), 0);
  const steps = await chartPoints(page);
  t.diagnostic(`${WATCH_MS / 1000} s of training: ${steps} steps, ${frameCount} frames, ${tasks.length} tasks over 50 ms, longest ${longest.toFixed(0)} ms, blocked ${blockedMs.toFixed(0)} ms`);
  measured.longTasks = { seconds: WATCH_MS / 1000, steps, frames: frameCount, tasksOver50ms: tasks.length, longestMs: longest, blockedMs };
  assert.equal(await page.locator('body').getAttribute('data-state'), 'training', 'still training');
  assert.ok(steps > 50, `it trained meanwhile: ${steps} steps`);
  assert.ok(longest <= STALL_LIMIT_MS, `a task of ${longest.toFixed(0)} ms: ${JSON.stringify(tasks)}`);
  assert.ok(blockedMs <= BLOCKED_SHARE_LIMIT * WATCH_MS, `blocked ${blockedMs.toFixed(0)} ms of ${WATCH_MS} ms: ${JSON.stringify(tasks)}`);
});

test(`memory stays flat on the CPU backend: ${CPU_STEPS} and ${2 * CPU_STEPS} steps`, { timeout: RUN_MS }, async (t) => {
  // A fresh run after the one above, which warmed up the JIT: from here on the page's heap grows
  // only by the loss curve it keeps (about 45 bytes a step). The conv model, which trains on a
  // pool of one worker per core: every worker's JS heap is counted.
  await page.click('#pause');
  await waitForState(page, 'paused', 60_000);
  await setSettings(page, { model: 'conv', backend: 'cpu', subset: '10000', epochs: MANY_EPOCHS, learningRate: '0.001' });
  await page.click('#train');
  await waitForState(page, 'training', READY_MS);
  const { first } = await memoryStaysFlat(t, CPU_STEPS);
  assert.equal(first.workers, await cpuPoolSize(page), 'one training worker per usable core');
});

test(`memory stays flat on WebGPU, GPU pool included: ${GPU_STEPS} and ${2 * GPU_STEPS} steps`, { timeout: RUN_MS }, async (t) => {
  await setSettings(page, { model: 'conv', backend: 'webgpu', subset: '1000', epochs: '200' });
  await page.click('#train');
  await waitForState(page, 'training', READY_MS);
  const { first } = await memoryStaysFlat(t, GPU_STEPS);
  assert.ok(first.gpuInUse > 0, 'the GPU pool is reported on WebGPU');
  assert.match(await page.locator('#progress-text').innerText(), /images\/s · [\d,]+ GPU dispatches a step/);
});

testNoProblems(problems);
