// Counts WebGPU compute dispatches. On a software adapter each one costs about a millisecond of
// CPU and on a real GPU tens of microseconds, so dispatches per training step decide WebGPU
// speed on people's machines more than any timing on a machine without a GPU can. burn submits
// its work from inside the wasm, so the count is taken where every dispatch must pass: the
// compute pass encoder's prototype, wrapped once before the first device is made.
export const gpuWork = { dispatches: 0 };

export function countDispatches() {
  const encoder = globalThis.GPUComputePassEncoder?.prototype;
  if (!encoder || encoder.dispatchWorkgroups.counted) return;
  for (const name of ['dispatchWorkgroups', 'dispatchWorkgroupsIndirect']) {
    const original = encoder[name];
    encoder[name] = function (...args) {
      gpuWork.dispatches += 1;
      return original.apply(this, args);
    };
    encoder[name].counted = true;
  }
}
