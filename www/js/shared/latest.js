// "Latest request wins": work that must not run twice at once (one call into the worker at a
// time per request kind) and where only the newest request matters, such as reconstructing the
// drawing while it is drawn, or decoding the point under a dragged pointer.

/**
 * Returns request(...args): runs `work(...args)` now if it is idle; otherwise keeps only the
 * newest args and runs them once the current work ends. `work` can ask `superseded()` whether a
 * newer request came meanwhile, to drop a result nobody wants any more.
 */
export function latestWins(work) {
  let running = false;
  let next = null;

  const superseded = () => next !== null;

  async function run() {
    running = true;
    try {
      while (next) {
        const args = next;
        next = null;
        await work(...args);
      }
    } finally {
      running = false;
    }
  }

  const request = (...args) => {
    next = args;
    if (!running) run();
  };
  return Object.assign(request, { superseded });
}
