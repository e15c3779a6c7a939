// The training worker: owns the wasm modules, the device and every Lab, so that the page's main
// thread only draws. Speaks the protocol of labworker.js:
//
//   in:  { id, command, lab?, args }      one command, args positional, answered once
//   out: { id, value, snap?, ms, gpu } | { id, error, fatal? }
//        { event: 'deviceLost', reason, message }   the WebGPU device went away
//
// A command is one of protocol.js's LAB_METHODS, passed through to the Lab, or one of this
// file's `commands`. Every answer about a Lab carries its counters (`snap`), the time the
// worker spent on the call (`ms`) and the WebGPU work it made (`gpu`: compute dispatches,
// queue submits, read-backs, and `hostMs`, the call's time less its waits on read-backs: what
// the host spent recording and submitting, which bounds the speed on any GPU; `waitMs`, those
// waits). Commands run one at a time, in the order they came: a wasm-bindgen object refuses a
// second call while an async one is pending, and the page relies on that order. Typed-array
// results are transferred, not copied.
import { pollSooner } from './firefoxpoll.js';
import { countGpuWork, gpuWork, gpuWorkSince } from './gpucount.js';
import { PoolLink } from './poolstep.js';
import { LAB_METHODS } from '../shared/protocol.js';

// The page's two builds of the wasm (build.sh): `cpu`, the CPU backend alone, its hot loops at
// full optimisation, a fifth of the bytes; and `webgpu`, WebGPU (and a CPU backend built for
// size, which draws each model's first weights and copies models off the GPU). `init` loads the
// one the worker starts with. A Lab loads its backend's module when first asked for: CPU Labs
// always train in the CPU module, and a worker that trains on the CPU never fetches WebGPU's.
const MODULES = { cpu: '../../pkg-cpu/autoencoder_lab.js', webgpu: '../../pkg/autoencoder_lab.js' };
const modules = {}; // name -> a promise of { Lab, heapBytes, prepareDrawing, memory }
let first = null; // the name `init` loaded

function load(name) {
  if (!MODULES[name]) throw new Error(`unknown wasm module ${name}: choose ${Object.keys(MODULES).join(' or ')}`);
  if (modules[name]) return modules[name];
  const loading = (async () => {
    const m = await import(MODULES[name]);
    const { memory } = await m.default();
    return { Lab: m.Lab, heapBytes: m.heapBytes, prepareDrawing: m.prepareDrawing, memory };
  })();
  modules[name] = loading;
  // A module that failed to load is fetched again when next asked for, not remembered as failed.
  loading.catch(() => {
    if (modules[name] === loading) delete modules[name];
  });
  return loading;
}

const labs = new Map();
const moduleOf = new Map(); // Lab id -> the module it lives in
let nextLab = 1;
const pools = new Map(); // Lab id -> its PoolLink, for a Lab in a worker pool (pool.js)

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
// In Firefox, read-backs nudge the device rather than wait ~100 ms for its poll; wrapped before
// the counting, so that the nudges' empty submits are not counted as a step's (firefoxpoll.js).
pollSooner(devices);
// Before any device exists, so that every dispatch, submit and read-back is counted: the page
// shows dispatches per step, which decide WebGPU's speed on a real GPU (gpucount.js).
countGpuWork();
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

// The counters the page shows, read from the Lab's getters of these names after every call: a
// new getter added here reaches every RemoteLab's `snap`.
const SNAPSHOT = ['backend', 'model', 'parameterCount', 'latentSize', 'codeActivation', 'epoch', 'batch', 'batchesPerEpoch', 'steps', 'trainCount', 'testCount'];

function snapshot(lab) {
  return Object.fromEntries(SNAPSHOT.map((f) => [f, lab[f] ?? null]));
}

/**
 * A result as it can cross to the page: a wasm-bindgen object (a class instance holding a
 * pointer into the wasm heap) becomes a plain copy of its getters and is freed; anything else
 * passes as it is.
 */
function plain(value) {
  if (!value || typeof value !== 'object' || typeof value.free !== 'function' || ArrayBuffer.isView(value)) return value;
  try {
    const getters = Object.entries(Object.getOwnPropertyDescriptors(Object.getPrototypeOf(value)));
    return Object.fromEntries(getters.filter(([, d]) => d.get).map(([name]) => [name, value[name]]));
  } finally {
    value.free();
  }
}

/** The buffers of the typed arrays in a result, handed to the page rather than copied. */
function buffersOf(value) {
  if (ArrayBuffer.isView(value)) return [value.buffer];
  if (value && typeof value === 'object') return Object.values(value).flatMap((v) => (ArrayBuffer.isView(v) ? [v.buffer] : []));
  return [];
}

/** A Lab method of LAB_METHODS, or its getter, with the page's arguments. */
async function callLab(lab, command, args) {
  const member = lab[command];
  return plain(typeof member === 'function' ? await member.apply(lab, args) : member);
}

// Commands that are not Lab methods; each takes (lab or null, args, lab id).
const commands = {
  /** Loads wasm module `name` ('cpu' or 'webgpu'), the worker's first. */
  async init(_, [name = 'cpu']) {
    await load(name);
    first ??= name;
    return null;
  },

  /** A Lab on `backend`, in that backend's module. */
  async create(_, [backend]) {
    const name = backend === 'webgpu' ? 'webgpu' : 'cpu';
    const lab = await (await load(name)).Lab.create(backend);
    const id = nextLab++;
    labs.set(id, lab);
    moduleOf.set(id, name);
    return { lab: id, module: name, snap: snapshot(lab) };
  },

  free(lab, _, id) {
    lab.free();
    labs.delete(id);
    moduleOf.delete(id);
    pools.delete(id);
    return null;
  },

  /** Makes the Lab part `part` of `parts` of a worker pool; `ports[i]` leads to part `peers[i]`. */
  joinPool(_, [part, parts, peers, ports], id) {
    pools.set(id, new PoolLink(part, parts, peers, ports));
    return null;
  },

  /** Up to `steps` steps, each cut over the pool's workers (poolstep.js): like step, pooled. */
  stepPooled(lab, [steps], id) {
    const link = pools.get(id);
    if (!link) throw new Error('this Lab is in no worker pool');
    return link.steps(lab, steps);
  },

  /**
   * What could leak: the Rust heap's live bytes, the wasm memory (its high-water mark: it only
   * ever grows) and the GPU pool (WebGPU only).
   */
  async memory(lab, _, id) {
    const { heapBytes, memory } = await load(moduleOf.get(id));
    return { gpu: plain(lab.gpuMemory) ?? null, heapBytes: heapBytes(), wasmBytes: memory.buffer.byteLength };
  },

  async prepareDrawing(_, [ink, width, height]) {
    return (await load(first)).prepareDrawing(ink, width, height);
  },
};

// Commands that need no Lab.
const GLOBAL = new Set(['init', 'create', 'prepareDrawing']);
const PASSED_TO_LAB = new Set(LAB_METHODS);

let tail = Promise.resolve();

self.onmessage = ({ data }) => {
  tail = tail.then(() => handle(data));
};

async function handle({ id, command, lab: labId, args = [] }) {
  try {
    if (!PASSED_TO_LAB.has(command) && !commands[command]) throw new Error(`unknown command ${command}`);
    if (!first && command !== 'init') throw new Error('the worker was not initialised');
    const lab = GLOBAL.has(command) ? null : labOf(labId);
    const t0 = performance.now();
    const before = { ...gpuWork };
    const value = PASSED_TO_LAB.has(command) ? await callLab(lab, command, args) : await commands[command](lab, args, labId);
    const ms = performance.now() - t0;
    // Commands run one at a time, so the GPU work since `before` is this call's alone.
    const { dispatches, submits, readbacks, waitMs } = gpuWorkSince(before);
    const gpu = { dispatches, submits, readbacks, hostMs: ms - waitMs, waitMs };
    const snap = lab && labs.has(labId) ? snapshot(lab) : undefined;
    postMessage({ id, value, snap, ms, gpu }, buffersOf(value));
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
