// Measures one model's training speed as the page trains it (in the training worker, and on the
// CPU in a pool of workers), as the URL asks, and publishes the result on window.benchResult
// (read by tests/bench/bench.mjs). Times come from performance.now(), whose zero is the start of
// navigation, so ready_ms is "navigation to ready"; a step's time includes the messages to the
// worker and back, as in the page.
import { ChunkCache, chunksFor, fetchIndex } from '../data/data.js';
import { MAX_STEPS_PER_CALL, smoothMsPerStep, stepsPerCall } from '../lab/callsize.js';
import { LabWorker } from '../lab/labworker.js';
import { measureCores } from '../lab/cores.js';
import { LabPool, MAX_WORKERS, poolSize } from '../lab/pool.js';

const params = new URLSearchParams(location.search);

function intParam(name, fallback, min) {
  const text = params.get(name);
  const value = text === null ? fallback : Number(text);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number >= ${min}, got "${text}"`);
  return value;
}

async function gpuAdapterName() {
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) return 'none';
  const { vendor, architecture, description } = adapter.info ?? {};
  return [vendor, architecture, description].filter(Boolean).join(' ') || 'unnamed adapter';
}

// How many calls past its `warmup` steps the warm-up may go on, in 'page' mode, for the page to
// ask a number of steps a call it has asked before (see `train`).
const SETTLE_CALLS = 2;

/**
 * Runs training steps into the lab, `perCall` a call, or with `perCall` 'page' as many as the
 * page's training loop would ask (callsize.js, from `pace.msPerStep`, the smoothed cost of a step
 * so far, which this updates), until at least `count` are done. Calls are never cut short to land
 * on `count`: the WebGPU step runs a call of a number of steps it has not run before launched
 * afresh and then records it, once a training run for each number (gpu_step), and a last call cut
 * to a new number would charge that once-only cost to the few timed calls. `sizes` holds the
 * numbers of steps a call run so far, and with `settle` the run goes on (at most SETTLE_CALLS
 * calls) until the page asks one of them again: the warm-up's, so that the timed calls find the
 * pace settled. Returns the losses, the calls, and the WebGPU work the worker made for them
 * (gpucount.js: dispatches, submits, read-backs, the host's time less its waits on read-backs,
 * and those waits).
 */
async function train(lab, count, perCall, pace, sizes, settle = false) {
  const losses = [];
  const gpu = { calls: 0, dispatches: 0, submits: 0, readbacks: 0, hostMs: 0, waitMs: 0 };
  const ask = () => (perCall === 'page' ? (pace.msPerStep === null ? 1 : stepsPerCall(pace.msPerStep, lab.backend, { previous: pace.lastCall })) : perCall);
  let past = 0; // calls past `count`, to settle
  for (;;) {
    const asked = ask();
    if (losses.length >= count) {
      if (!settle || sizes.has(asked) || past === SETTLE_CALLS) break;
      past += 1;
    }
    const done = await lab.step(asked);
    pace.lastCall = asked;
    if (done.length === 0) throw new Error('the training set ran out before the benchmark was done');
    sizes.add(done.length);
    losses.push(...done);
    pace.msPerStep = smoothMsPerStep(pace.msPerStep, lab.lastMs / done.length);
    gpu.calls += 1;
    for (const key of ['dispatches', 'submits', 'readbacks', 'hostMs', 'waitMs']) gpu[key] += lab.lastGpu[key];
  }
  return { losses, gpu };
}

async function run() {
  const backend = params.get('backend') ?? 'webgpu';
  const model = params.get('model') ?? 'conv';
  const warmup = intParam('warmup', 5, 0);
  const steps = intParam('steps', 20, 1);
  const batch = intParam('batch', 32, 1);
  // A whole number of steps a call, or 'page': as many as the page would ask (callsize.js).
  const perCall = params.get('per_call') === 'page' ? 'page' : intParam('per_call', 1, 1);

  // ?workers=N sizes the CPU's pool (pool.js reads it); by default the page's choice.
  await measureCores(MAX_WORKERS);
  const workers = backend === 'cpu' ? poolSize({ model, batchSize: batch }) : 1;
  const adapter = backend === 'webgpu' ? await gpuAdapterName() : `wasm32 cpu (${workers} worker${workers === 1 ? '' : 's'})`;
  const worker = new LabWorker();
  await worker.init(backend);
  const lab = backend === 'cpu' ? await LabPool.create(worker, backend, workers) : await worker.createLab(backend);

  // Enough images that every step is a full batch inside the first epoch: the first step, the
  // warm-up and the timed steps, each run of whole calls overshooting by a call at most, and the
  // warm-up's calls to settle.
  const index = await fetchIndex();
  const available = index.train.reduce((n, e) => n + e.images, 0);
  const most = perCall === 'page' ? MAX_STEPS_PER_CALL[lab.backend] : perCall;
  const settling = perCall === 'page' ? SETTLE_CALLS * most : 0;
  const wanted = Math.min(available, (1 + warmup + steps + 2 * most + settling + 1) * batch);
  const entries = chunksFor(index.train, wanted);
  const chunks = new ChunkCache();
  await chunks.fetchAll(entries);
  for (const e of entries) await lab.addData('train', chunks.get(e.file));
  await lab.reset({ model, batchSize: batch, learningRate: 0.001, seed: 0 });
  const ready_ms = performance.now();

  let t = performance.now();
  const [firstLoss] = await lab.step(1);
  const first_step_ms = performance.now() - t;

  // The first step compiles the kernels: the pace starts after it, as the page's does.
  const pace = { msPerStep: null, lastCall: null };
  const sizes = new Set([1]); // the first step's call
  const warm = await train(lab, warmup, perCall, pace, sizes, perCall === 'page');
  t = performance.now();
  const { losses, gpu } = await train(lab, steps, perCall, pace, sizes);
  const timed_ms = performance.now() - t;
  const timed = losses.length;
  const onGpu = lab.backend === 'webgpu';
  worker.terminate('the benchmark is over');

  return {
    backend: lab.backend,
    adapter,
    model: lab.snap.model,
    parameters: lab.snap.parameterCount,
    batch,
    warmup,
    steps,
    // What ran: whole calls, so at least `warmup` and `steps`.
    warmup_steps: warm.losses.length,
    timed_steps: timed,
    per_call: perCall,
    steps_per_call: timed / gpu.calls,
    train_images: lab.snap.trainCount,
    ready_ms,
    first_step_ms,
    ms_per_step: timed_ms / timed,
    images_per_sec: (timed * batch) / (timed_ms / 1000),
    dispatches_per_step: onGpu ? gpu.dispatches / timed : null,
    submits_per_step: onGpu ? gpu.submits / timed : null,
    readbacks_per_call: onGpu ? gpu.readbacks / gpu.calls : null,
    // The worker's own time a step, less its waits on the GPU: what bounds the speed on any GPU.
    host_ms_per_step: onGpu ? gpu.hostMs / timed : null,
    // The same a call: a call's own cost (its writes, submits and read-back) plus its steps'.
    host_ms_per_call: onGpu ? gpu.hostMs / gpu.calls : null,
    // The worker's waits on read-backs a call: the GPU's time, and in Firefox its poll's
    // (worker/firefoxpoll.js).
    wait_ms_per_call: onGpu ? gpu.waitMs / gpu.calls : null,
    workers: onGpu ? null : lab.workers,
    first_loss: firstLoss,
    last_loss: losses.at(-1),
    losses: Array.from(losses),
  };
}

window.benchResult = await run().catch((err) => ({ error: err instanceof Error ? err.message : String(err) }));
document.getElementById('out').textContent = JSON.stringify(window.benchResult, null, 2);
