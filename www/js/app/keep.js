// Keeping models: Download (the lab's model file, or a PyTorch state_dict in safetensors), Load
// model file (either), the finished model kept in this browser and offered on the next visit
// (app/weights.js keeps it).
import { downloadFile, keptModel, readFile } from '../data/store.js';
import { formatNumber, message, modelName } from '../shared/format.js';
import { loadModelFile } from './model.js';
import { MODELS } from './settings.js';
import { app, can, page, setMode } from './state.js';
import { stopLoop } from './training.js';
import { modelBytes, pytorchBytes } from './weights.js';

// Mirrors MAX_FILE_BYTES in src/model_file.rs (64 MiB), which refuses larger files anyway:
// checked here on the file's size, so a huge file is refused before it is read into memory.
const MAX_MODEL_FILE = 64 * 1024 * 1024;

export async function onSaveModel() {
  if (!app.modelReady) return;
  try {
    const bytes = await modelBytes();
    downloadFile(bytes, `${app.snap.model}-autoencoder-${app.trainedSteps}-steps.bin`);
    page.view.setKeepStatus(`Downloaded the ${app.snap.model} model (${formatNumber(bytes.length)} bytes).`);
  } catch (err) {
    page.view.setKeepStatus(`Could not save the model: ${message(err)}`);
  }
}

/** The model as a state_dict of the study's PyTorch encoder and decoder (src/pytorch/). */
export async function onSavePytorch() {
  if (!can('savePytorch')) return;
  try {
    const bytes = await pytorchBytes();
    downloadFile(bytes, `${app.snap.model}-autoencoder-${app.trainedSteps}-steps.safetensors`);
    page.view.setKeepStatus(
      `Downloaded the ${app.snap.model} model for PyTorch (${formatNumber(bytes.length)} bytes): ` +
        'load_state_dict(load_file(path), strict=True) into the study\'s encoder and decoder.',
    );
  } catch (err) {
    page.view.setKeepStatus(`Could not save the model for PyTorch: ${message(err)}`);
  }
}

export async function onLoadModel(e) {
  const file = e.target.files?.[0];
  e.target.value = ''; // choosing the same file again must fire `change` again
  if (file) await loadModelBytes(() => readFile(file, MAX_MODEL_FILE), file.name);
}

/** Loads a model file into the current Lab; a bad file leaves the current model as it was. */
async function loadModelBytes(getBytes, name) {
  if (!can('loadModel')) {
    page.view.setKeepStatus('Wait until the page is ready (or pause training), then load the file.');
    return;
  }
  // Said at once, so that the line never shows the last file's outcome while this one loads.
  page.view.setKeepStatus(`Loading ${name}…`);
  setMode('busy');
  await stopLoop();
  try {
    const bytes = await getBytes();
    const summaryText = await loadModelFile(bytes, name);
    const summary = JSON.parse(summaryText || 'null');
    const trained = summary?.steps ? `, trained for ${formatNumber(summary.steps)} steps` : '';
    // A PyTorch file: which model its tensors showed, and what it could not say (src/pytorch/).
    const found = summary?.imported ?? `a ${app.snap.model} model${trained}`;
    page.view.setKeepStatus(`Loaded ${name}: ${found}. Train goes on from it with Resume or Step; Train starts a fresh one.`);
    page.view.setStatus(summary?.imported ? `Loaded ${name}: ${summary.imported}.` : `Loaded ${name}.`);
  } catch (err) {
    const hint = /was asked for/.test(message(err)) ? ' Choose that model in the Training panel, then load the file again.' : '';
    page.view.setKeepStatus(`Could not load ${name}: ${message(err)}.${hint} The current model is unchanged.`);
    page.view.setStatus(`Could not load ${name}: the current model is unchanged.`, 'error');
  }
  setMode('idle');
}

export async function offerKeptModels() {
  const kept = new Map();
  try {
    for (const kind of MODELS) kept.set(kind, await keptModel(kind));
  } catch {
    // no storage here: nothing to offer
  }
  const offers = [...kept].filter(([, model]) => model).map(([kind, model]) => ({
    kind,
    label: `Load the ${kind} model kept on ${new Date(model.savedAt).toLocaleString()} (${formatNumber(model.summary?.steps ?? 0)} steps)`,
  }));
  page.view.offerKeptModels(offers, async (kind) => {
    if (app.applied?.model !== kind) {
      page.view.setKeepStatus(`Choose the ${modelName(kind)} model and press Reset first, then load it.`);
      return;
    }
    await loadModelBytes(async () => kept.get(kind).bytes, `the kept ${kind} model`);
  });
}
