#!/usr/bin/env python3
"""Folds `perf script` output (call graphs) into shares of named frames, for
bench/store-perf.sh's profiles (docs/benchmarks.md, store8).

  perf script -i OUT.data | bench/perf-blame.py [THREAD] [FRAME...]

Each sample of THREAD (a comm, `-` for all) is counted once under the first of the FRAMEs
(substrings of a frame's symbol) its stack passes through, in the order given, then
within it under the first of a second list (after `--`) it passes through.
Prints samples and percent of all samples of all threads."""
import sys, collections

args = sys.argv[1:]
thread = args.pop(0) if args and args[0] != '-' else None
if args and args[0] == '-':
    args.pop(0)
if '--' in args:
    i = args.index('--'); outer, inner = args[:i], args[i + 1:]
else:
    outer, inner = args, []
total = 0
counts = collections.Counter()
by_comm = collections.Counter()

def flush(comm, frames):
    global total
    if comm is None:
        return
    total += 1
    by_comm[comm] += 1
    if thread and comm != thread:
        return
    # frames: innermost first
    o = next((name for name in outer if any(name in f for f in frames)), '(other)')
    n = next((name for name in inner if any(name in f for f in frames)), '') if inner else ''
    counts[(o, n)] += 1

comm, frames = None, []
for line in sys.stdin:
    if not line.strip():
        flush(comm, frames); comm, frames = None, []
        continue
    if not line.startswith((' ', '\t')):
        flush(comm, frames)
        comm, frames = line.split()[0], []
    else:
        parts = line.strip().split(None, 1)
        frames.append(parts[1] if len(parts) > 1 else parts[0])
flush(comm, frames)
print(f"samples {total}: " + ", ".join(f"{c} {n}" for c, n in by_comm.most_common()))
for (o, n), c in sorted(counts.items(), key=lambda kv: -kv[1]):
    print(f"{c:7d} {100 * c / total:6.2f}%  {o}{' / ' + n if n else ''}")
