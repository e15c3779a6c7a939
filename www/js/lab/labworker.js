// The main thread's side of the training worker (worker.js): a promise per command, and a
// RemoteLab per Lab living in the worker, with a method for each of protocol.js's LAB_METHODS.
// Nothing here blocks: the page keeps drawing while a step runs. When the worker dies, every
// call in flight is rejected with WorkerGone, which the page's recovery relies on.
import { LAB_METHODS } from '../shared/protocol.js';

/** The worker is gone (a trap in the wasm, the device lost): make a new one to go on. */
export class WorkerGone extends Error {
  constructor(why) {
    super(why);
    this.name = 'WorkerGone';
  }
}

export class LabWorker {
  #worker;
  #pending = new Map();
  #nextId = 1;
  #gone = null;
  #ended;

  /**
   * onGone(why) is called once if the worker dies or its GPU device is lost. `name` is what the
   * browser's developer tools call the worker.
   */
  constructor({ onGone = () => {}, name = 'training worker' } = {}) {
    this.onGone = onGone;
    this.name = name;
    /** Resolves with the reason once the worker is gone, however it went (died or terminated). */
    this.ended = new Promise((resolve) => {
      this.#ended = resolve;
    });
    this.#worker = new Worker(new URL('../worker/worker.js', import.meta.url), { type: 'module', name });
    this.#worker.onmessage = ({ data }) => this.#receive(data);
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#die(`the training worker failed: ${e.message || 'it could not load its script'}`);
    };
    this.#worker.onmessageerror = () => this.#die('the training worker sent a message that could not be read');
  }

  get gone() {
    return this.#gone;
  }

  /**
   * Sends one command with positional `args`; resolves to the worker's answer, { value, snap?,
   * ms, gpu }. Arguments are copied, never transferred (the page keeps what it sends),
   * except for what `transfer` lists (a worker pool's MessagePorts).
   */
  call(command, args = [], lab = undefined, transfer = []) {
    if (this.#gone) return Promise.reject(new WorkerGone(this.#gone));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, command });
      this.#worker.postMessage({ id, command, lab, args }, transfer);
    });
  }

  /**
   * Loads the wasm module the worker starts with: 'cpu' (www/pkg-cpu, the CPU backend alone) or
   * 'webgpu' (www/pkg, WebGPU and the CPU). A Lab on WebGPU loads the WebGPU module when asked for.
   */
  async init(module) {
    await this.call('init', [module]);
  }

  async createLab(backend) {
    const { value } = await this.call('create', [backend]);
    return new RemoteLab(this, value.lab, value.snap, value.module);
  }

  async prepareDrawing(ink, width, height) {
    return (await this.call('prepareDrawing', [ink, width, height])).value;
  }

  /** Stops the worker; every call in flight fails with `why`. */
  terminate(why = 'the training worker was stopped') {
    this.#worker.terminate();
    this.#fail(why);
  }

  /** Stops the worker as if it had died of `why`: onGone hears of it (a pool's helper died). */
  kill(why) {
    this.#die(why);
  }

  #receive(data) {
    if (data.event === 'deviceLost') {
      this.#die(`the GPU device was lost (${data.reason}: ${data.message})`);
      return;
    }
    const call = this.#pending.get(data.id);
    if (!call) return;
    this.#pending.delete(data.id);
    if (data.error === undefined) {
      call.resolve(data);
    } else if (data.fatal) {
      call.reject(new WorkerGone(data.error));
      this.#die(`the training worker crashed in ${call.command}: ${data.error}`);
    } else {
      call.reject(new Error(data.error));
    }
  }

  #die(why) {
    if (this.#gone) return;
    this.#worker.terminate();
    this.#fail(why);
    this.onGone(why);
  }

  #fail(why) {
    this.#gone ??= why;
    this.#ended(this.#gone);
    for (const { reject } of this.#pending.values()) reject(new WorkerGone(why));
    this.#pending.clear();
  }
}

/**
 * One Lab in the worker. `snap` holds its counters as of the last answer, so the page can read
 * them at any time without asking; `lastMs` is the time the worker spent on the last call
 * (training time, without the waits in the queue), `lastGpu` the WebGPU work it made
 * (gpucount.js: dispatches, submits and read-backs, 0 on the CPU, `hostMs`, the call's time
 * less its waits on read-backs, and `waitMs`, those waits). `module` names the wasm module it
 * lives in (worker.js).
 */
export class RemoteLab {
  constructor(worker, id, snap, module) {
    this.worker = worker;
    this.id = id;
    this.snap = snap;
    this.module = module;
    this.lastMs = 0;
    this.lastGpu = { dispatches: 0, submits: 0, readbacks: 0, hostMs: 0, waitMs: 0 };
  }

  get backend() {
    return this.snap.backend;
  }

  async call(command, ...args) {
    const { value, snap, ms, gpu } = await this.worker.call(command, args, this.id);
    if (snap) this.snap = snap;
    this.lastMs = ms;
    this.lastGpu = gpu;
    return value;
  }

  /** { gpu: { bytesInUse, bytesReserved, allocations } | null, heapBytes, wasmBytes } */
  memory() {
    return this.call('memory');
  }

  async free() {
    if (this.worker.gone) return;
    await this.call('free').catch(() => {});
  }
}

for (const name of LAB_METHODS) {
  RemoteLab.prototype[name] = function (...args) {
    return this.call(name, ...args);
  };
}

// The two that make a model take its training settings by name; here, and only here, they are
// put in the wasm's positional order (shared/protocol.js).

/**
 * A fresh model. `latent` 0 is the model's own code size; `codeActivation` is 'linear', 'relu',
 * '' or left out (both: the model's default).
 */
RemoteLab.prototype.reset = function ({ model, batchSize, learningRate, seed, latent = 0, codeActivation }) {
  return this.call('reset', model, batchSize, learningRate, seed, latent, codeActivation);
};

/**
 * The model file `bytes` (the lab's, or a PyTorch state_dict in safetensors), trained on with these
 * settings; resolves to the file's summary (JSON). `codeActivation` is the form's, for a PyTorch
 * dense model's code, which its tensors cannot show.
 */
RemoteLab.prototype.load = function (bytes, { model, batchSize, learningRate, seed, codeActivation = '' }) {
  return this.call('load', bytes, model, batchSize, learningRate, seed, codeActivation);
};
