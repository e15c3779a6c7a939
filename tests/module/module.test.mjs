// The page's wasm modules at their boundary, on the real WebGPU path: the two modules the page
// ships (www/pkg with WebGPU, www/pkg-cpu with the CPU alone), loaded in headless Chromium and
// called from JavaScript as the page's worker calls them. WebGPU comes from SwiftShader where
// there is no GPU.
//
// These test the module itself, one call at a time; the page tests around them test it as a
// person uses it. The crate's Rust tests run in the browser too (tests/wasm/, in a test build of
// their own) and reach beneath this boundary (the CPU step against burn's autodiff, a model file
// read back by src/model_file.rs itself); these test the build the page ships.
//
//   LAB_URL=http://127.0.0.1:8000/ node --test tests/module/module.test.mjs
//
// LAB_SEED replays one set of mangled model files; the seed in use is printed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { chunk } from '../../tools/export-web-data.mjs';
import { mangle } from '../support/mangle.mjs';
import { browserForFile, openBlankPage, testNoProblems } from '../support/pagekit.mjs';
import { seedFrom, splitmix } from '../support/random.mjs';

const IMAGE_PIXELS = 28 * 28;
const IMAGES = 256;
const RUN_MS = 600_000;
const SEED = seedFrom('LAB_SEED');
const MANGLED_FILES = 24;

/** `n` real MNIST test digits from `start` as one page chunk, as tools/export-web-data.mjs cuts them. */
function mnistChunk(n, start = 0) {
  const read = (file) => gunzipSync(readFileSync(new URL(`../../data/mnist/${file}`, import.meta.url)));
  // The bodies after the IDX headers: 16 bytes for images, 8 for labels.
  return chunk(read('t10k-images-idx3-ubyte.gz').subarray(16), read('t10k-labels-idx1-ubyte.gz').subarray(8), start, n);
}

// Runs in the page: loads both modules and leaves what the tests share on `window.t`: `m`, the
// WebGPU module, and `cpu`, the CPU module.
async function setUp({ chunkBase64, otherChunkBase64, images }) {
  const load = async (pkg) => {
    const m = await import(new URL(`${pkg}/autoencoder_lab.js`, location.href).href);
    await m.default();
    return m;
  };
  const [m, cpu] = [await load('pkg'), await load('pkg-cpu')];
  const bytes = (base64) => Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const chunk = bytes(chunkBase64);
  // As many other digits: a training set of the same size with other images.
  const t = { m, cpu, chunk, otherChunk: bytes(otherChunkBase64) };
  t.steps = async (lab, n) => {
    const losses = [];
    while (losses.length < n) losses.push(...(await lab.step(n - losses.length)));
    return losses;
  };
  t.labWithData = async () => {
    const lab = await m.Lab.create('webgpu');
    const added = [lab.addData('train', chunk), lab.addData('test', chunk)];
    if (added[0] !== images || added[1] !== images) throw new Error(`addData took ${added} images of ${images}`);
    return lab;
  };
  /** Losses of the first `n` steps of `model` on `backend` (in `module`), seed 3. */
  t.firstLosses = async (backend, model, n, module = m) => {
    const lab = await module.Lab.create(backend);
    lab.addData('train', chunk);
    lab.reset(model, 32, 1e-3, 3, 0);
    const losses = await t.steps(lab, n);
    lab.free();
    return losses;
  };
  /** The message `call` fails with, or null when it does not fail. */
  t.failure = async (call) => {
    try {
      await call();
      return null;
    } catch (err) {
      return err instanceof Error ? err.message : `not an Error: ${String(err)}`;
    }
  };
  window.t = t;
}

let page;
const problems = browserForFile(async (opened) => {
  page = opened.page;
  await openBlankPage(page);
  await page.evaluate(setUp, {
    chunkBase64: mnistChunk(IMAGES).toString('base64'),
    otherChunkBase64: mnistChunk(IMAGES, IMAGES).toString('base64'),
    images: IMAGES,
  });
});

/** A failure message that says what went wrong, not that the module trapped (a Rust panic). */
function assertCleanFailure(message, what) {
  assert.ok(message !== null, `${what} was accepted`);
  assert.doesNotMatch(message, /unreachable|RuntimeError|panicked/, `${what} panicked instead of failing: ${message}`);
}

for (const model of ['dense', 'conv']) {
  test(`the ${model} model trains on WebGPU: ten steps lower the loss and the test MSE`, { timeout: RUN_MS }, async () => {
    const r = await page.evaluate(async (model) => {
      const lab = await t.labWithData();
      lab.reset(model, 32, 1e-3, 1, 0);
      const named = lab.model;
      const untrained = (await lab.evaluate()).testMse;
      const losses = await t.steps(lab, 10);
      const evaluation = await lab.evaluate();
      const r = { named, untrained, losses, steps: lab.steps, mse: evaluation.testMse, dead: evaluation.deadCodeUnits, deadAlone: await lab.deadCodeUnits() };
      lab.free();
      return r;
    }, model);
    assert.equal(r.named, model);
    assert.equal(r.steps, 10);
    assert.equal(r.losses.length, 10);
    const first = (r.losses[0] + r.losses[1]) / 2;
    const last = (r.losses[8] + r.losses[9]) / 2;
    assert.ok(last < first, `losses ${r.losses}`);
    assert.ok(Number.isFinite(r.mse) && r.mse < r.untrained, `test MSE ${r.untrained} untrained, ${r.mse} after 10 steps`);
    // The same pass's codes give the count the encoder alone gives.
    assert.equal(r.dead, r.deadAlone);
  });
}

test('a step cut over two CPU Labs is the step taken whole, and leaves both the same to the bit', { timeout: RUN_MS }, async () => {
  for (const model of ['dense', 'conv']) {
    const r = await page.evaluate(async (model) => {
      // In the CPU module, as the page's worker pool runs it.
      const whole = await t.firstLosses('cpu', model, 4, t.cpu);
      const labs = [];
      for (let i = 0; i < 2; i++) {
        const lab = await t.cpu.Lab.create('cpu');
        lab.addData('train', t.chunk);
        lab.reset(model, 32, 1e-3, 3, 0);
        labs.push(lab);
      }
      const r = { whole, parts: [], noPartYet: await t.failure(() => labs[0].applyShares()), handedOnce: [] };
      for (let step = 0; step < whole.length; step++) {
        const shares = [];
        for (const [part, lab] of labs.entries()) {
          const share = await lab.shareGradients(part, 2);
          shares.push({ loss: share.loss, gradients: share.takeGradients() });
          r.handedOnce.push(share.takeGradients().length === 0);
          share.free();
        }
        if (step === 0) {
          // Part 1 has not come in to Lab 0 yet: refused, and nothing changes.
          r.partMissing = await t.failure(() => labs[0].applyShares());
          r.stepsAfterRefusal = labs[0].steps;
        }
        labs[0].addShare(1, 2, shares[1].loss, shares[1].gradients);
        labs[1].addShare(0, 2, shares[0].loss, shares[0].gradients);
        r.parts.push([labs[0].applyShares(), labs[1].applyShares()]);
      }
      r.steps = labs.map((lab) => lab.steps);
      r.otherLength = await t.failure(() => labs[0].addShare(1, 2, 0, new Float32Array(3)));
      labs.forEach((lab) => lab.free());
      return r;
    }, model);
    assertCleanFailure(r.noPartYet, `${model}: a step with no part computed`);
    assertCleanFailure(r.partMissing, `${model}: a step with part 1 missing`);
    assert.equal(r.stepsAfterRefusal, 0, `${model}: a refused step changed the model`);
    assert.ok(r.handedOnce.every(Boolean), `${model}: a gradient was handed over twice`);
    for (const [step, [a, b]] of r.parts.entries()) {
      assert.ok(Object.is(a, b), `${model} step ${step}: the two copies differ: ${a} and ${b}`);
      const expected = r.whole[step];
      assert.ok(Math.abs(a - expected) <= 1e-4 * expected, `${model} step ${step}: whole ${expected}, in two parts ${a}`);
    }
    assert.deepEqual(r.steps, [4, 4]);
    assertCleanFailure(r.otherLength, `${model}: a gradient of another length`);
  }
});

test('both modules and both backends train the same model on the same seed', { timeout: RUN_MS }, async () => {
  for (const model of ['dense', 'conv']) {
    const { cpu, cpuInFull, gpu } = await page.evaluate(
      async (model) => ({
        cpu: await t.firstLosses('cpu', model, 6, t.cpu),
        cpuInFull: await t.firstLosses('cpu', model, 6, t.m),
        gpu: await t.firstLosses('webgpu', model, 6),
      }),
      model,
    );
    // The same CPU training step (src/cpu_step), built twice: the CPU module and the WebGPU
    // module's CPU backend agree to the bit, so a model moved between them trains on as it would
    // have. Against WebGPU (the hand-written GPU step's kernels) this checks both hand-written steps.
    assert.deepEqual(cpuInFull, cpu, `${model}: the CPU module and the WebGPU module's CPU backend`);
    for (const [step, c] of cpu.entries()) {
      // Sums run in another order on the GPU: equal up to float rounding, not bit for bit.
      assert.ok(Math.abs(c - gpu[step]) <= 1e-3 * Math.abs(c), `${model} step ${step}: cpu ${cpu} webgpu ${gpu}`);
    }
  }
});

test('training images replaced under a model train it on both backends alike', { timeout: RUN_MS }, async () => {
  // The WebGPU step holds its own copy of the training images on the GPU: clearing them and
  // adding as many others must reach it, as the CPU step reads them afresh each step.
  const r = await page.evaluate(async () => {
    const run = async (module, backend) => {
      const lab = await module.Lab.create(backend);
      lab.addData('train', t.chunk);
      lab.reset('dense', 32, 1e-3, 3, 0);
      const before = await t.steps(lab, 4);
      lab.clearData();
      lab.addData('train', t.otherChunk);
      const after = await t.steps(lab, 4);
      lab.free();
      return [...before, ...after];
    };
    return { cpu: await run(t.cpu, 'cpu'), gpu: await run(t.m, 'webgpu') };
  });
  assert.equal(r.gpu.length, 8);
  for (const [step, c] of r.cpu.entries()) {
    assert.ok(Math.abs(c - r.gpu[step]) <= 1e-3 * Math.abs(c), `step ${step}: cpu ${r.cpu} webgpu ${r.gpu}`);
  }
});

test('the CPU module has no WebGPU, says so, and is a fraction of the WebGPU module', { timeout: RUN_MS }, async () => {
  const r = await page.evaluate(async () => {
    const size = async (pkg) => (await (await fetch(`${pkg}/autoencoder_lab_bg.wasm`)).arrayBuffer()).byteLength;
    return {
      refused: await t.failure(() => t.cpu.Lab.create('webgpu')),
      cpuBytes: await size('pkg-cpu'),
      fullBytes: await size('pkg'),
    };
  });
  assertCleanFailure(r.refused, 'a WebGPU Lab in the CPU module');
  assert.match(r.refused, /CPU-only module.*www\/pkg/);
  // 3.3 and 14.5 MB when measured: wgpu and cubecl are most of the WebGPU module.
  assert.ok(r.cpuBytes < r.fullBytes / 3, `the CPU module is ${r.cpuBytes} bytes, the WebGPU module ${r.fullBytes}`);
});

test('where navigator.gpu is missing, the WebGPU module says so by name rather than passing wgpu\'s error on', { timeout: RUN_MS }, async () => {
  const refused = await page.evaluate(async () => {
    // A second instance of the WebGPU module: the first keeps the device it opened.
    const fresh = await import(new URL('pkg/autoencoder_lab.js?without-gpu', location.href).href);
    await fresh.default();
    Object.defineProperty(navigator, 'gpu', { value: undefined, configurable: true });
    try {
      return await t.failure(() => fresh.Lab.create('webgpu'));
    } finally {
      delete navigator.gpu;
    }
  });
  assertCleanFailure(refused, 'a WebGPU Lab without navigator.gpu');
  assert.match(refused, /no WebGPU in the page where the model trains .*CPU backend still works/);
});

test('the GPU memory pool is reported on WebGPU only; the Rust heap count follows the data', { timeout: RUN_MS }, async () => {
  const r = await page.evaluate(async () => {
    const lab = await t.labWithData();
    lab.reset('dense', 32, 1e-3, 0, 0);
    await lab.step(2);
    const memory = lab.gpuMemory;
    const gpu = memory && { allocations: memory.allocations, inUse: memory.bytesInUse, reserved: memory.bytesReserved };
    lab.free();
    const cpu = await t.cpu.Lab.create('cpu');
    const cpuMemory = cpu.gpuMemory;
    const empty = t.cpu.heapBytes();
    cpu.addData('train', t.chunk);
    const loaded = t.cpu.heapBytes();
    cpu.clearData();
    const cleared = t.cpu.heapBytes();
    cpu.free();
    return { gpu, cpuMemory: cpuMemory ?? null, empty, loaded, cleared };
  });
  assert.ok(r.gpu, 'a pool report on WebGPU');
  assert.ok(r.gpu.allocations >= 1 && r.gpu.inUse > 0, JSON.stringify(r.gpu));
  assert.ok(r.gpu.reserved >= r.gpu.inUse, JSON.stringify(r.gpu));
  assert.equal(r.cpuMemory, null, 'no pool report on the CPU');
  // 256 images of 784 one-byte pixels come in with the chunk and go with clearData.
  assert.ok(r.loaded - r.empty >= IMAGES * IMAGE_PIXELS, `the heap grew ${r.loaded - r.empty} bytes with the data`);
  assert.ok(r.loaded - r.cleared >= IMAGES * IMAGE_PIXELS, `the heap shrank ${r.loaded - r.cleared} bytes as the data went`);
});

test('reconstruct gives 784 pixels in [0, 1] per image, encode a 64-number code', { timeout: RUN_MS }, async () => {
  const r = await page.evaluate(async () => {
    const lab = await t.labWithData();
    lab.reset('conv', 32, 1e-3, 0, 0);
    const pixels = lab.testPixels(0, 3);
    const out = await lab.reconstruct(pixels);
    const codes = await lab.encode(pixels);
    lab.free();
    return { pixels: pixels.length, out: out.length, inRange: out.every((v) => v >= 0 && v <= 1), codes: codes.length };
  });
  assert.deepEqual(r, { pixels: 3 * IMAGE_PIXELS, out: 3 * IMAGE_PIXELS, inRange: true, codes: 3 * 64 });
});

test('bad input is an error with a message, not a panic, and the model stays usable', { timeout: RUN_MS }, async () => {
  const r = await page.evaluate(async () => {
    const lab = await t.labWithData();
    const f = t.failure;
    const pixel = (v, n = 784) => new Float32Array(n).fill(v);
    const r = {
      'reconstruct with no model': await f(() => lab.reconstruct(pixel(0))),
      'an unknown model': await f(() => lab.reset('foo', 32, 1e-3, 0, 0)),
      'batch size 0': await f(() => lab.reset('dense', 0, 1e-3, 0, 0)),
      'a negative learning rate': await f(() => lab.reset('dense', 32, -1, 0, 0)),
    };
    lab.reset('dense', 32, 1e-3, 0, 0);
    Object.assign(r, {
      'pixels of no whole image': await f(() => lab.reconstruct(pixel(0.5, 100))),
      'no pixels': await f(() => lab.reconstruct(new Float32Array(0))),
      'pixels above 1': await f(() => lab.reconstruct(pixel(2))),
      'a chunk that is not one': await f(() => lab.addData('train', new TextEncoder().encode('not a chunk'))),
      'an unknown split': await f(() => lab.addData('validation', t.chunk)),
      'a blank drawing': await f(() => t.m.prepareDrawing(new Float32Array(100), 10, 10)),
      'a drawing of the wrong size': await f(() => t.m.prepareDrawing(new Float32Array(10).fill(1), 10, 10)),
    });
    // A failed call leaves the model usable.
    const after = (await lab.step(1)).length;
    lab.free();
    return { failures: r, after };
  });
  for (const [what, message] of Object.entries(r.failures)) assertCleanFailure(message, what);
  assert.equal(r.after, 1, 'a step after the failures');
});

test('a model file round-trips off the GPU, and the predictors read its codes', { timeout: RUN_MS }, async () => {
  const r = await page.evaluate(async () => {
    const lab = await t.labWithData();
    lab.reset('dense', 32, 1e-3, 0, 0);
    await lab.step(3);
    const pixels = lab.testPixels(0, 1);
    const before = await lab.reconstruct(pixels);
    // Saving reads the weights off the GPU, which must happen asynchronously in a browser.
    const bytes = await lab.save('{"steps": 3}');
    lab.reset('dense', 32, 1e-3, 7, 0);
    const r = { summary: lab.load(bytes, 'dense', 32, 1e-3, 0) };
    const after = await lab.reconstruct(pixels);
    r.diff = before.reduce((max, v, i) => Math.max(max, Math.abs(v - after[i])), 0);

    const report = await lab.fitPredictors(256, 5, 3);
    r.report = { train: report.trainCodes, test: report.testCodes, k: report.k, confusion: report.knnConfusion.reduce((a, b) => a + b, 0) };
    r.fresh = lab.predictorsFresh;
    const reading = await lab.read(pixels);
    r.reading = { reconstruction: reading.reconstruction.length, linearSum: reading.linear.reduce((a, b) => a + b, 0) };
    r.mapPoints = lab.mapPoints().length;
    r.decoded = (await lab.decodePoint(reading.x, reading.y)).length;
    r.nanPoint = await t.failure(() => lab.decodePoint(NaN, 0));
    r.path = (await lab.interpolate(0, 1, 4)).length;
    r.missingImage = await t.failure(() => lab.interpolate(0, 999, 4));
    lab.free();
    return r;
  });
  assert.equal(r.summary, '{"steps":3}');
  assert.ok(r.diff < 1e-5, `the loaded model reconstructs differently: ${r.diff}`);
  assert.deepEqual(r.report, { train: 256, test: 256, k: 5, confusion: 256 });
  assert.ok(r.fresh, 'the predictors are fresh');
  assert.equal(r.reading.reconstruction, IMAGE_PIXELS);
  assert.ok(Math.abs(r.reading.linearSum - 1) < 1e-4, `the linear probabilities sum to ${r.reading.linearSum}`);
  assert.equal(r.mapPoints, 2 * 256);
  assert.equal(r.decoded, IMAGE_PIXELS);
  assertCleanFailure(r.nanPoint, 'a map point at NaN');
  assert.equal(r.path, 4 * IMAGE_PIXELS);
  assertCleanFailure(r.missingImage, 'a test image that is not loaded');
});

test(`${MANGLED_FILES} mangled model files are refused with a message, not a panic, and the model stays as it was`, { timeout: RUN_MS }, async () => {
  console.log(`# mangled model files from seed ${SEED} (LAB_SEED=${SEED} replays them)`);
  // A conv model file, as the page saves one, in base64 to cross to Node and back.
  const whole = Buffer.from(
    await page.evaluate(async () => {
      const lab = await t.labWithData();
      lab.reset('conv', 32, 1e-3, 0, 0);
      await lab.step(2);
      t.conv = lab;
      const bytes = await lab.save('{}');
      let text = '';
      for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      return btoa(text);
    }),
    'base64',
  );
  const files = mangle(whole, MANGLED_FILES, splitmix(SEED));
  const r = await page.evaluate(
    async ({ mangled, original }) => {
      const lab = t.conv;
      const bytesOf = (base64) => Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const pixels = lab.testPixels(0, 2);
      const before = await lab.reconstruct(pixels);
      const failures = [];
      for (const base64 of mangled) failures.push(await t.failure(() => lab.load(bytesOf(base64), 'conv', 32, 1e-3, 0)));
      const after = await lab.reconstruct(pixels);
      const r = {
        failures,
        diff: before.reduce((max, v, i) => Math.max(max, Math.abs(v - after[i])), 0),
        steps: lab.steps,
        // The untouched file still loads: the refusals were about the mangling.
        original: await t.failure(() => lab.load(bytesOf(original), 'conv', 32, 1e-3, 0)),
      };
      lab.free();
      return r;
    },
    { mangled: files.map((f) => f.buffer.toString('base64')), original: whole.toString('base64') },
  );
  for (const [i, file] of files.entries()) {
    assertCleanFailure(r.failures[i], `${file.name} (${file.what}, ${file.buffer.length} bytes, LAB_SEED=${SEED})`);
  }
  assert.ok(r.diff < 1e-6, `a refused file changed the model: its reconstructions moved by ${r.diff}`);
  assert.equal(r.steps, 2, "a refused file changed the model's training");
  assert.equal(r.original, null, 'the untouched file was refused');
});

test("the code's activation is set, reported and kept in the model file", { timeout: RUN_MS }, async () => {
  const r = await page.evaluate(async () => {
    const lab = await t.labWithData();
    const r = { none: lab.codeActivation ?? null };
    lab.reset('dense', 32, 1e-3, 0, 0);
    r.dense = lab.codeActivation;
    lab.reset('conv', 32, 1e-3, 0, 0, '');
    r.conv = lab.codeActivation;
    r.linearConv = await t.failure(() => lab.reset('conv', 32, 1e-3, 0, 0, 'linear'));
    r.tanh = await t.failure(() => lab.reset('dense', 32, 1e-3, 0, 0, 'tanh'));
    // A refused reset keeps the model it had.
    r.kept = lab.model;

    lab.reset('dense', 32, 1e-3, 0, 0, 'relu');
    r.relu = lab.codeActivation;
    await lab.step(2);
    const codes = await lab.encode(lab.testPixels(0, 8));
    r.negative = codes.filter((c) => c < 0).length;
    r.dead = await lab.deadCodeUnits();
    const bytes = await lab.save('{}');
    lab.reset('dense', 32, 1e-3, 0, 0);
    lab.load(bytes, 'dense', 32, 1e-3, 0);
    r.loaded = lab.codeActivation;
    r.predictorsDead = (await lab.fitPredictors(256, 5, 1)).deadCodeUnits;
    lab.free();
    return r;
  });
  assert.equal(r.none, null, 'no model yet');
  assert.equal(r.dense, 'linear');
  assert.equal(r.conv, 'relu');
  assertCleanFailure(r.linearConv, 'a linear conv code');
  assertCleanFailure(r.tanh, 'an unknown activation');
  assert.equal(r.kept, 'conv');
  assert.equal(r.relu, 'relu');
  assert.equal(r.negative, 0, 'a ReLU code went negative');
  assert.ok(r.dead <= 3, `${r.dead} dead code units of 3`);
  assert.equal(r.loaded, 'relu', "the file's code activation was lost");
  assert.equal(r.predictorsDead, r.dead, 'the predictors count the dead units as deadCodeUnits does');
});

testNoProblems(problems);
