// Random choices a failing test can replay: a seed from the environment or a fresh one (the
// tests print it), and a small generator drawn from it. Shared by the page tests and the Node
// tests of the page's modules.

/** The seed in the environment variable `name`, to replay a run, or a fresh one (print it). */
export function seedFrom(name) {
  return Number(process.env[name] ?? Date.now() % 1_000_000);
}

/** SplitMix64, as the Rust side's shuffles use: small, seedable, enough for mutations and orders. */
export function splitmix(seed) {
  let state = BigInt(seed);
  return () => {
    state = (state + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
    return Number((z ^ (z >> 31n)) >> 11n) / 2 ** 53;
  };
}

/** A copy of `items` in an order drawn from `random` (Fisher-Yates). */
export function shuffled(items, random) {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
