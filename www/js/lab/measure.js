// Times a short training run on each backend, so that the page trains on whichever is faster on
// this machine rather than guessing from the adapter's name: the small dense model can train
// faster on the CPU than on a real GPU, and a software adapter is 20-100x slower.
//
// Each backend runs in a throwaway worker of its own, not in the page's: a first WebGPU step
// compiles every kernel, which takes seconds on a slow adapter, and a step cannot be abandoned
// half-way; ending the worker can. Ending it also frees everything the probe made, the GPU
// device and its memory included, at once. The cost is that the page's WebGPU Lab compiles its
// kernels again (the browser's shader cache, where it has one, shortens that). The page's own
// thread only sends messages and waits.
import { stepsPerCall } from './callsize.js';
import { LabWorker } from './labworker.js';
import { LabPool, poolSize } from './pool.js';

// A backend whose wasm module (fetched here first, for WebGPU's: 3.5 MB) has not loaded after this
// long loses; the time it takes is the connection's, not the backend's, so it is not timed.
const LOAD_LIMIT_MS = 60_000;
// A backend whose first (warm-up) step, which compiles its kernels, has not finished this long
// after its module loaded loses.
// (SwiftShader's first conv step took 1.8-2.0 s on this project's machine when it was idle.)
const WARMUP_LIMIT_MS = 3000;
// Then as many steps as fit this long, a few per call (calls of about PROBE_CALL_MS, shorter than
// the page's, so that the window holds several), timed in the worker.
const TIMED_MS = 400;
const PROBE_CALL_MS = 100;

const ms = (n) => `${(n / 1000).toFixed(1)} s`;

class TooSlow extends Error {}

/** `promise`, or TooSlow once `deadline` (a performance.now() time) has passed. */
function before(promise, deadline, why) {
  // Once TooSlow has won, the worker is ended and `promise` fails too: nobody listens any more.
  promise.catch(() => {});
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TooSlow(why)), Math.max(0, deadline - performance.now()));
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Trains `settings`' model on `backend` from `chunks` (training data chunk bytes) in a worker of
 * its own (workers, for the CPU's pool). Resolves to { imagesPerSec, dispatchesPerStep, workers,
 * steps } or { why } when it lost, failed or `signal` stopped it; never rejects.
 */
async function timeBackend(backend, settings, chunks, signal) {
  const worker = new LabWorker({ name: `timing the ${backend} backend` });
  const stop = () => worker.terminate('the timing was stopped');
  signal.addEventListener('abort', stop);
  try {
    await before(worker.init(backend), performance.now() + LOAD_LIMIT_MS, `its wasm module had not loaded after ${ms(LOAD_LIMIT_MS)}`);
    const started = performance.now();
    const warmedBy = started + WARMUP_LIMIT_MS;
    const lab = await before(
      (async () => {
        // The CPU as the page would train on it: for the conv model a pool, one worker per core.
        const lab = backend === 'cpu' ? await LabPool.create(worker, backend, poolSize(settings)) : await worker.createLab(backend);
        for (const chunk of chunks) await lab.addData('train', chunk);
        // With the model's default code: what follows the code layer barely changes a step's cost.
        const { model, batchSize, learningRate, seed } = settings;
        await lab.reset({ model, batchSize, learningRate, seed });
        await lab.step(1); // compiles the kernels (WebGPU), tiers up the wasm (CPU): not timed
        return lab;
      })(),
      warmedBy,
      `its first step had not finished after ${ms(WARMUP_LIMIT_MS)}`,
    );
    let [steps, spent, dispatches, perCall] = [0, 0, 0, 1];
    const end = performance.now() + TIMED_MS;
    while (performance.now() < end) {
      // A stalled step (other work on a crowded machine) may use what the warm-up left of its
      // time limit, or the window's length past its end, whichever is longer; then it loses.
      const stepBy = Math.max(end + TIMED_MS, warmedBy);
      const losses = await before(lab.step(perCall), stepBy, `its steps had not finished after ${ms(stepBy - started)}`);
      steps += losses.length;
      spent += lab.lastMs;
      dispatches += lab.lastGpu.dispatches;
      // No call longer than PROBE_CALL_MS either: a slow adapter's calls of several steps would
      // outlast the window.
      perCall = stepsPerCall(Math.max(1, spent) / steps, backend, { callMs: PROBE_CALL_MS, longestMs: PROBE_CALL_MS, previous: perCall });
    }
    return {
      imagesPerSec: (steps * settings.batchSize * 1000) / spent,
      dispatchesPerStep: backend === 'webgpu' ? Math.round(dispatches / steps) : null,
      workers: lab.workers ?? 1,
      steps,
    };
  } catch (err) {
    return { why: err instanceof TooSlow ? err.message : `it failed: ${err instanceof Error ? err.message : err}` };
  } finally {
    signal.removeEventListener('abort', stop);
    worker.terminate('the backend measurement is over');
  }
}

/**
 * Times both backends, one after the other so that neither slows the other down, and picks the
 * one that trained more images a second. Resolves to { model, cpu, webgpu, chosen } where cpu and
 * webgpu are timeBackend's results and chosen is null when neither finished; or to null when
 * `signal` stopped it.
 */
export async function measureBackends(settings, chunks, signal) {
  const cpu = await timeBackend('cpu', settings, chunks, signal);
  if (signal.aborted) return null;
  const webgpu = await timeBackend('webgpu', settings, chunks, signal);
  if (signal.aborted) return null;
  const speed = (r) => r.imagesPerSec ?? 0;
  const chosen = speed(cpu) === 0 && speed(webgpu) === 0 ? null : speed(webgpu) > speed(cpu) ? 'webgpu' : 'cpu';
  return { model: settings.model, cpu, webgpu, chosen };
}
