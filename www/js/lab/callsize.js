// How many training steps one call into a lab asks for. Each call costs a message to the worker
// and back and, on WebGPU, its writes, a read-back of its losses and two queue submits (1-2 ms
// of the worker's time in Chromium here), whatever it holds, and the GPU waits through all of it
// between calls; so more steps a call cost less each; fewer keep Pause and the drawing pad quick.
// The page aims each call at CALL_MS from its smoothed cost of a step; the benchmark asks the same
// way by default.

export const CALL_MS = 200;
// The most steps a call asks for, by backend. A fast step reaches the cap, so it bounds a call's
// fixed cost per step; short calls keep the page smooth (a Pause waits for the call). On the CPU a
// call's fixed cost is a message or two, and 16 steps is plenty; a GPU whose step takes a
// fraction of a millisecond needs 64 to make its calls long against theirs.
export const MAX_STEPS_PER_CALL = { cpu: 16, webgpu: 64 };
// Past 16, a call asks for a multiple of 8 steps: the WebGPU step records each new number of
// steps a call once, so a pace that wavers around 40 steps should not make a new one each call.
const FINE_UP_TO = 16;
const COARSE = 8;

// A call keeps the number of steps of the call before while that still makes a call within a
// quarter of its aim: the smoothed pace drifts by a step or two as a run warms up, and the WebGPU
// step launches each new number afresh and records it, which costs its host 5-15 ms once.
const KEEP_WITHIN = 1.25;

// The fewest steps a call holds, by backend, unless that makes it longer than LONGEST_CALL_MS.
// A WebGPU call's fixed cost (above; on a software adapter its threads also take the worker's
// core) over the 2 or 3 steps of 200 ms that a slow adapter runs (a conv step takes about 85 ms
// on SwiftShader) is 0.3-1 ms of host time a step; over 6 it is a third of that. A Pause waits
// at most LONGEST_CALL_MS for the call.
export const FEWEST_STEPS_PER_CALL = { cpu: 1, webgpu: 6 };
export const LONGEST_CALL_MS = 500;

/**
 * Steps for a call of about `callMs` on `backend` ('cpu' or 'webgpu'), at `msPerStep` a step: 1
 * to the backend's MAX_STEPS_PER_CALL, and its FEWEST_STEPS_PER_CALL where those take at most
 * `longestMs`; `previous` (the last call's number, if any) while it makes a call within
 * KEEP_WITHIN of that aim.
 */
export function stepsPerCall(msPerStep, backend, { callMs = CALL_MS, longestMs = LONGEST_CALL_MS, previous = null } = {}) {
  const most = MAX_STEPS_PER_CALL[backend];
  if (!most) throw new Error(`no call size for backend ${backend}`);
  const pace = Math.max(msPerStep, 1e-3);
  const aimMs = Math.max(callMs, Math.min(FEWEST_STEPS_PER_CALL[backend] * pace, longestMs));
  if (previous !== null && previous >= 1 && previous <= most) {
    const ms = previous * pace;
    if (ms >= aimMs / KEEP_WITHIN && ms <= aimMs * KEEP_WITHIN) return previous;
  }
  const steps = Math.max(1, Math.min(most, Math.round(aimMs / pace)));
  return steps > FINE_UP_TO ? steps - (steps % COARSE) : steps;
}

/** The smoothed cost of a step after a call that took `ms` a step (`previous`: null at first). */
export function smoothMsPerStep(previous, ms) {
  return previous === null ? ms : 0.7 * previous + 0.3 * ms;
}
