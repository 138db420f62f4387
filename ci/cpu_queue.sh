#!/usr/bin/env bash
# Starts a training queue in the background from a checkout of this commit outside the work tree, so
# editing the work tree never changes the code under a running run. The queue's command runs in that
# checkout (with the Python of $VENV), its output goes to <logs>/<name>.log, and the command line and
# process id are printed: stop it with `kill -INT <pid>` (the trainer saves its checkpoint; the same
# command resumes it).
#
#   bash ci/cpu_queue.sh quick -- python -m resnet_repro reproduce fig6 shortcuts fig7 --budget quick \
#       --data ../shared/data/cifar10-jpeg.tar.gz --out ../runs/queue
#
# The command runs in the checkout: its paths inside the tree are the checkout's (this commit's files), and
# paths that leave it (../...) are taken from the work tree's root. Give --out a folder outside the work
# tree; several queues side by side each take their share of the cores with OMP_NUM_THREADS.
# QUEUE_ROOT (default: the folder beside this checkout named runs/) holds the checkouts (checkout-<commit>)
# and the logs; VENV (default: $QUEUE_ROOT/venv) is made and filled on first use; QUEUE_NICE (default -5)
# is the scheduling priority of the queue's session against other sessions' work (root only).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
if [ $# -lt 3 ] || [ "$2" != "--" ]; then
  echo "usage: bash ci/cpu_queue.sh NAME -- COMMAND [ARG...]   (see the top of ci/cpu_queue.sh)" >&2
  exit 2
fi
name=$1
shift 2
root=${QUEUE_ROOT:-$(dirname "$repo")/runs}
venv=${VENV:-$root/venv}
commit=$(git -C "$repo" rev-parse HEAD)
checkout="$root/checkout-${commit:0:12}"
mkdir -p "$root/logs"
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "note: the work tree has uncommitted changes; the queue runs the commit ${commit:0:12} without them"
fi
[ -d "$checkout" ] || git -C "$repo" worktree add --detach "$checkout" "$commit" >/dev/null
if [ ! -x "$venv/bin/python" ]; then
  echo "== making $venv (first use)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$repo/requirements.txt" -c "$repo/ci/constraints.txt"
fi

# The command runs in the checkout, whose tree is this commit's: paths inside it stay as they are, paths
# that leave it (../...) are taken from the work tree's root.
args=()
for arg in "$@"; do
  if [[ "$arg" == ../* ]]; then arg="$(cd "$repo" && realpath -m "$arg")"; fi
  args+=("$arg")
done
log="$root/logs/$name.log"
(
  cd "$checkout"
  export PATH="$venv/bin:$PATH" PYTHONPATH="$checkout"
  exec setsid "${args[@]}" >"$log" 2>&1 </dev/null
) &
pid=$!
# Sessions get equal shares of the CPU whatever their nice value (autogroups): lift the queue's, once
# setsid has given it a session of its own.
ours=$(cat /proc/$$/autogroup 2>/dev/null || true)
for _ in $(seq 50); do
  [ "$(cat "/proc/$pid/autogroup" 2>/dev/null || true)" != "$ours" ] && break
  sleep 0.1
done
if [ -w "/proc/$pid/autogroup" ] && [ "$(cat "/proc/$pid/autogroup")" != "$ours" ]; then
  echo "${QUEUE_NICE:--5}" >"/proc/$pid/autogroup" 2>/dev/null || true
fi
echo "queue $name: pid $pid, commit ${commit:0:12} in $checkout, log $log"
echo "  ${args[*]}"
echo "stop it with: kill -INT $pid"
