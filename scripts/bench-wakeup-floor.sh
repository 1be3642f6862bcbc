#!/usr/bin/env bash
# The floor under "poll 4 RAPL zones every 1 ms within 1 % of a core": what a minimal C loop
# costs on this machine when it only wakes every 1 ms (clock_nanosleep, TIMER_ABSTIME), and
# when it also preads 4 small files each time, as CPU per wake-up (getrusage). Any poller in
# any language pays at least this; compare with the meter's figure from scripts/bench-run.sh.
#
# Usage: bash scripts/bench-wakeup-floor.sh [WAKEUPS]   (default 5000; needs gcc)
set -euo pipefail
n=${1:-5000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/loop.c" <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int n = atoi(argv[1]), nfiles = argc - 2, fds[8];
  char buf[64];
  for (int i = 0; i < nfiles && i < 8; i++) fds[i] = open(argv[2 + i], O_RDONLY);
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (int k = 0; k < n; k++) {
    next.tv_nsec += 1000000;
    if (next.tv_nsec >= 1000000000) { next.tv_nsec -= 1000000000; next.tv_sec++; }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    for (int i = 0; i < nfiles && i < 8; i++) pread(fds[i], buf, sizeof buf, 0);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
  printf("%5d wake-ups, %d files read each: %6.2f us CPU per wake-up = %5.2f %% of a core at 1 ms\n",
         n, nfiles, cpu / n * 1e6, cpu / n * 1e6 / 10);
  return 0;
}
C
gcc -O2 -o "$dir/loop" "$dir/loop.c"
for f in 1 2 3 4; do echo 123456789012 >"$dir/energy_uj.$f"; done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in 1 2 3; do
  "$dir/loop" "$n"
  "$dir/loop" "$n" "$dir"/energy_uj.{1,2,3,4}
done
