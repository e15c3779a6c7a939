// How many training steps one call into a lab asks for. Each call costs a message to the worker
// and back and, on WebGPU, a read-back of its losses (two queue submits), whatever it holds, so
// more steps a call cost less each; fewer keep Pause and the drawing pad quick. The page aims each
// call at CALL_MS from its smoothed cost of a step; the benchmark asks the same way by default.

export const CALL_MS = 200;
export const MAX_STEPS_PER_CALL = 16;

/** Steps for a call of about `callMs`, at `msPerStep` a step: 1 to MAX_STEPS_PER_CALL. */
export function stepsPerCall(msPerStep, callMs = CALL_MS) {
  return Math.max(1, Math.min(MAX_STEPS_PER_CALL, Math.round(callMs / Math.max(msPerStep, 1e-3))));
}

/** The smoothed cost of a step after a call that took `ms` a step (`previous`: null at first). */
export function smoothMsPerStep(previous, ms) {
  return previous === null ? ms : 0.7 * previous + 0.3 * ms;
}
