// The page's controls, status line, facts and digit tiles: the only module that looks up these
// elements. The panels with views of their own (chart.js, draw.js, predict.js, latentmap.js,
// compare.js) each touch only their own elements. No training logic here.
import { GRID_DIGITS, IMAGE_PIXELS, IMAGE_SIDE } from '../shared/constants.js';
import { formatLoss, formatNumber } from '../shared/format.js';

/** The element with this id; a page without it is a broken page, said at once. */
export const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el;
};

export const FIELDS = ['backend', 'model', 'codeActivation', 'subset', 'epochs', 'batchSize', 'learningRate', 'seed'];
// Every control app/state.js enables by mode, by name -> element id.
const CONTROLS = {
  train: 'train',
  pause: 'pause',
  resume: 'resume',
  step: 'step',
  reset: 'reset',
  fitPredictors: 'fit-predictors',
  interpolate: 'interpolate',
  projection: 'map-projection',
  compare: 'compare',
  compareStop: 'compare-stop',
  saveModel: 'save-model',
  savePytorch: 'save-pytorch',
  loadModel: 'load-model',
};

export class View {
  constructor() {
    this.form = $('settings');
    this.fields = Object.fromEntries(FIELDS.map((f) => [f, $(f)]));
    this.controls = Object.fromEntries(Object.entries(CONTROLS).map(([name, id]) => [name, $(id)]));
    this.retryButton = $('retry');
    this.clearPadButton = $('clear-pad');
    this.chartElement = $('loss-chart');
    this.padCanvas = $('pad');
    this.mapCanvas = $('latent-map');
    this.compareSelect = $('compare-latent');
    this.copyLinkButton = $('copy-link');
    this.offlineUpdateButton = $('offline-update');
    this.grid = this.#buildGrid();
    this.onGridPick = null; // (test image index) when a digit of the grid's top row is clicked
    this.onFieldSet = null; // () when the page itself changes a field (the address follows)
  }

  // --- page state, status line -------------------------------------------------------------

  /** body[data-state]: loading | ready | training | paused | comparing | error | lost; page tests wait on it. */
  setState(state) {
    document.body.dataset.state = state;
  }

  /** body[data-runs]: presses of Train that began a fresh run ("two fast clicks start one run"). */
  setRunsStarted(runs) {
    document.body.dataset.runs = String(runs);
  }

  /** `figures` go on its data attributes for the page tests (data-chosen, data-measured-cpu…). */
  setBackendInfo(text, kind = 'info', figures = {}) {
    const el = $('backend-info');
    el.textContent = text;
    el.dataset.kind = kind;
    Object.assign(el.dataset, figures);
  }

  /** kind: info | warn | error. onRetry shows the Retry button, labelled `action`. */
  setStatus(text, kind = 'info', onRetry = null, action = 'Retry') {
    const el = $('status-message');
    el.textContent = text;
    el.dataset.kind = kind;
    this.retryButton.hidden = !onRetry;
    this.retryButton.textContent = action;
    // One press: a second click while it runs must not start it twice.
    this.retryButton.onclick = onRetry
      ? () => {
          this.retryButton.hidden = true;
          onRetry();
        }
      : null;
  }

  // --- controls ------------------------------------------------------------------------------

  /** The form's values as strings, for app/settings.js to check. */
  readFields() {
    return Object.fromEntries(FIELDS.map((f) => [f, this.fields[f].value]));
  }

  /** Sets a field as the page (not the person) does. */
  setField(name, value) {
    this.fields[name].value = String(value);
    this.onFieldSet?.();
  }

  /** errors: field -> message; fields not named are cleared. */
  showFieldErrors(errors) {
    for (const f of FIELDS) {
      const message = errors[f] ?? '';
      $(`${f}-error`).textContent = message;
      this.fields[f].toggleAttribute('aria-invalid', !!message);
    }
  }

  setBackendAvailable(backend, available, why = '') {
    const option = this.fields.backend.querySelector(`option[value="${backend}"]`);
    option.disabled = !available;
    option.title = why;
  }

  /**
   * Labels the subset menu with the download each choice needs; choices beyond the server's
   * `trainImages` are shown but cannot be picked.
   */
  labelSubsets(bytesForSubset, trainImages) {
    for (const option of this.fields.subset.options) {
      const images = Number(option.value);
      const name = `${formatNumber(images)}${images === 60000 ? ' (all)' : ''}`;
      option.disabled = images > trainImages;
      option.textContent = option.disabled
        ? `${name} · not on this server`
        : `${name} · ${(bytesForSubset(images) / 1e6).toFixed(1)} MB`;
    }
    // The page's default subset on a server with less data: the largest it has instead, so that
    // the page still starts.
    const select = this.fields.subset;
    const available = [...select.options].filter((o) => !o.disabled);
    if (select.selectedOptions[0]?.disabled && available.length) {
      select.value = available.at(-1).value;
      this.onFieldSet?.();
    }
  }

  /** enabled: a boolean per control named in CONTROLS; `fields` enables the form. */
  setEnabled(enabled, fields = true) {
    for (const [name, el] of Object.entries(this.controls)) el.disabled = !enabled[name];
    for (const f of FIELDS) this.fields[f].disabled = !fields;
  }

  /** The field errors shown now, field -> message. */
  visibleErrors() {
    return Object.fromEntries(FIELDS.map((f) => [f, $(`${f}-error`).textContent]).filter(([, text]) => text));
  }

  /** "Keep training while this tab is hidden". */
  get trainWhileHidden() {
    return $('train-hidden').checked;
  }

  /**
   * The compare panel's choice: { latent, denseActivation }. latent 0 is the seed's sizes;
   * denseActivation 'relu' is the dense model as the seed wrote it.
   */
  get compareChoice() {
    const value = this.compareSelect.value;
    return value === 'relu' ? { latent: 0, denseActivation: 'relu' } : { latent: Number(value), denseActivation: 'linear' };
  }

  /** The compare menu's value as it is ('0', 'relu', '3', …), for a link to the run. */
  get compareValue() {
    return this.compareSelect.value;
  }

  set compareValue(value) {
    this.compareSelect.value = value;
  }

  showCompareError(text) {
    $('compare-latent-error').textContent = text;
    this.compareSelect.toggleAttribute('aria-invalid', !!text);
  }

  // --- a run in a link, the page kept for offline use ---------------------------------------

  /** "Settings from the link: …" above the form; '' hides it. */
  showLinkNote(text) {
    const el = $('link-note');
    el.textContent = text;
    el.hidden = !text;
  }

  /**
   * Shows the link to the run in its field, selected for copying, and says whether it is on the
   * clipboard (how: 'copying' | 'copied' | 'select'). data-link holds it for the page tests.
   */
  showRunLink(link, how) {
    const field = $('run-link');
    const note = $('run-link-note');
    this.updateRunLink(link);
    field.hidden = false;
    field.focus();
    field.select();
    note.hidden = false;
    note.dataset.how = how;
    note.textContent = {
      copying: 'Copying…',
      copied: 'Copied: whoever opens this link gets these settings, and presses Train to run them.',
      select: 'The browser did not let the page copy: the link is selected above, copy it from there (Ctrl+C or ⌘C).',
    }[how];
  }

  /** The link, kept up to date in its field once the field is shown. */
  updateRunLink(link) {
    const field = $('run-link');
    if (field.value !== link) field.value = link;
    this.copyLinkButton.dataset.link = link;
  }

  /**
   * Links the web app manifest (`href`), which makes the page installable; added after the page
   * has started, since the browser fetches the manifest and an icon as soon as it is linked.
   */
  linkManifest(href) {
    if (document.querySelector('link[rel="manifest"]')) return;
    const link = document.createElement('link');
    link.rel = 'manifest';
    link.href = href;
    document.head.append(link);
  }

  /**
   * The line that says how the page is kept in this browser (app/offline.js): state is '' (hidden),
   * 'saving', 'saved', 'cached', 'update' or 'failed'; `onUpdate` shows the button that takes a
   * waiting version. data-state and data-version are for the page tests.
   */
  setOffline({ state, text, kind = 'info', version = '' }, onUpdate = null) {
    const el = $('offline-info');
    el.textContent = text;
    el.hidden = !state;
    Object.assign(el.dataset, { state, kind, version });
    const button = this.offlineUpdateButton;
    button.hidden = !onUpdate;
    button.onclick = onUpdate
      ? () => {
          button.disabled = true;
          onUpdate();
        }
      : null;
    button.disabled = false;
  }

  /** The code's activation is a choice for the dense model only; for conv the page says why not. */
  showCodeChoice(model) {
    const conv = model === 'conv';
    this.fields.codeActivation.hidden = conv;
    $('codeActivation-conv').hidden = !conv;
  }

  setSettingsNote(visible) {
    $('settings-note').hidden = !visible;
  }

  // --- progress and facts --------------------------------------------------------------------

  /** fraction in [0,1] or null for an indeterminate bar. */
  setProgress(fraction, text) {
    const bar = $('progress');
    if (fraction === null) bar.removeAttribute('value');
    else bar.value = Math.min(1, Math.max(0, fraction));
    $('progress-text').textContent = text;
  }

  setFacts({ model, parameters, images }) {
    $('fact-model').textContent = model ?? '–';
    $('fact-parameters').textContent = parameters == null ? '–' : formatNumber(parameters);
    $('fact-images').textContent = images ?? '–';
  }

  /**
   * The code fact ("3 numbers (ReLU), 3 dead") with its figures on data attributes for the page
   * tests; `note` says what a dead code means, emphasised when `allDead`.
   */
  setCode({ text, units, activation, dead, note, allDead }) {
    const fact = $('fact-latent');
    fact.textContent = text;
    Object.assign(fact.dataset, { units: String(units ?? ''), activation: activation ?? '', dead: String(dead ?? '') });
    const el = $('dead-code');
    el.textContent = note;
    el.hidden = !note;
    el.dataset.allDead = allDead ? 'yes' : 'no';
  }

  setLatestLoss(loss) {
    setOutput($('latest-loss'), loss);
  }

  setLatestTest(mse) {
    setOutput($('latest-test'), mse);
  }

  /** The memory line; `figures` also go on its data attributes for the page tests. */
  setMemory(text, figures) {
    const el = $('memory');
    el.textContent = text;
    Object.assign(el.dataset, figures);
  }

  setKeepStatus(text) {
    $('keep-status').textContent = text;
  }

  /** offers: [{ kind, label }]; onPick(kind) when one is clicked. */
  offerKeptModels(offers, onPick) {
    const el = $('kept-offer');
    el.replaceChildren(
      ...offers.map(({ kind, label }) => {
        const button = document.createElement('button');
        button.type = 'button';
        button.textContent = label;
        button.dataset.kind = kind;
        button.addEventListener('click', () => onPick(kind));
        return button;
      }),
    );
    el.hidden = offers.length === 0;
  }

  // --- latent map and interpolation -----------------------------------------------------------

  /** The map's choices: PCA always; for a small code, also each pair of its own axes. */
  setProjectionChoices(latent) {
    const select = this.controls.projection;
    select.replaceChildren(new Option('PCA (2 main directions)', 'pca'));
    for (let a = 0; latent <= 4 && a < latent; a++) {
      for (let b = a + 1; b < latent; b++) select.append(new Option(`code numbers ${a + 1} and ${b + 1}`, `${a},${b}`));
    }
  }

  get projection() {
    return this.controls.projection.value;
  }

  set projection(value) {
    this.controls.projection.value = value;
  }

  /** The decoder's image at the picked point, or null with a caption saying why there is none. */
  showMapDecoded(pixels, caption) {
    showTile($('map-decoded'), $('map-decoded-caption'), pixels, caption);
  }

  // --- reconstruction grid -------------------------------------------------------------------

  // One column per test digit, the original above its reconstruction, so that on a narrow
  // screen the columns wrap in pairs.
  #buildGrid() {
    const container = $('recon-grid');
    const originals = [];
    const outputs = [];
    for (let i = 0; i < GRID_DIGITS; i++) {
      const pair = document.createElement('div');
      pair.className = 'pair';
      for (const list of [originals, outputs]) {
        const canvas = document.createElement('canvas');
        canvas.width = IMAGE_SIDE;
        canvas.height = IMAGE_SIDE;
        canvas.className = list === outputs ? 'tile output' : 'tile';
        canvas.dataset.index = String(i);
        pair.append(canvas);
        list.push(canvas);
      }
      container.append(pair);
    }
    // A test digit of the top row picks an interpolation end, by click or by keyboard.
    originals.forEach((canvas, i) => {
      canvas.tabIndex = 0;
      canvas.setAttribute('role', 'button');
      const pick = () => this.onGridPick?.(i);
      canvas.addEventListener('click', pick);
      canvas.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          pick();
        }
      });
    });
    return { container, originals, outputs };
  }

  /** pixels: Float32Array GRID_DIGITS * 784; labels: the digits they show. */
  showOriginals(pixels, labels) {
    this.grid.originals.forEach((canvas, i) => {
      drawDigit(canvas, pixels, i * IMAGE_PIXELS);
      canvas.title = `test image ${i}: a ${labels[i]} (click: an interpolation end)`;
      canvas.setAttribute('aria-label', canvas.title);
    });
  }

  /** pixels: Float32Array GRID_DIGITS * 784, or null to blank the row (with a caption saying why). */
  showReconstructions(pixels, caption) {
    this.grid.outputs.forEach((canvas, i) => {
      if (pixels) drawDigit(canvas, pixels, i * IMAGE_PIXELS);
      else blank(canvas);
    });
    this.grid.container.dataset.reconstructed = pixels ? 'yes' : 'no';
    $('recon-caption').textContent = caption;
  }

  // --- drawing pad ---------------------------------------------------------------------------

  /**
   * input, output: Float32Array(784) or null; a null tile shows `caption` instead. `steps`: the
   * model's training steps when `output` was asked for (data-steps; the grid's caption says the
   * same of the grid).
   */
  showDrawing(input, output, caption = 'draw a digit', steps = null) {
    showTile($('pad-input'), $('pad-input-caption'), input, caption);
    showTile($('pad-output'), $('pad-output-caption'), output, output ? '' : input ? 'working…' : caption);
    $('pad-output').dataset.steps = output && steps !== null ? String(steps) : '';
  }
}

function setOutput(el, value) {
  el.value = value == null ? '–' : formatLoss(value);
  el.dataset.value = value == null ? '' : String(value);
}

function showTile(canvas, captionEl, pixels, caption) {
  if (pixels) drawDigit(canvas, pixels, 0);
  else blank(canvas);
  captionEl.textContent = pixels ? '' : caption;
  captionEl.hidden = !!pixels;
  canvas.dataset.empty = pixels ? 'no' : 'yes';
}

/** Paints one 28x28 image (values in [0,1], white ink on black like MNIST) from `offset`. */
export function drawDigit(canvas, pixels, offset) {
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(IMAGE_SIDE, IMAGE_SIDE);
  for (let i = 0; i < IMAGE_PIXELS; i++) {
    const v = Math.round(255 * Math.min(1, Math.max(0, pixels[offset + i])));
    image.data[i * 4] = v;
    image.data[i * 4 + 1] = v;
    image.data[i * 4 + 2] = v;
    image.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

function blank(canvas) {
  canvas.getContext('2d').clearRect(0, 0, canvas.width, canvas.height);
}
