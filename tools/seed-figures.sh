#!/usr/bin/env bash
# The runs behind README's "The seed's figures, reproduced": the dense model with a linear and a
# ReLU code (seeds 0-9), the conv model and the dense model with a 64-number code (seeds 0-4),
# 3 epochs each on all 60,000 digits, then the table of their reports.
#
#   tools/seed-figures.sh [OUT]        run what is missing in OUT (default /tmp/seed), print the table
#   tools/seed-figures.sh --table OUT  only print the table
#
# A report already in OUT is not run again, so an interrupted run picks up where it stopped.
# LAB names the command that trains (default ./build.sh; a built binary skips cargo's lock).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

table_only=
if [ "${1:-}" = --table ]; then table_only=1; shift; fi
OUT="${1:-/tmp/seed}"
LAB="${LAB:-./build.sh}"
EPOCHS="${EPOCHS:-3}"
mkdir -p "$OUT"

run() { # name, then train's arguments
  local name=$1; shift
  [ -s "$OUT/$name.json" ] && return
  echo "== $name: train $*" >&2
  $LAB train "$@" --epochs "$EPOCHS" --report "$OUT/$name.json.tmp" 2>"$OUT/$name.log"
  mv "$OUT/$name.json.tmp" "$OUT/$name.json"
}

if [ -z "$table_only" ]; then
  # Two queues side by side: a dense step uses one core. The figures do not depend on it (each
  # run's arithmetic is the same however busy the machine is); only the speeds do.
  (
    for s in 0 1 2 3 4 5 6 7 8 9; do
      run "relu-$s" --model dense --code-activation relu --seed "$s"
      run "linear-$s" --model dense --code-activation linear --seed "$s"
    done
  ) &
  (
    for s in 0 1 2 3 4; do
      run "conv-$s" --model conv --seed "$s"
    done
    for s in 0 1 2 3 4; do
      run "dense64-$s" --model dense --latent 64 --seed "$s"
    done
  ) &
  wait
fi

# One row per report: after epoch 1 and the last epoch, test MSE and the run's lowest batch loss
# so far (min_train_loss), the epoch's mean loss, and the dead code numbers. A run stalls when its
# test MSE never goes below 0.066: it stays on the mean digit (0.0675).
python3 - "$OUT" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
rows = []
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    r = json.load(open(path))
    e = r["per_epoch"]
    first, last = e[0], e[-1]
    stalled = all(x["test_mse"] >= 0.066 for x in e)
    name = os.path.basename(path)[:-5]
    group, seed = name.rsplit("-", 1)
    rows.append((group, int(seed), first, last, stalled, r))
print("| run | seed | test MSE ep1 | min train loss ep1 | mean train loss ep1 | test MSE ep%d | min train loss ep%d | mean train loss ep%d | dead code numbers (ep1 -> last) | stalled |" % ((len(rows[0][5]["per_epoch"]),) * 3 if rows else (0, 0, 0)))
print("|---|---|---|---|---|---|---|---|---|---|")
for group, seed, first, last, stalled, r in sorted(rows, key=lambda t: (t[0], t[1])):
    print(f"| {group} | {seed} | {first['test_mse']:.4f} | {first['min_train_loss']:.4f} | {first['mean_train_loss']:.4f} | "
          f"{last['test_mse']:.4f} | {last['min_train_loss']:.4f} | {last['mean_train_loss']:.4f} | "
          f"{first['dead_code_units']} -> {last['dead_code_units']} of {last['code_units']} | {'yes' if stalled else 'no'} |")
groups = sorted({g for g, *_ in rows})
for g in groups:
    runs = [t for t in rows if t[0] == g]
    print(f"{g}: {sum(t[4] for t in runs)} of {len(runs)} runs stall; all code numbers dead at the end in "
          f"{sum(t[3]['dead_code_units'] == t[3]['code_units'] for t in runs)}")
PY
