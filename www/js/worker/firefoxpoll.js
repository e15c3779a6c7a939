// Firefox hears that the GPU has finished work on a 100 ms timer (Mozilla bug 1870699, "Don't
// poll WebGPU from a timer"): a read-back (GPUBuffer.mapAsync) resolves at the timer's next tick,
// so a call that reads its losses back waits about 100 ms however little the GPU had to do, and
// one step a call caps training at 10 steps a second. Firefox also looks for finished work when
// a queue takes a submit; so, while a read-back is pending, this submits empty command buffers to
// the worker's devices, and the read-back resolves within a few milliseconds of the GPU finishing.
//
// The nudges come often at first and more rarely as a wait goes on (a tenth of the time waited so
// far apart, 2 ms at least), so that a long wait (a slow GPU, a call of many steps) is stretched by
// a tenth at most and costs a few dozen empty submits; past a second, Firefox's own timer is as
// quick, and the nudging stops. Other browsers hear of finished work at once: nothing is wrapped
// there. burn maps its buffers from inside the wasm, so the wrap is on GPUBuffer's prototype.

const FIRST_GAP_MS = 2;
const GAP_PER_MS_WAITED = 0.1;
const STOP_AFTER_MS = 1000;

const isFirefox = () => typeof navigator !== 'undefined' && /\bFirefox\//.test(navigator.userAgent);

/**
 * In Firefox, makes every read-back nudge `devices` (the worker's GPUDevices, a live array) until
 * it resolves. Call it before gpucount.js's countGpuWork, so that the nudges' submits are not
 * counted as the step's.
 */
export function pollSooner(devices) {
  const { GPUBuffer, GPUQueue } = globalThis;
  if (!isFirefox() || !GPUBuffer || !GPUQueue) return;
  const mapAsync = GPUBuffer.prototype.mapAsync;
  const submit = GPUQueue.prototype.submit;
  let pending = 0; // read-backs not yet resolved
  let since = 0; // when the oldest of them began
  let nudging = false;

  async function nudgeWhilePending() {
    nudging = true;
    for (;;) {
      const waited = performance.now() - since;
      await new Promise((resolve) => setTimeout(resolve, Math.max(FIRST_GAP_MS, waited * GAP_PER_MS_WAITED)));
      if (pending === 0 || performance.now() - since > STOP_AFTER_MS) break;
      // A lost device ignores what it is given (WebGPU raises no error on one), so no check.
      for (const device of devices) submit.call(device.queue, [device.createCommandEncoder().finish()]);
    }
    nudging = false;
  }

  GPUBuffer.prototype.mapAsync = function (...args) {
    const mapped = mapAsync.apply(this, args);
    if (pending++ === 0) since = performance.now();
    if (!nudging) nudgeWhilePending();
    const done = () => {
      pending -= 1;
    };
    mapped.then(done, done);
    return mapped;
  };
}
