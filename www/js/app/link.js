// A run in a link: the training form's settings and compare's code sizes, carried in the page's
// address (its query). Read once when the page opens, checked field by field with the form's own
// rules (settings.js), and written back as the form changes. No DOM here and no side effects: the
// page's start (main.js) applies what readLink returns, app/share.js writes what linkSearch
// returns. A link only fills the form: it names no file or address the page would fetch, and
// nothing in it starts a run.
import { parseSettings } from './settings.js';

// The address's name for each of the form's fields, short enough to read and edit by hand, in
// the form's order: a link's training images are checked before its batch size, which must fit them.
export const LINK_NAMES = {
  backend: 'backend',
  model: 'model',
  codeActivation: 'code',
  subset: 'images',
  epochs: 'epochs',
  batchSize: 'batch',
  learningRate: 'lr',
  seed: 'seed',
};

// Compare's code sizes: a link's name for each of the compare menu's values, in the menu's order.
export const COMPARE_NAMES = new Map([
  ['seed', '0'],
  ['relu', 'relu'],
  ['3', '3'],
  ['16', '16'],
  ['64', '64'],
]);
const COMPARE_BY_VALUE = new Map([...COMPARE_NAMES].map(([name, value]) => [value, name]));

// A bad value is quoted back in its message, cut to this many characters.
const QUOTE_CHARS = 24;

const quote = (text) => (text.length > QUOTE_CHARS ? `${text.slice(0, QUOTE_CHARS)}…` : text);

/** The message next to a field whose value in the link was refused: the form's own, and what stands instead. */
export const refusedText = (formMessage, text) => `${formMessage}: the link's "${quote(text)}" is not used, the default stands`;

/**
 * What the link in `search` (location.search) asks of the form whose values are `defaults`
 * (the fields as strings, views/ui.js's readFields). Each value the link names is checked as if
 * typed into the form with the defaults and the link's earlier values around it; a bad one is
 * left out, with the form's message for it, and its field keeps its default.
 * Returns { given: the fields the link names, fields: field -> accepted text, errors: field ->
 * message, compare: the compare menu's value or null, compareError }.
 */
export function readLink(search, defaults) {
  const params = new URLSearchParams(search);
  const given = [];
  const fields = {};
  const errors = {};
  for (const [field, name] of Object.entries(LINK_NAMES)) {
    if (!params.has(name)) continue;
    given.push(field);
    const text = params.get(name).trim();
    // The code is a choice of the dense model's: checked as such whatever the model, so that a
    // conv link cannot leave a value the menu does not offer.
    const model = field === 'codeActivation' ? 'dense' : fields.model ?? defaults.model;
    const { errors: found } = parseSettings({ ...defaults, ...fields, model, [field]: text });
    if (found[field]) errors[field] = refusedText(found[field], text);
    // A menu's value as the menu spells it ('1e4' images is the 10000 option).
    else fields[field] = field === 'subset' ? String(Number(text)) : text;
  }
  let compare = null;
  let compareError = null;
  if (params.has('compare')) {
    const text = params.get('compare').trim();
    if (COMPARE_NAMES.has(text)) compare = COMPARE_NAMES.get(text);
    else compareError = refusedText(`choose one of the code sizes offered (${[...COMPARE_NAMES.keys()].join(', ')})`, text);
  }
  return { given, fields, errors, compare, compareError };
}

/**
 * The query that describes the form's `fields` (strings, as readFields gives them) and compare's
 * menu value `compare`: every setting, in the form's order, so that a link means the same run
 * whatever a later build's defaults; the backend only where `backendByHand` (a backend the page
 * picked by timing is the page's to pick again); the code only for the dense model. Parameters
 * of the address that are not settings (?workers=) stay, after them.
 */
export function linkSearch(fields, { compare, backendByHand }, search = '') {
  const out = new URLSearchParams();
  for (const [field, name] of Object.entries(LINK_NAMES)) {
    if (field === 'backend' && !backendByHand) continue;
    if (field === 'codeActivation' && fields.model !== 'dense') continue;
    out.set(name, fields[field]);
  }
  out.set('compare', COMPARE_BY_VALUE.get(compare) ?? compare);
  const names = new Set([...Object.values(LINK_NAMES), 'compare']);
  for (const [name, value] of new URLSearchParams(search)) if (!names.has(name)) out.append(name, value);
  return `?${out}`;
}

/** "the dense model, a ReLU code, 10,000 images, …": the settings a link gave (readLink's fields), for the note that says so. */
export function describeGiven(fields) {
  const words = {
    backend: () => `${fields.backend === 'cpu' ? 'the CPU' : 'WebGPU'} backend`,
    model: () => `the ${fields.model === 'conv' ? 'convolutional' : 'dense'} model`,
    codeActivation: () => `${fields.codeActivation === 'relu' ? 'a ReLU' : 'a linear'} code`,
    subset: () => `${Number(fields.subset).toLocaleString('en-US')} images`,
    epochs: () => `${fields.epochs} epoch${Number(fields.epochs) === 1 ? '' : 's'}`,
    batchSize: () => `batch ${fields.batchSize}`,
    learningRate: () => `learning rate ${fields.learningRate}`,
    seed: () => `seed ${fields.seed}`,
  };
  return Object.keys(LINK_NAMES).filter((f) => Object.hasOwn(fields, f)).map((f) => words[f]()).join(', ');
}

