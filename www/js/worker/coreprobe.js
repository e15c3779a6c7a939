// A worker of cores.js's timing: spins on `work` square roots when asked, and answers how long
// that took by its own clock. A classic worker with no imports, so that it starts in a moment.
onmessage = ({ data: work }) => {
  const start = performance.now();
  let x = 0;
  for (let i = 0; i < work; i++) x = Math.sqrt(x + i);
  // x goes back too, so that no engine can skip the loop as unused.
  postMessage({ ms: performance.now() - start, x });
};
postMessage('ready');
