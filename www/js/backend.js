// The backend choice: whether WebGPU is there and what it runs on, which backend the page picks
// by default and says why, and starting the training worker and a Lab on a backend (falling
// back to the CPU when WebGPU will not start).
import { LabWorker, WorkerGone } from './labworker.js';
import { app, message, view } from './state.js';

const ADAPTER_TIMEOUT_MS = 10000;

export const BACKEND_NAMES = { webgpu: 'WebGPU', cpu: 'CPU (WebAssembly)' };

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
    return { available: true, software, name };
  } catch (err) {
    return { available: false, why: `WebGPU failed: ${message(err)}` };
  }
}

/** WebGPU on a real GPU; otherwise the CPU backend, which beats a software GPU by 20-100x. */
export function chooseDefaultBackend() {
  const gpu = app.gpu;
  const asked = new URLSearchParams(location.search).get('backend');
  let backend = gpu.available && !gpu.software ? 'webgpu' : 'cpu';
  if (asked === 'cpu' || (asked === 'webgpu' && gpu.available)) backend = asked;
  view.setBackendAvailable('webgpu', gpu.available, gpu.why ?? '');
  view.setField('backend', backend);
  showBackendInfo();
}

/** Says which backend trains (`running`, or the form's choice) and why. */
export function showBackendInfo(running = null) {
  const gpu = app.gpu;
  const backend = running ?? view.readFields().backend;
  if (!gpu.available) {
    view.setBackendInfo(
      `No WebGPU here: ${gpu.why}. Use a recent Chrome or Edge, or turn WebGPU on in your browser's ` +
        'settings, for GPU training. Until then the model trains on the CPU backend (WebAssembly).',
      'warn',
    );
  } else if (gpu.software) {
    view.setBackendInfo(
      `Backend: ${BACKEND_NAMES[backend]}. The WebGPU adapter is ${gpu.name}, a software adapter (no GPU): ` +
        (backend === 'webgpu'
          ? 'training on it will be slow; the CPU backend is faster here.'
          : 'WebGPU training would be slow, so the CPU backend is used; pick WebGPU to try it anyway.'),
      'warn',
    );
  } else {
    view.setBackendInfo(`Backend: ${BACKEND_NAMES[backend]}. WebGPU adapter: ${gpu.name}.`);
  }
}

/** A new training worker with the wasm loaded; onGone(worker, why) if it dies. */
export async function startWorker(onGone) {
  const worker = new LabWorker({ onGone: (why) => onGone(worker, why) });
  try {
    await worker.init();
    return worker;
  } catch (err) {
    worker.terminate();
    throw new Error(
      `the training worker did not start: the WebAssembly package in www/pkg did not load (${message(err)}); build it with ./build.sh build`,
    );
  }
}

/**
 * A Lab on `backend` in `worker`. When WebGPU fails and `fallBack` names why, the CPU backend
 * instead (a page that cannot train is worse than one that trains slowly), said on the page.
 */
export async function createLab(worker, backend, fallBack) {
  try {
    return await worker.createLab(backend);
  } catch (err) {
    if (err instanceof WorkerGone) throw err;
    if (!(fallBack && backend === 'webgpu')) throw new Error(`${BACKEND_NAMES[backend]} did not start: ${message(err)}`);
    app.gpu = { available: false, why: `${fallBack} (${message(err)})` };
    chooseDefaultBackend();
    return worker.createLab('cpu');
  }
}
