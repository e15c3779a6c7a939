// The page's backend and worker-pool choices in Node: which backend the page starts on and what
// decided it (www/js/app/backend.js's defaultBackend), and how many workers the CPU backend
// trains on (www/js/lab/pool.js's poolSize). Both read the address (?backend=, ?workers=) and
// poolSize the cores the browser reports, set here on globalThis as a browser has them. Also how
// many steps the training loop asks of a call (www/js/lab/callsize.js), which the benchmark asks
// the same way.
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { defaultBackend } from '../../www/js/app/backend.js';
import { app } from '../../www/js/app/state.js';
import { CALL_MS, FEWEST_STEPS_PER_CALL, LONGEST_CALL_MS, MAX_STEPS_PER_CALL, smoothMsPerStep, stepsPerCall } from '../../www/js/lab/callsize.js';
import { poolSize } from '../../www/js/lab/pool.js';

const setGlobal = (name, value) => Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
const address = (search) => setGlobal('location', { search });
const cores = (n) => setGlobal('navigator', { hardwareConcurrency: n });

const GPU = { available: true, software: false, name: 'a real GPU' };
const SOFTWARE = { available: true, software: true, name: 'SwiftShader' };
const NO_GPU = { available: false, why: 'this browser has no WebGPU' };

beforeEach(() => {
  address('');
  cores(8);
  Object.assign(app, { gpu: GPU, measured: null, timing: null });
});

test('without WebGPU the page trains on the CPU', () => {
  app.gpu = NO_GPU;
  assert.deepEqual(defaultBackend(), { backend: 'cpu', by: 'no-webgpu' });
});

test('while its module is still being built, WebGPU waits, even when the address asks for it', () => {
  app.gpu = { available: false, building: true, software: false, name: 'a real GPU', why: 'still being built' };
  assert.deepEqual(defaultBackend(), { backend: 'cpu', by: 'building' });
  address('?backend=webgpu');
  assert.deepEqual(defaultBackend(), { backend: 'cpu', by: 'building' });
});

test('the address picks the backend, WebGPU only where there is an adapter', () => {
  address('?backend=cpu');
  assert.deepEqual(defaultBackend(), { backend: 'cpu', by: 'address' });
  address('?backend=webgpu');
  assert.deepEqual(defaultBackend(), { backend: 'webgpu', by: 'address' });
  app.gpu = NO_GPU;
  assert.deepEqual(defaultBackend(), { backend: 'cpu', by: 'no-webgpu' });
  app.gpu = GPU;
  address('?backend=tpu');
  assert.deepEqual(defaultBackend(), { backend: 'cpu', by: 'timing' }, 'an unknown name is ignored');
});

test('until both backends are timed, the CPU, and the line says why', () => {
  app.timing = { running: true, stoppedBy: null };
  assert.deepEqual(defaultBackend(), { backend: 'cpu', by: 'timing' });
  app.timing = { running: false, stoppedBy: 'training began before the timing ended' };
  assert.deepEqual(defaultBackend(), { backend: 'cpu', by: 'stopped' });
});

test('once timed, the faster backend', () => {
  for (const chosen of ['cpu', 'webgpu']) {
    app.measured = { chosen, model: 'conv', cpu: {}, webgpu: {} };
    assert.deepEqual(defaultBackend(), { backend: chosen, by: 'measured' });
  }
  address('?backend=cpu');
  app.measured = { chosen: 'webgpu', model: 'conv', cpu: {}, webgpu: {} };
  assert.deepEqual(defaultBackend(), { backend: 'cpu', by: 'address' }, 'the address still wins');
});

test('when both timings failed: the CPU over a software adapter, a real GPU otherwise', () => {
  app.measured = { chosen: null, model: 'conv', cpu: { why: 'x' }, webgpu: { why: 'y' } };
  assert.deepEqual(defaultBackend(), { backend: 'webgpu', by: 'adapter' });
  app.gpu = SOFTWARE;
  assert.deepEqual(defaultBackend(), { backend: 'cpu', by: 'adapter' });
});

test('the dense model trains on one worker, whatever the cores', () => {
  for (const n of [1, 2, 8, 64]) {
    cores(n);
    assert.equal(poolSize({ model: 'dense', batchSize: 32 }), 1, `${n} cores`);
  }
});

test('the conv model trains on a worker per core, at most 4', () => {
  for (const [n, workers] of [[1, 1], [2, 2], [3, 3], [4, 4], [16, 4]]) {
    cores(n);
    assert.equal(poolSize({ model: 'conv', batchSize: 32 }), workers, `${n} cores`);
  }
  setGlobal('navigator', undefined);
  assert.equal(poolSize({ model: 'conv', batchSize: 32 }), 1, 'a browser that reports no cores');
});

test("each worker gets at least 8 of a batch's images", () => {
  for (const [batchSize, workers] of [[1, 1], [8, 1], [15, 1], [16, 2], [24, 3], [32, 4], [4096, 4]]) {
    assert.equal(poolSize({ model: 'conv', batchSize }), workers, `batch of ${batchSize}`);
  }
});

test('?workers=N in the address overrides both, up to 16', () => {
  address('?workers=3');
  assert.equal(poolSize({ model: 'dense', batchSize: 32 }), 3);
  address('?workers=40');
  assert.equal(poolSize({ model: 'conv', batchSize: 8 }), 16);
  for (const bad of ['0', '-2', '1.5', 'many']) {
    address(`?workers=${bad}`);
    assert.equal(poolSize({ model: 'conv', batchSize: 32 }), 4, `?workers=${bad} is ignored`);
  }
});

test('a call asks for about CALL_MS of steps, 1 to its backend\'s MAX_STEPS_PER_CALL, from the smoothed cost of a step', () => {
  assert.equal(stepsPerCall(CALL_MS / 9, 'webgpu'), 9);
  assert.equal(stepsPerCall(22, 'webgpu'), 9, 'a dense step on SwiftShader');
  assert.equal(stepsPerCall(77, 'cpu'), 3, 'a slow step');
  assert.equal(stepsPerCall(0.5, 'cpu'), MAX_STEPS_PER_CALL.cpu, 'a fast step is capped, so Pause stays quick');
  assert.equal(stepsPerCall(0, 'cpu'), 16);
  assert.equal(stepsPerCall(0.5, 'webgpu'), MAX_STEPS_PER_CALL.webgpu, "a fast GPU's calls are longer against their fixed cost");
  assert.equal(stepsPerCall(0, 'webgpu'), 64);
  assert.equal(stepsPerCall(CALL_MS / 16, 'webgpu'), 16, 'every number of steps up to 16');
  for (const [ms, steps] of [[CALL_MS / 17, 16], [CALL_MS / 23, 16], [CALL_MS / 24, 24], [CALL_MS / 41, 40], [CALL_MS / 63, 56]]) {
    assert.equal(stepsPerCall(ms, 'webgpu'), steps, `past 16 a multiple of 8 (${Math.round(CALL_MS / ms)} asked)`);
  }
  assert.equal(stepsPerCall(5000, 'cpu'), 1, 'a step slower than a call is still a step');
  assert.equal(stepsPerCall(10, 'cpu', { callMs: 100 }), 10, "the backend probe's shorter calls");
  assert.throws(() => stepsPerCall(10, 'tpu'), /no call size for backend tpu/);
  assert.equal(smoothMsPerStep(null, 30), 30, 'the first call sets the pace');
  assert.equal(smoothMsPerStep(30, 40), 33, 'later calls move it by 0.3 of the difference');
});

test('a call keeps the last call\'s number of steps while that is within a quarter of CALL_MS', () => {
  // A pace drifting from 18 to 16.7 ms a step would ask 11 then 12; the WebGPU step records
  // each new number, so the 11 stays.
  assert.equal(stepsPerCall(CALL_MS / 12, 'webgpu'), 12);
  assert.equal(stepsPerCall(CALL_MS / 12, 'webgpu', { previous: 11 }), 11);
  // 11 steps near the edges of the band (1.25 times the aim, either way) keep it; past them, not.
  assert.equal(stepsPerCall((CALL_MS * 1.24) / 11, 'webgpu', { previous: 11 }), 11);
  assert.equal(stepsPerCall((CALL_MS * 1.3) / 11, 'webgpu', { previous: 11 }), 8);
  assert.equal(stepsPerCall(CALL_MS / 11 / 1.24, 'webgpu', { previous: 11 }), 11);
  assert.equal(stepsPerCall(CALL_MS / 11 / 1.3, 'webgpu', { previous: 11 }), 14);
  // A pace that halves or doubles moves the call, and the caps still hold.
  assert.equal(stepsPerCall(CALL_MS / 20, 'webgpu', { previous: 10 }), 16);
  assert.equal(stepsPerCall(CALL_MS / 5, 'cpu', { previous: 10 }), 5);
  assert.equal(stepsPerCall(0.1, 'cpu', { previous: 64 }), 16, 'a number past the backend\'s cap is not kept');
  assert.equal(stepsPerCall(CALL_MS / 2.2, 'cpu', { previous: 2 }), 2);
  assert.equal(stepsPerCall(CALL_MS / 2.6, 'cpu', { previous: 2 }), 3, 'two steps would make a call over a fifth short');
});

test('a WebGPU call holds FEWEST_STEPS_PER_CALL steps while they take at most LONGEST_CALL_MS', () => {
  const fewest = FEWEST_STEPS_PER_CALL.webgpu;
  assert.equal(stepsPerCall(77, 'webgpu'), fewest, 'a conv step on SwiftShader: a call of 462 ms, not 3 steps of 231');
  assert.equal(stepsPerCall(LONGEST_CALL_MS / fewest, 'webgpu'), fewest, 'at the longest call');
  assert.equal(stepsPerCall(LONGEST_CALL_MS / 3 - 1, 'webgpu'), 3, 'past it the call is LONGEST_CALL_MS long');
  assert.equal(stepsPerCall(LONGEST_CALL_MS * 2, 'webgpu'), 1, 'a step longer than that is still a step');
  assert.equal(stepsPerCall(22, 'webgpu'), 9, 'steps that fill CALL_MS are not affected');
  assert.equal(stepsPerCall(77, 'webgpu', { previous: fewest }), fewest, 'the floor is kept from call to call');
  assert.equal(stepsPerCall(77, 'webgpu', { previous: 3 }), fewest, 'a call of 3 is not kept under the floor');
  assert.equal(stepsPerCall(77, 'webgpu', { callMs: 100, longestMs: 100 }), 1, "the backend probe's calls stay short");
  assert.equal(stepsPerCall(77, 'cpu'), 3, 'the CPU has no floor: a call costs it a message');
});
