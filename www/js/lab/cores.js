// How many cores the CPU backend's worker pool can use (pool.js). navigator.hardwareConcurrency
// is what the browser reports, and a browser may report more than there are: Safari reports a
// rounded figure by design, and WebKitGTK reports 4 on a 2-core machine, where a pool of 4
// workers trained the conv model at 1,960 and 1,356 images/s against 3,019 and 2,171 on a pool
// of 2 (bench.html, two runs on a busy machine). So where the browser reports more than 2, the
// page times it once at start: one worker spins on a fixed piece of work alone, then `n`
// workers spin on the same piece at once. n workers on n free cores take as long as
// one; on c < n cores, n/c times as long. That is done twice and the lower count kept: a busy
// moment elsewhere on the machine while one worker spins alone reads as more cores than there
// are. About 0.3 s, before the training worker starts.
//
// A browser that reports 2 or fewer is taken at its word, and the timing never reads fewer than
// 2: a moment's load from elsewhere on the machine during the timing must not take away a core
// the page has for the rest of its life.

// Square roots for one timed spin: about 40 ms on one core here in WebKit, long enough that a
// scheduler's time slices (a few ms) share it out evenly among the spinning workers.
const WORK = 5_000_000;

let measured = null;

/** Cores the browser reports. */
export function reportedCores() {
  return globalThis.navigator?.hardwareConcurrency || 1;
}

/** Cores the pool may use: the timed figure once measureCores() has run, the reported one before. */
export function usableCores() {
  return measured?.usable ?? reportedCores();
}

/**
 * What measureCores() found, or null: { reported, usable, workers } and, where it timed them,
 * `parallel` (how many workers' worth of work was done at once) and `ms` (the five spins' times).
 */
export function coreTiming() {
  return measured;
}

/** `count` probe workers, once each has loaded; rejects if one cannot start. */
function startProbes(count) {
  return Promise.all(
    Array.from({ length: count }, () => {
      const worker = new Worker(new URL('../worker/coreprobe.js', import.meta.url), { name: 'core count' });
      return new Promise((resolve, reject) => {
        worker.onmessage = () => resolve(worker);
        worker.onerror = (e) => {
          e.preventDefault();
          worker.terminate();
          reject(new Error(`the core-count worker did not start: ${e.message || 'no script'}`));
        };
      });
    }),
  );
}

/** The milliseconds each of `workers` took to spin on `work`, all started together. */
function spin(workers, work) {
  return Promise.all(
    workers.map(
      (worker) =>
        new Promise((resolve) => {
          worker.onmessage = ({ data }) => resolve(data.ms);
          worker.postMessage(work);
        }),
    ),
  );
}

/**
 * Times the cores, up to `most` (the pool's largest size), once; later calls answer at once.
 * Where it cannot time them, the reported figure stands.
 */
export async function measureCores(most = Infinity) {
  if (measured) return measured;
  const reported = reportedCores();
  const workers = Math.min(reported, most);
  if (workers <= 2 || typeof Worker === 'undefined') {
    measured = { reported, usable: reported, workers: 0 };
    return measured;
  }
  let probes = [];
  try {
    probes = await startProbes(workers);
    // A short spin on every worker first, so that each has compiled the loop before it is timed.
    await spin(probes, WORK / 10);
    const alone = async () => (await spin(probes.slice(0, 1), WORK))[0];
    const together = async () => Math.max(...(await spin(probes, WORK)));
    // alone, together, alone, together, alone: each together against the alones either side.
    const ms = [];
    for (const run of [alone, together, alone, together, alone]) ms.push(await run());
    const parallel = Math.min(
      (workers * Math.min(ms[0], ms[2])) / ms[1],
      (workers * Math.min(ms[2], ms[4])) / ms[3],
    );
    measured = { reported, usable: Math.max(2, Math.min(workers, Math.round(parallel))), parallel, ms, workers };
  } catch {
    measured = { reported, usable: reported, workers: 0 };
  } finally {
    for (const probe of probes) probe.terminate();
  }
  return measured;
}
