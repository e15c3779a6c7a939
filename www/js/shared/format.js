// Numbers, errors and names as the page writes them, for the app's logic and the views alike:
// one spelling each, so that the status line, the facts and compare mode never disagree.
const number = new Intl.NumberFormat('en-US');

/** "12,345" */
export const formatNumber = (n) => number.format(n);

/** A loss or MSE: four decimals, or three significant digits below 0.01. */
export function formatLoss(v) {
  return v >= 0.01 ? v.toFixed(4) : v.toPrecision(3);
}

/** "1 min 5 s", "12 s": for time left. */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return '…';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** What went wrong, in words, whatever was thrown. */
export function message(err) {
  return err instanceof Error ? err.message : String(err);
}

export const BACKEND_NAMES = { webgpu: 'WebGPU', cpu: 'CPU (WebAssembly)' };

// The settings' short model names ('dense', 'conv') are the wasm's; the page writes them out.
const MODEL_NAMES = { dense: 'dense', conv: 'convolutional' };

/** 'convolutional' for 'conv'; any other name as it is. */
export const modelName = (model) => MODEL_NAMES[model] ?? model;
