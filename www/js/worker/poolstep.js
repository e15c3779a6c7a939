// One training step cut over the workers of a pool (pool.js), from inside one of them. Each
// worker holds the same model and training images. Worker k computes part k of the batch
// (Lab.shareGradients), sends its gradient to every other worker and takes theirs
// (Lab.addShare); then each adds the parts in part order and takes the same Adam step
// (Lab.applyShares). The copies stay identical, and a run is the same for a given seed and pool
// size. Every worker sending to every other costs one message's delay a step, where gathering
// the parts in one worker and sending the sum back would cost two.
//
// The workers talk over MessagePorts of their own, not through the page: the page's thread is
// not woken for each step.

/** A MessagePort as a queue: receive() resolves with the next message, in order. */
class Inbox {
  #queue = [];
  #waiting = null;

  constructor(port) {
    this.port = port;
    port.onmessage = ({ data }) => {
      if (this.#waiting) {
        const resolve = this.#waiting;
        this.#waiting = null;
        resolve(data);
      } else {
        this.#queue.push(data);
      }
    };
  }

  receive() {
    if (this.#queue.length) return Promise.resolve(this.#queue.shift());
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  send(message, transfer = []) {
    this.port.postMessage(message, transfer);
  }
}

/** One worker's place in a pool: part `part` of `parts`, with a port to each other part. */
export class PoolLink {
  #broken = null;

  /** `peers[i]` is the part whose worker listens on `ports[i]`. */
  constructor(part, parts, peers, ports) {
    this.part = part;
    this.parts = parts;
    this.peers = peers.map((peer, i) => ({ part: peer, inbox: new Inbox(ports[i]) }));
  }

  /**
   * Up to `maxSteps` pooled steps on `lab`, never past the end of the epoch (as Lab.step);
   * resolves to the steps' losses, the whole batches'.
   */
  async steps(lab, maxSteps) {
    // After a failed step the copies may differ: only a fresh pool (the page starts one) is safe.
    if (this.#broken) throw new Error(`the worker pool is out of step since: ${this.#broken}`);
    if (!lab.model) throw new Error('no model yet: reset one first');
    const losses = new Float32Array(Math.min(maxSteps, lab.batchesPerEpoch - lab.batch));
    try {
      for (let i = 0; i < losses.length; i++) losses[i] = await this.#step(lab);
    } catch (err) {
      this.#broken = err instanceof Error ? err.message : String(err);
      throw err;
    }
    return losses;
  }

  async #step(lab) {
    let share;
    try {
      share = await lab.shareGradients(this.part, this.parts);
    } catch (err) {
      // Nobody waits forever for this part.
      for (const peer of this.peers) peer.inbox.send({ error: err instanceof Error ? err.message : String(err) });
      throw err;
    }
    const { loss } = share;
    const gradients = share.takeGradients();
    share.free();
    // A copy to each peer but the last, which is handed the array itself.
    for (const [i, peer] of this.peers.entries()) {
      const last = i === this.peers.length - 1;
      const g = last ? gradients : gradients.slice();
      peer.inbox.send({ part: this.part, loss, gradients: g }, [g.buffer]);
    }
    for (const peer of this.peers) {
      const theirs = await peer.inbox.receive();
      if (theirs.error) throw new Error(`training worker ${peer.part + 1} failed: ${theirs.error}`);
      lab.addShare(theirs.part, this.parts, theirs.loss, theirs.gradients);
    }
    return lab.applyShares();
  }
}
