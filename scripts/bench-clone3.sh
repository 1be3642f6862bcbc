#!/usr/bin/env bash
# What entering the job cgroup costs: the `cgroup.procs` write (older wattprint, or the
# fallback) against `clone3(CLONE_INTO_CGROUP)`, as syscall durations from `strace -f -T`.
#
# Usage (root): bash scripts/bench-clone3.sh [BINARY ...]   (default: target/release/wattprint)
# Each binary runs `run --no-store -- true` 20 times in a private mount namespace whose
# /sys/fs/cgroup is a fresh tmpfs with a cgroup v2 hierarchy at unified/ (the host's mounts are
# untouched). Prints the median and max of each syscall of interest, per binary.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "bench-clone3.sh: needs root (mount namespace, cgroup v2 mount)" >&2; exit 1; }
command -v strace >/dev/null || apt-get install -y -q strace >/dev/null
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(target/release/wattprint)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for i in "${!bins[@]}"; do
  unshare -m sh -c '
    mount --make-rprivate / && mount -t tmpfs none /sys/fs/cgroup &&
    mkdir /sys/fs/cgroup/unified && mount -t cgroup2 none /sys/fs/cgroup/unified || exit 1
    for n in $(seq 20); do
      strace -f -T -e trace=write,mkdir,rmdir,clone3 -o "$2/$1.$n" "$3" run --no-store -- true >/dev/null 2>&1
    done' sh "$i" "$out" "${bins[$i]}"
done
python3 - "$out" "${bins[@]}" <<'PY'
import glob, re, statistics, sys
out, bins = sys.argv[1], sys.argv[2:]
for i, b in enumerate(bins):
    res = {}
    for f in glob.glob(f"{out}/{i}.*"):
        for line in open(f):
            m = re.search(r"<([\d.]+)>$", line.strip())
            if not m:
                continue
            if "mkdir(" in line and "wattprint-" in line:
                k = "mkdir job cgroup"
            elif "rmdir(" in line:
                k = "rmdir job cgroup"
            elif "CLONE_INTO_CGROUP" in line:
                k = "clone3(CLONE_INTO_CGROUP)"
            elif re.search(r'write\(\d+, "0", 1\)', line):
                k = "write cgroup.procs"
            else:
                continue
            res.setdefault(k, []).append(float(m.group(1)) * 1e3)
    print(b)
    for k, v in sorted(res.items()):
        print(f"  {k:28s} n={len(v):3d} median {statistics.median(v):7.3f} ms  max {max(v):7.3f} ms")
PY
