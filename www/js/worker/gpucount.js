// Counts what a WebGPU training step costs the host: compute dispatches, queue submits and
// buffer read-backs, and the time the worker spends waiting on the GPU. On a real GPU each
// dispatch and submit costs the host tens of microseconds and each read-back a round trip (in
// Firefox a 100 ms completion poll), so these counts decide WebGPU's speed on people's machines
// more than any timing on a machine without a GPU can. burn submits its work from inside the
// wasm, so the counts are taken where every call must pass: the prototypes of the compute pass
// encoder, the queue and the buffer, wrapped once before the first device is made.
export const gpuWork = { dispatches: 0, submits: 0, readbacks: 0, waitMs: 0 };

// Waits can overlap (two buffers mapped at once): the wait is the time at least one is pending.
let pending = 0;
let waitingSince = 0;

function waitOn(promise) {
  if (pending++ === 0) waitingSince = performance.now();
  const done = () => {
    if (--pending === 0) gpuWork.waitMs += performance.now() - waitingSince;
  };
  promise.then(done, done);
  return promise;
}

function wrap(proto, name, counter, waits) {
  const original = proto?.[name];
  if (!original || original.counted) return;
  proto[name] = function (...args) {
    gpuWork[counter] += 1;
    const result = original.apply(this, args);
    return waits ? waitOn(result) : result;
  };
  proto[name].counted = true;
}

export function countGpuWork() {
  const { GPUComputePassEncoder, GPUQueue, GPUBuffer } = globalThis;
  wrap(GPUComputePassEncoder?.prototype, 'dispatchWorkgroups', 'dispatches', false);
  wrap(GPUComputePassEncoder?.prototype, 'dispatchWorkgroupsIndirect', 'dispatches', false);
  wrap(GPUQueue?.prototype, 'submit', 'submits', false);
  // The worker awaits nothing else of the GPU in a step: a step records and submits its work,
  // and the call's losses come back in one read-back that the call awaits.
  wrap(GPUBuffer?.prototype, 'mapAsync', 'readbacks', true);
}

/** The counters now, to subtract from the counters after a call: that call's own work. */
export function gpuWorkSince(before) {
  return {
    dispatches: gpuWork.dispatches - before.dispatches,
    submits: gpuWork.submits - before.submits,
    readbacks: gpuWork.readbacks - before.readbacks,
    waitMs: gpuWork.waitMs - before.waitMs,
  };
}
