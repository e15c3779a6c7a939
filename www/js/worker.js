// The training worker: owns the wasm module, the device and every Lab, so that the page's main
// thread only draws. Speaks the protocol of labworker.js:
//
//   in:  { id, command, lab?, args }      one command, answered once
//   out: { id, value } | { id, error, fatal? }
//        { event: 'deviceLost', reason, message }   the WebGPU device went away
//
// Commands run one at a time, in the order they came: a wasm-bindgen object refuses a second
// call while an async one is pending, and the page relies on that order. Float32Array results
// are transferred, not copied.
import init, { Lab, heapBytes, prepareDrawing } from '../pkg/autoencoder_lab.js';

let wasm = null; // the module's exports, for its memory size
const labs = new Map();
let nextLab = 1;

// burn asks for the WebGPU device inside the wasm and gives JS no handle on it; catching it on
// its way out is the only way to hear when the browser takes it back (a driver reset, a GPU
// process crash, another tab using all memory). The devices stay reachable from the worker's
// console as `self.labDevices`: `labDevices[0].destroy()` shows what the page does then.
const devices = [];
self.labDevices = devices;
let lost = null; // the first device's loss, once it happens
let onLost;
const lostSignal = new Promise((resolve) => {
  onLost = resolve;
});
if (self.GPUAdapter) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    devices.push(device);
    device.lost.then((info) => {
      // 'destroyed' from our own destroy() is lost all the same: the weights on it are gone.
      lost ??= info;
      onLost();
      postMessage({ event: 'deviceLost', reason: info.reason, message: info.message || 'no reason given' });
    });
    return device;
  };
}

function labOf(id) {
  const lab = labs.get(id);
  if (!lab) throw new Error(`no lab ${id} in the worker (it was freed)`);
  return lab;
}

/** The counters the page shows, sent with every answer that can change them. */
function snapshot(lab) {
  return {
    backend: lab.backend,
    model: lab.model ?? null,
    parameterCount: lab.parameterCount,
    latentSize: lab.latentSize,
    epoch: lab.epoch,
    batch: lab.batch,
    batchesPerEpoch: lab.batchesPerEpoch,
    steps: lab.steps,
    trainCount: lab.trainCount,
    testCount: lab.testCount,
  };
}

/** Copies a wasm-bindgen object's fields out, then frees it. */
function plain(object, fields) {
  try {
    return Object.fromEntries(fields.map((f) => [f, object[f]]));
  } finally {
    object.free();
  }
}

// Each command takes (lab, args) and returns { value, transfer? }.
const commands = {
  async init() {
    wasm ??= await init();
    return { value: null };
  },

  async create(_, { backend }) {
    const lab = await Lab.create(backend);
    const id = nextLab++;
    labs.set(id, lab);
    return { value: { lab: id, snap: snapshot(lab) } };
  },

  free(lab, _, id) {
    lab.free();
    labs.delete(id);
    return { value: null };
  },

  addData(lab, { split, chunks }) {
    let images = 0;
    for (const bytes of chunks) images += lab.addData(split, bytes);
    return { value: { images, snap: snapshot(lab) } };
  },

  clearData(lab) {
    lab.clearData();
    return { value: { snap: snapshot(lab) } };
  },

  reset(lab, { model, batchSize, learningRate, seed, latent = 0 }) {
    lab.reset(model, batchSize, learningRate, seed, latent);
    return { value: { snap: snapshot(lab) } };
  },

  load(lab, { bytes, model, batchSize, learningRate, seed }) {
    const summary = lab.load(bytes, model, batchSize, learningRate, seed);
    return { value: { summary, snap: snapshot(lab) } };
  },

  async save(lab, { summary }) {
    const bytes = await lab.save(summary);
    return { value: bytes, transfer: [bytes.buffer] };
  },

  async step(lab, { steps }) {
    const t0 = performance.now();
    const losses = await lab.step(steps);
    const ms = performance.now() - t0;
    return { value: { losses, ms, snap: snapshot(lab) }, transfer: [losses.buffer] };
  },

  async evaluate(lab) {
    return { value: await lab.evaluate() };
  },

  testPixels(lab, { start, count }) {
    const pixels = lab.testPixels(start, count);
    return { value: pixels, transfer: [pixels.buffer] };
  },

  testLabels(lab, { start, count }) {
    const labels = lab.testLabels(start, count);
    return { value: labels, transfer: [labels.buffer] };
  },

  async reconstruct(lab, { pixels }) {
    const out = await lab.reconstruct(pixels);
    return { value: out, transfer: [out.buffer] };
  },

  async read(lab, { pixels }) {
    const reading = plain(await lab.read(pixels), ['reconstruction', 'knn', 'linear', 'x', 'y']);
    return { value: reading, transfer: [reading.reconstruction.buffer] };
  },

  async fitPredictors(lab, { maxTrain, k, linearEpochs }) {
    const report = await lab.fitPredictors(maxTrain, k, linearEpochs);
    const fields = ['knnAccuracy', 'linearAccuracy', 'k', 'trainCodes', 'testCodes', 'knnConfusion', 'linearConfusion', 'linearLosses'];
    return { value: plain(report, fields) };
  },

  setProjection(lab, { kind, x, y }) {
    lab.setProjection(kind, x, y);
    return { value: null };
  },

  map(lab) {
    const points = lab.mapPoints();
    return { value: { points, explained: lab.mapExplained }, transfer: [points.buffer] };
  },

  async decodePoint(lab, { x, y }) {
    const out = await lab.decodePoint(x, y);
    return { value: out, transfer: [out.buffer] };
  },

  async interpolate(lab, { a, b, points }) {
    const out = await lab.interpolate(a, b, points);
    return { value: out, transfer: [out.buffer] };
  },

  /**
   * What could leak: the Rust heap's live bytes, the wasm memory (its high-water mark: it only
   * ever grows) and the GPU pool (WebGPU only).
   */
  memory(lab) {
    const gpu = lab.gpuMemory;
    const value = {
      gpu: gpu ? plain(gpu, ['bytesInUse', 'bytesReserved', 'allocations']) : null,
      heapBytes: heapBytes(),
      wasmBytes: wasm.memory.buffer.byteLength,
    };
    return { value };
  },

  prepareDrawing(_, { ink, width, height }) {
    const pixels = prepareDrawing(ink, width, height);
    return { value: pixels, transfer: [pixels.buffer] };
  },
};

// Commands that need no Lab.
const GLOBAL = new Set(['init', 'create', 'prepareDrawing']);

let tail = Promise.resolve();

self.onmessage = ({ data }) => {
  tail = tail.then(() => handle(data));
};

async function handle({ id, command, lab, args = {} }) {
  try {
    const run = commands[command];
    if (!run) throw new Error(`unknown command ${command}`);
    if (!wasm && command !== 'init') throw new Error('the worker was not initialised');
    const { value, transfer = [] } = await run(GLOBAL.has(command) ? null : labOf(lab), args, lab);
    postMessage({ id, value }, transfer);
  } catch (err) {
    // A trap (a Rust panic under panic=abort, or memory exhausted) leaves the module's state
    // undefined: the page must start a new worker rather than call this one again. So does a
    // lost device, whose news can trail the failure it caused by a moment.
    let fatal = err instanceof WebAssembly.RuntimeError;
    if (!fatal && devices.length) {
      await Promise.race([lostSignal, new Promise((resolve) => setTimeout(resolve, 100))]);
      fatal = lost !== null;
    }
    postMessage({ id, error: err instanceof Error ? err.message : String(err), fatal });
  }
}
