// Times a short training run on each backend at start, so that the page trains on whichever is
// faster on this machine rather than guessing from the adapter's name: the small dense model
// can train faster on the CPU than on a real GPU, and a software adapter is 20-100x slower.
//
// Each backend runs in a throwaway worker of its own, not in the page's: a first WebGPU step
// compiles every kernel, which takes seconds on a slow adapter, and a step cannot be abandoned
// half-way; ending the worker can. Ending it also frees everything the probe made, the GPU
// device and its memory included, at once. The cost is that the page's WebGPU Lab compiles its
// kernels again (the browser's shader cache, where it has one, shortens that). The page's own
// thread only sends messages and waits.
import { LabWorker } from './labworker.js';
import { LabPool, poolSize } from './pool.js';

// A backend whose first (warm-up) step, which compiles its kernels, has not finished this long
// after its worker was asked to start loses: the page's start waits no longer than this.
// (SwiftShader's first conv step took 1.3-1.7 s on this project's machine when it was idle.)
const WARMUP_LIMIT_MS = 3000;
// Then as many steps as fit this long, a few per call, timed in the worker.
const TIMED_MS = 400;
const CALL_MS = 100;
const MAX_STEPS_PER_CALL = 16;

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
 * steps } or { why } when it lost or failed; never rejects.
 */
async function timeBackend(backend, settings, chunks) {
  const worker = new LabWorker({ name: `timing the ${backend} backend` });
  const started = performance.now();
  const warmedBy = started + WARMUP_LIMIT_MS;
  try {
    const lab = await before(
      (async () => {
        await worker.init();
        // The CPU as the page would train on it: for the conv model a pool, one worker per core.
        const lab = backend === 'cpu' ? await LabPool.create(worker, backend, poolSize(settings)) : await worker.createLab(backend);
        for (const chunk of chunks) await lab.addData('train', chunk);
        await lab.reset(settings.model, settings.batchSize, settings.learningRate, settings.seed, 0);
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
      dispatches += lab.lastDispatches;
      perCall = Math.max(1, Math.min(MAX_STEPS_PER_CALL, Math.round((CALL_MS * steps) / Math.max(1, spent))));
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
    worker.terminate('the backend measurement is over');
  }
}

/**
 * Times both backends, one after the other so that neither slows the other down, and picks the
 * one that trained more images a second. Resolves to { model, cpu, webgpu, chosen } where cpu and
 * webgpu are timeBackend's results and chosen is null when neither finished.
 */
export async function measureBackends(settings, chunks) {
  const cpu = await timeBackend('cpu', settings, chunks);
  const webgpu = await timeBackend('webgpu', settings, chunks);
  const speed = (r) => r.imagesPerSec ?? 0;
  const chosen = speed(cpu) === 0 && speed(webgpu) === 0 ? null : speed(webgpu) > speed(cpu) ? 'webgpu' : 'cpu';
  return { model: settings.model, cpu, webgpu, chosen };
}
