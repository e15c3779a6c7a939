// The backend choice: whether WebGPU is there and what it runs on, which backend the page picks
// by default (the faster of the two, timed once the page is ready) and says why, and starting the
// training worker and a Lab on a backend (falling back to the CPU when WebGPU will not start).
//
// The page is ready to train on the CPU before WebGPU is timed: the CPU's wasm module is 0.7 MB,
// WebGPU's 3.5 MB (build.sh), and the first step should not wait on the larger download. WebGPU
// is fetched and timed in the background while the page waits for the person, and the page moves
// to it if it is faster and nothing has been trained yet; training stops the timing.
import { coreTiming, reportedCores } from '../lab/cores.js';
import { chunksFor } from '../data/data.js';
import { LabWorker, WorkerGone } from '../lab/labworker.js';
import { measureBackends } from '../lab/measure.js';
import { LabPool, poolSize } from '../lab/pool.js';
import { BACKEND_NAMES, formatNumber, message, modelName } from '../shared/format.js';
import { webgpuAdvice } from './browsers.js';
import { app, chunks, page } from './state.js';

const ADAPTER_TIMEOUT_MS = 10000;
// WebGPU's module, which `./build.sh serve` builds behind the server after the CPU's: until it is
// there the page trains on the CPU, and it looks for the module again this often.
const WEBGPU_MODULE = new URL('../../pkg/autoencoder_lab_bg.wasm', import.meta.url);
const MODULE_LOOK_MS = 5000;

/** False only when the server says the WebGPU module is not there (yet); anything else is left to the worker's load to report. */
async function webgpuModuleServed() {
  try {
    const response = await fetch(WEBGPU_MODULE, { method: 'HEAD', cache: 'no-store' });
    return response.status !== 404;
  } catch {
    return true;
  }
}

/** Asks for an adapter the way the wasm will, to say which GPU (if any) trains the model. */
export async function probeWebGPU() {
  if (!navigator.gpu) {
    const why = window.isSecureContext
      ? 'this browser has no WebGPU'
      : 'WebGPU needs https or localhost, and this page is served over plain http';
    return { available: false, why };
  }
  try {
    const adapter = await Promise.race([
      navigator.gpu.requestAdapter(),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the adapter request did not answer')), ADAPTER_TIMEOUT_MS),
      ),
    ]);
    if (!adapter) return { available: false, why: 'WebGPU is there but offers no adapter (GPU or driver blocklisted?)' };
    const info = adapter.info ?? {};
    const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unnamed adapter';
    // SwiftShader is Chrome's CPU implementation of Vulkan: WebGPU works, but slowly.
    const software = !!info.isFallbackAdapter || /swiftshader/i.test(name);
    if (!(await webgpuModuleServed())) {
      return { available: false, building: true, software, name, why: 'its WebAssembly module (www/pkg) is still being built' };
    }
    return { available: true, software, name };
  } catch (err) {
    return { available: false, why: `WebGPU failed: ${message(err)}` };
  }
}

/**
 * While the WebGPU module is being built (app.gpu.building): looks for it every few seconds, and
 * once it is served, probes WebGPU again and calls `onBuilt()`.
 */
export function watchForWebGPUModule(onBuilt) {
  if (!app.gpu?.building || app.watchingModule) return;
  app.watchingModule = true;
  const look = async () => {
    if (!(await webgpuModuleServed())) return void setTimeout(look, MODULE_LOOK_MS);
    app.watchingModule = false;
    app.gpu = await probeWebGPU();
    await onBuilt();
  };
  setTimeout(look, MODULE_LOOK_MS);
}

/**
 * The backend the address asks for (?backend=cpu or ?backend=webgpu), if any: the address the
 * page was opened with, not the one it keeps in step with the form (app/share.js).
 */
function askedBackend() {
  const asked = new URLSearchParams(app.openedWith ?? globalThis.location?.search ?? '').get('backend');
  return asked === 'cpu' || asked === 'webgpu' ? asked : null;
}

/**
 * Where WebGPU has an adapter and the address asks for no backend: times a few steps of
 * `settings`' model on each backend (lab/measure.js, in workers of their own), in the background,
 * and calls `onTimed()` with app.measured set once both are timed. Timed once, for the model the
 * page starts with, not again when the model changes: by then the person may have picked a
 * backend by hand, which a new timing must not overrule, and the line says which model was timed.
 * The page going into training or compare mode stops the timing (app.timing.stop, by setMode):
 * it would slow the training, and the training would skew it.
 * Resolves once the timing (and onTimed) is over, however it ended; at once where none runs.
 */
export function timeBackends(settings, onTimed) {
  if (app.measured || app.timing || !app.gpu.available || askedBackend()) return Promise.resolve();
  const abort = new AbortController();
  const timing = {
    running: true,
    stoppedBy: null,
    stop(why) {
      if (!this.running) return;
      this.running = false;
      this.stoppedBy = why;
      abort.abort();
      showBackendInfo(app.labBackend);
    },
  };
  app.timing = timing;
  showBackendInfo();
  return (async () => {
    // Two batches of the subset's first images, which training fetches anyway.
    const entries = chunksFor(app.index.train, Math.min(settings.subset, 2 * settings.batchSize));
    await chunks.fetchAll(entries);
    if (!timing.running) return;
    const measured = await measureBackends(settings, entries.map((e) => chunks.get(e.file)), abort.signal);
    if (!timing.running || !measured) return;
    timing.running = false;
    app.measured = measured;
    await onTimed();
  })().catch((err) => timing.stop(`it failed: ${message(err)}`));
}

/** The backend the page starts on, and what decided it. */
export function defaultBackend() {
  const { gpu, measured, timing } = app;
  const asked = askedBackend();
  if (asked === 'cpu' || (asked === 'webgpu' && gpu.available)) return { backend: asked, by: 'address' };
  if (!gpu.available) return { backend: 'cpu', by: gpu.building ? 'building' : 'no-webgpu' };
  if (measured?.chosen) return { backend: measured.chosen, by: 'measured' };
  // Until WebGPU is timed (or when training stopped the timing), the CPU: its module is the
  // small one, and it is never 20-100x slower, as WebGPU is on a software adapter.
  if (!measured) return { backend: 'cpu', by: timing?.stoppedBy ? 'stopped' : 'timing' };
  // Both timings failed: a software adapter loses to the CPU by 20-100x, a real GPU is worth a try.
  return { backend: gpu.software ? 'cpu' : 'webgpu', by: 'adapter' };
}

/** Puts the default backend in the form; app.backendByPage remembers it, to tell a pick by hand. */
export function chooseDefaultBackend() {
  page.view.setBackendAvailable('webgpu', app.gpu.available, app.gpu.why ?? '');
  const { backend, by } = defaultBackend();
  app.backendByPage = backend;
  app.backendByHand = by === 'address';
  page.view.setField('backend', backend);
  showBackendInfo();
}

/** The model and batch size the CPU trains (or would): the running model's, else the form's. */
function cpuSettings() {
  return app.modelReady && app.applied ? app.applied : page.view.readFields();
}

/** Workers the CPU backend trains on: the running pool's, or the pool it would get. */
function cpuWorkers() {
  if (app.lab?.backend === 'cpu') return app.lab.workers ?? 1;
  return poolSize(cpuSettings());
}

/** "It trains on 2 workers, each step cut over them …", said wherever the CPU trains. */
function workersText(backend) {
  if (backend !== 'cpu') return '';
  const n = cpuWorkers();
  const cores = reportedCores();
  const timed = coreTiming();
  const reports = `this browser reports ${cores} core${cores === 1 ? '' : 's'}`;
  const usable = timed?.workers && timed.usable < cores ? `${reports}; ${timed.usable} were timed as usable` : reports;
  if (n > 1) return ` It trains on ${n} workers, each step cut over them (${usable}).`;
  if (cores > 1 && cpuSettings().model === 'dense') {
    return " It trains on one worker: the dense model's step is too small to gain from being cut over cores.";
  }
  return ' It trains on one worker (one thread).';
}

/** Says which backend trains (`running`, or the form's choice) and why. */
export function showBackendInfo(running = null) {
  const { gpu, measured } = app;
  const backend = running ?? page.view.readFields().backend;
  const chosen = defaultBackend();
  // For the page tests: what was measured (images/s, '' when not) and what it decided.
  const rate = (b) => (measured?.[b].imagesPerSec ? String(Math.round(measured[b].imagesPerSec)) : '');
  const workers = cpuWorkers();
  const figures = {
    chosen: chosen.backend,
    chosenBy: chosen.by,
    timing: !app.timing ? '' : app.timing.running ? 'running' : app.timing.stoppedBy ? 'stopped' : 'done',
    measuredCpu: rate('cpu'),
    measuredWebgpu: rate('webgpu'),
    cpuWorkers: String(workers),
    // The cores timed at start (cores.js), '' where the reported count was taken as it is.
    coresTimed: coreTiming()?.workers ? coreTiming().parallel.toFixed(2) : '',
  };
  const [text, kind] = backendText(backend, gpu, measured, chosen);
  page.view.setBackendInfo(text + workersText(backend), kind, figures);
}

/** What the backend line says, and whether it warns. */
function backendText(backend, gpu, measured, chosen) {
  if (gpu.building) {
    return [
      `Backend: ${BACKEND_NAMES.cpu}, for now: this browser has WebGPU (adapter: ${gpu.name}), but its module is still being ` +
        'built (./build.sh serve says when it is done). The page offers WebGPU as soon as the module is there.',
      'info',
    ];
  }
  if (!gpu.available) {
    return [
      `No WebGPU here: ${gpu.why}. For GPU training: ${webgpuAdvice(navigator.userAgent)}. ` +
        'Until then the model trains on the CPU backend (WebAssembly).',
      'warn',
    ];
  }
  if (chosen.by === 'measured') return [measuredText(backend, gpu, measured), backend === measured.chosen ? 'info' : 'warn'];
  const adapter = `${gpu.name}${gpu.software ? ', a software adapter (no GPU)' : ''}`;
  if (chosen.by === 'timing') {
    const text =
      backend === 'cpu'
        ? `Backend: ${BACKEND_NAMES.cpu}, for now: WebGPU (adapter: ${adapter}) is being timed against it in the background, ` +
          'and the page moves to the faster of the two unless training starts first.'
        : `Backend: WebGPU (adapter: ${adapter}), picked by hand while it is being timed against the CPU in the background.`;
    return [text, 'info'];
  }
  if (chosen.by === 'stopped') {
    const untimed = `WebGPU (adapter: ${adapter}) was not timed against the CPU: ${app.timing.stoppedBy}.`;
    const text =
      backend === 'cpu'
        ? `Backend: ${BACKEND_NAMES.cpu}. ${untimed} WebGPU is one click away in the Backend menu.`
        : `Backend: WebGPU, picked by hand. ${untimed}`;
    return [text, 'info'];
  }
  if (gpu.software) {
    return [
      `Backend: ${BACKEND_NAMES[backend]}. The WebGPU adapter is ${gpu.name}, a software adapter (no GPU): ` +
        (backend === 'webgpu'
          ? 'training on it will be slow; the CPU backend is faster here.'
          : 'WebGPU training would be slow, so the CPU backend is used; pick WebGPU to try it anyway.') +
        failedText(measured),
      'warn',
    ];
  }
  return [`Backend: ${BACKEND_NAMES[backend]}. WebGPU adapter: ${gpu.name}.${failedText(measured)}`, 'info'];
}

/** "CPU (WebAssembly), the faster on this machine: 1,480 images/s against WebGPU's 45 …" */
function measuredText(backend, gpu, measured) {
  const fast = measured.chosen;
  const slow = fast === 'cpu' ? 'webgpu' : 'cpu';
  const speed = (b) => {
    const { imagesPerSec, dispatchesPerStep } = measured[b];
    const dispatches = dispatchesPerStep ? ` (${formatNumber(dispatchesPerStep)} GPU dispatches a step)` : '';
    return `${formatNumber(Math.round(imagesPerSec))} images/s${dispatches}`;
  };
  const race =
    measured[slow].imagesPerSec === undefined
      ? `${speed(fast)}, while ${BACKEND_NAMES[slow]} lost: ${measured[slow].why}`
      : `${speed(fast)} against ${BACKEND_NAMES[slow]}'s ${speed(slow)}`;
  const faster = `the faster on this machine at training the ${modelName(measured.model)} model (timed at start)`;
  const adapter = `WebGPU adapter: ${gpu.name}${gpu.software ? ', a software adapter (no GPU)' : ''}.`;
  if (backend === fast) return `Backend: ${BACKEND_NAMES[fast]}, ${faster}: ${race}. ${adapter} ${BACKEND_NAMES[slow]} is one click away in the Backend menu.`;
  const why = measured.late ? 'kept: the model had changed by the time the timing ended' : 'picked by hand';
  return `Backend: ${BACKEND_NAMES[backend]}, ${why}. ${BACKEND_NAMES[fast]} was ${faster}: ${race}. ${adapter}`;
}

/** Why neither backend could be timed, when that was tried. */
function failedText(measured) {
  return measured ? ` (Timing both at start failed: the CPU: ${measured.cpu.why}; WebGPU: ${measured.webgpu.why}.)` : '';
}

/**
 * A new training worker with the wasm module for `backend` loaded (the CPU's small one, or
 * WebGPU's: worker.js); onGone(worker, why) if it dies.
 */
export async function startWorker(onGone, backend) {
  const worker = new LabWorker({ onGone: (why) => onGone(worker, why) });
  try {
    await worker.init(backend);
    return worker;
  } catch (err) {
    worker.terminate();
    const pkg = backend === 'webgpu' ? 'www/pkg' : 'www/pkg-cpu';
    throw new Error(
      `the training worker did not start: the WebAssembly package in ${pkg} did not load (${message(err)}); build it with ./build.sh build`,
    );
  }
}

/**
 * A Lab on `backend` in `worker`: on the CPU, a pool of workers led by `worker` (pool.js), sized
 * for `settings`' model and batch size. When WebGPU fails and `fallBack` names why, the CPU backend instead
 * (a page that cannot train is worse than one that trains slowly), said on the page.
 */
export async function createLab(worker, backend, settings, fallBack) {
  const labOn = (b) => (b === 'cpu' ? LabPool.create(worker, b, poolSize(settings)) : worker.createLab(b));
  try {
    return await labOn(backend);
  } catch (err) {
    if (err instanceof WorkerGone) throw err;
    if (!(fallBack && backend === 'webgpu')) throw new Error(`${BACKEND_NAMES[backend]} did not start: ${message(err)}`);
    app.gpu = { available: false, why: `${fallBack} (${message(err)})` };
    chooseDefaultBackend();
    return labOn('cpu');
  }
}
