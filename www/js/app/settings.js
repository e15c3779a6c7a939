// Turns the controls' text into checked training settings, with a message per bad field.
import { SUBSET_SIZES } from '../shared/constants.js';

export const MODELS = ['dense', 'conv'];
export const BACKENDS = ['webgpu', 'cpu'];
// What follows the code layer. A choice for the dense model only: the conv model's code always
// has a ReLU (the wasm's Lab, src/web/, refuses a linear one), so its settings say 'relu'
// whatever the form says.
export const CODE_ACTIVATIONS = ['linear', 'relu'];

// Upper bounds keep a typo from asking for something the tab cannot do (a batch of 10^9 images).
const LIMITS = { epochs: 1000, batchSize: 4096, seed: 2 ** 32 - 1 };

function integer(text, name, min, max) {
  const t = String(text).trim();
  if (t === '') return { error: `enter ${name}` };
  if (!/^[+-]?\d+$/.test(t)) return { error: `${name} must be a whole number` };
  const v = Number(t);
  if (v < min) return { error: `${name} must be at least ${min}` };
  if (v > max) return { error: `${name} must be at most ${max.toLocaleString('en-US')}` };
  return { value: v };
}

function positiveNumber(text, name, max) {
  const t = String(text).trim();
  if (t === '') return { error: `enter ${name}` };
  const v = Number(t);
  if (!Number.isFinite(v)) return { error: `${name} must be a number, e.g. 0.001` };
  if (v <= 0) return { error: `${name} must be above 0` };
  if (v > max) return { error: `${name} must be at most ${max}` };
  return { value: v };
}

/**
 * raw: { backend, model, codeActivation, subset, epochs, batchSize, learningRate, seed } as strings
 * from the form;
 * trainImages: how many training images the server has (unknown until its index loads).
 * Returns { settings, errors }: settings is null when any field is bad; errors maps field -> message.
 */
export function parseSettings(raw, { trainImages = Infinity } = {}) {
  const errors = {};
  const settings = {};
  const take = (field, result) => {
    if (result.error) errors[field] = result.error;
    else settings[field] = result.value;
  };
  take('backend', BACKENDS.includes(raw.backend) ? { value: raw.backend } : { error: 'choose WebGPU or CPU' });
  take('model', MODELS.includes(raw.model) ? { value: raw.model } : { error: 'choose dense or conv' });
  take(
    'codeActivation',
    raw.model === 'conv'
      ? { value: 'relu' }
      : CODE_ACTIVATIONS.includes(raw.codeActivation)
        ? { value: raw.codeActivation }
        : { error: 'choose a linear or a ReLU code' },
  );
  take(
    'subset',
    SUBSET_SIZES.includes(Number(raw.subset)) ? { value: Number(raw.subset) } : { error: 'choose a subset' },
  );
  take('epochs', integer(raw.epochs, 'epochs', 1, LIMITS.epochs));
  take('batchSize', integer(raw.batchSize, 'batch size', 1, LIMITS.batchSize));
  take('learningRate', positiveNumber(raw.learningRate, 'learning rate', 1));
  take('seed', integer(raw.seed, 'seed', 0, LIMITS.seed));
  if (settings.subset > trainImages) {
    errors.subset = `this server has only ${trainImages.toLocaleString('en-US')} training images: choose a smaller subset`;
  }
  if (settings.batchSize && settings.subset && settings.batchSize > settings.subset) {
    errors.batchSize = `batch size must be at most the subset (${settings.subset.toLocaleString('en-US')})`;
  }
  return { settings: Object.keys(errors).length ? null : settings, errors };
}

/** Whether two settings need a fresh model (everything but epochs does). */
export function sameModelSettings(a, b) {
  return (
    !!a && !!b &&
    a.backend === b.backend &&
    a.model === b.model &&
    a.codeActivation === b.codeActivation &&
    a.subset === b.subset &&
    a.batchSize === b.batchSize &&
    a.learningRate === b.learningRate &&
    a.seed === b.seed
  );
}
