#!/usr/bin/env bash
# The paper's CIFAR-10 experiments on one GPU machine, in one command with a time limit: what the GPU
# issues and the `gpu` workflow run. Works on a bare machine without network.
#
#   bash ci/gpu_reproduce.sh DATA OUT [BUDGET]
#
# DATA    CIFAR-10: a folder tree or .tar.gz (e.g. a copy of ../shared/data/cifar10-jpeg.tar.gz), or
#         "official" for torchvision's download
# OUT     folder for what to keep (at most 8 files of 16 MiB, 64 MiB in all, come back from a device
#         session): machine.txt, summary.txt, the benchmark's <date>Z-<device>.json (commit it under
#         data/benchmarks/), logs.tar.gz (benchmark.txt, preflight.json, the sweeps' logs), then
#         results.tar.part-* (run folders finished in this session, <dataset>/<budget>/<run>/ as
#         under data/results/: `cat` the parts into `tar x`) and checkpoints.tar.part-* (unfinished
#         runs and the compile cache, for the next session: RESUME) in the four parts of 15 MB left,
#         finished runs first
# BUDGET  quick (default) or full; smoke checks the script itself (with DEVICE=cpu, on any machine)
#
# In order, each step inside the time limit (finished runs are kept, unfinished ones checkpoint):
#   0. the preflight (python -m resnet_repro preflight): each fast path (whole-step CUDA graph, several
#      runs in one process, the compile cache of the last session) a few seconds against the plain
#      path; the ones that pass give the sweeps their options, the others are off for the session with
#      one line each in machine.txt (FAST=0 skips it: the plain paths, as before)
#   1. the throughput benchmark (ours, with and without the graph and compilation, against the common
#      DataLoader way, same GPU, same process), also as JSON
#   2. fig6 + fig7 + shortcuts, seed 0, at BUDGET: in one process AT_ONCE runs at a time if the
#      preflight passed that path, else PER_GPU processes at once on the GPU
#   3. shortcuts with seeds 0..SHORTCUT_SEEDS-1 at BUDGET
#   4. quick: fig1 + table6 at budget full with the time left (runs that cannot finish are not started);
#      full: table6 with 5 seeds
#
# Environment: MINUTES (whole script, default 9), PER_GPU (default 4), AT_ONCE (default 8),
# BENCH_ARCHS (default resnet56), FAST (default 1), SHORTCUT_SEEDS (default 3),
# RESUME (the OUT folder of an earlier session, carried along: its finished runs and checkpoints are
# unpacked first, so this session goes on where that one stopped), WHEELS (folder of wheels to install
# if imports fail, default .whl), RESULTS (default /tmp/gpu-results), RESNET_REPRO_COMMIT (the commit,
# where the copy has no .git), DEVICE (default cuda), BENCH_STEPS (timed steps per round, default 200).
#
# What one 15-minute session on an H200 showed (2026-11-27): 8 runs at once kept the GPU busy but
# each ran at 12-43 iterations/s (about 27k images/s in all), and compiling took 30-95 s per run.
set -uo pipefail
[ $# -ge 2 ] || { sed -n '2,38p' "$0"; exit 2; }
data=$1 out=$2 budget=${3:-quick}
case $budget in quick | full | smoke) ;; *) echo "BUDGET must be quick, full or smoke, got '$budget'" >&2; exit 2 ;; esac
device=${DEVICE:-cuda}
[ "$data" = official ] && data_flag=() || data_flag=(--data "$(realpath "$data")")
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out" && out=$(realpath "$out")
results=${RESULTS:-/tmp/gpu-results}
deadline=$((SECONDS + ${MINUTES:-9} * 60 - 45)) # 45 s kept for packing
python=${PYTHON:-python3}

if ! "$python" -c "import torch, torchvision, tqdm, pandas, PIL" 2>/dev/null; then
  echo "== installing wheels from ${WHEELS:-.whl}"
  "$python" -m pip install -q --no-index --no-deps --target /tmp/site "${WHEELS:-$repo/.whl}"/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$repo${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export RESNET_REPRO_CACHE=${RESNET_REPRO_CACHE:-/tmp/resnet_repro_cache}
# Each run is one process driving the GPU: it needs one CPU thread, and fewer compile workers than cores.
export OMP_NUM_THREADS=1 TORCHINDUCTOR_COMPILE_THREADS=${TORCHINDUCTOR_COMPILE_THREADS:-2}
cd "$repo" || exit 1

{
  date -u +"started %Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  "$python" -c "import torch; print('torch', torch.__version__, '| cuda', torch.version.cuda, '|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'NO CUDA')"
  echo "commit ${RESNET_REPRO_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
  echo "budget $budget, data $data, ${PER_GPU:-4} runs at once (${AT_ONCE:-8} in one process), limit ${MINUTES:-9} min"
} | tee "$out/machine.txt"

minutes_left() { # [SECONDS_TO_KEEP]: minutes to the deadline, less what later steps need
  awk "BEGIN { printf \"%.2f\", ($deadline - $SECONDS - ${1:-0}) / 60 }"
}
step() { # step NAME COMMAND...: runs it if time is left, appending the time it took to machine.txt
  local name=$1 began=$SECONDS status
  shift
  if [ $((deadline - SECONDS)) -lt 20 ]; then
    echo "== $name: skipped, no time left" | tee -a "$out/machine.txt"
    return 0
  fi
  echo "== $name ($(minutes_left) min left)"
  "$@"
  status=$?
  echo "$name: exit $status after $((SECONDS - began)) s" | tee -a "$out/machine.txt"
  return $status
}
fast_flags=() # the preflight's options for the sweeps (none: the plain paths)
sweep() { # sweep BUDGET SEEDS SECONDS_TO_KEEP EXPERIMENT...
  local sweep_budget=$1 seeds=$2 keep=$3 at_once=${PER_GPU:-4}
  shift 3
  [[ " ${fast_flags[*]} " == *" --in-process "* ]] && at_once=${AT_ONCE:-8}
  "$python" -m resnet_repro reproduce "$@" --budget "$sweep_budget" --seeds "$seeds" "${data_flag[@]}" \
    --out "$results" --device "$device" --per-gpu "$at_once" --minutes "$(minutes_left "$keep")" \
    "${fast_flags[@]}"
}

mkdir -p "$results/logs"
if command -v nvidia-smi >/dev/null; then # GPU load over the whole session, every 10 s
  nvidia-smi dmon -s um -d 10 >"$results/logs/gpu-utilization.txt" 2>&1 &
  monitor=$!
fi
if [ -n "${RESUME:-}" ]; then # first: the last session's compile cache is among its checkpoints
  echo "== resuming from $RESUME"
  [ -f "$RESUME/results.tar.gz" ] && tar xzf "$RESUME/results.tar.gz" -C "$results" # before parts
  compgen -G "$RESUME/results.tar.part-*" >/dev/null && cat "$RESUME"/results.tar.part-* | tar x -C "$results"
  compgen -G "$RESUME/checkpoints.tar.part-*" >/dev/null && cat "$RESUME"/checkpoints.tar.part-* | tar x -C "$results"
fi
# Runs finished before this point (resumed, or already in RESULTS) went back with an earlier session.
touch "$results/logs/session-start"
# torch.compile's caches, named by torch version and GPU: loaded by the preflight and the sweeps, saved
# by the sweeps in one process, and packed with the checkpoints for the next session.
cache=$("$python" -c "import sys; from resnet_repro.gpu.compile_cache import cache_file
from resnet_repro.runs.runtime import device_name, resolve_device
print(cache_file(sys.argv[1], device_name(resolve_device(sys.argv[2]))))" "$results" "$device")
if [ "${FAST:-1}" = 1 ]; then
  echo "== 0. preflight of the fast paths ($(minutes_left) min left)"
  began=$SECONDS
  [ "$budget" = smoke ] && size=(--arch resnet8 --steps 4) || size=()
  # The verdicts (one line per path) go to machine.txt through stderr, the sweep options to stdout.
  read -r -a fast_flags <<<"$(timeout 150 "$python" -m resnet_repro preflight --device "$device" "${size[@]}" \
    --compile-cache "$cache" --json "$results/logs/preflight.json" --flags 2> >(tee -a "$out/machine.txt" >&2))"
  echo "0. preflight: sweep options '${fast_flags[*]}' after $((SECONDS - began)) s" | tee -a "$out/machine.txt"
fi
step "decode the data once" "$python" -c "from resnet_repro.cifar.data import load_cifar10; import sys; \
print(load_cifar10(sys.argv[1] if sys.argv[1] != 'official' else None).identity)" "$data" || exit 1
bench_limit=$((deadline - SECONDS < 150 ? deadline - SECONDS : 150))
step "1. throughput benchmark" timeout "$bench_limit" "$python" benchmarks/train_throughput.py --device "$device" \
  --arch "${BENCH_ARCHS:-resnet56}" --steps "${BENCH_STEPS:-200}" --rounds 2 --warmup 20 "${data_flag[@]}" \
  --compile off,default --cuda-graph on,off --json "$out/" 2>&1 | tee "$out/benchmark.txt"
finished() { find "$results" -name run.json | wc -l; }
finished_before=$(finished)
step "2. fig6 fig7 shortcuts, seed 0, $budget" sweep "$budget" 1 0 fig6 fig7 shortcuts
first=$?
# A sweep where runs failed and none finished means something is broken: stop, so the rest of the
# time is not spent (runs resumed from RESUME count only if they finished here).
if [ $first -ne 0 ] && [ $first -ne 130 ] && [ "$(finished)" -eq "$finished_before" ]; then
  echo "every run failed: see the logs" | tee -a "$out/machine.txt"
else
  step "3. shortcuts, ${SHORTCUT_SEEDS:-3} seeds, $budget" sweep "$budget" "${SHORTCUT_SEEDS:-3}" 0 shortcuts
  if [ "$budget" = quick ]; then
    step "4. fig1 table6, full, with the time left" sweep full 1 0 fig1 table6
  else # the paper reports ResNet-110 as best and mean +- std of 5 runs
    step "4. table6, 5 seeds, $budget" sweep "$budget" 5 0 table6
  fi
fi

echo "== packing"
[ -n "${monitor:-}" ] && kill "$monitor" 2>/dev/null
"$python" -c "import sys, pandas; from resnet_repro.runs.folders import load_runs
pandas.set_option('display.width', 250)
runs = load_runs(sys.argv[1]).drop(columns=['path'])
print(runs.to_string(index=False) if len(runs) else 'no finished runs')" "$results" | tee "$out/summary.txt"
# What comes back is at most 8 files of 16 MiB: four small ones, then four parts of 15 MB shared by
# the runs finished in this session (weights included: 13 quick runs are about 12 MB, five ResNet-110
# at full 18 MB; never cut) and, in what is left, the unfinished runs' checkpoints and the compile
# cache, smallest first.
part=$((15 * 1024 * 1024)) parts_left=4
[ -f "$out/benchmark.txt" ] && mv "$out/benchmark.txt" "$results/logs/" 2>/dev/null
[ -d "$results/logs" ] && tar czf "$out/logs.tar.gz" -C "$results" logs
# Runs finished in this session only, without checkpoints or logs: exactly what data/results/ holds.
(cd "$results" && find . -name run.json -newer logs/session-start -printf '%h\n' | sort >/tmp/results.list)
if [ -s /tmp/results.list ]; then
  tar cf /tmp/results.tar -C "$results" -T /tmp/results.list
  split -b "$part" /tmp/results.tar "$out/results.tar.part-"
  parts_left=$((parts_left - $(compgen -G "$out/results.tar.part-*" | wc -l)))
  [ "$parts_left" -lt 0 ] && echo "WARNING: finished runs need more than 4 parts; some will not come back" |
    tee -a "$out/machine.txt"
  rm -f /tmp/results.tar
fi
room=$((parts_left * part))
# The next session resumes these with RESUME=<this OUT>.
(cd "$results" && find . \( -name checkpoint.pt -o -path "./compile-cache/*.bin" \) -printf '%s %p\n' | sort -n |
  awk -v room="$room" '{ total += $1 + 1024; if (total < room) print $2 }' >/tmp/checkpoints.list)
[ -s /tmp/checkpoints.list ] && tar cf - -C "$results" -T /tmp/checkpoints.list |
  split -b "$part" - "$out/checkpoints.tar.part-"
date -u +"ended %Y-%m-%dT%H:%M:%SZ, $SECONDS s" | tee -a "$out/machine.txt"
