# Shared helpers of scripts/test.d/prometheus.sh and dashboard.sh (sourced, not run).

# Install Debian packages that are missing (apt-get update only when a package has no
# install candidate), as root or through sudo.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  for p in "${missing[@]}"; do
    if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      echo "-- apt-get update (no candidate for $p)"
      $sudo apt-get update -qq
      break
    fi
  done
  echo "-- installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A fake powercap tree with one package zone at $1 (energy_uj starting at $2).
fake_rapl_tree() {
  local z="$1/class/powercap/intel-rapl:0"
  mkdir -p "$z"
  echo package-0 >"$z/name"
  printf '%015d\n' "$2" >"$z/energy_uj"
  echo 262143328850 >"$z/max_energy_range_uj"
}

# Advance the tree's counter by $2 microjoules every 0.1 s, forever (run in the background).
# Written in place at a fixed width: the sensor keeps the file open and re-reads offset 0.
advance_rapl() {
  local f="$1/class/powercap/intel-rapl:0/energy_uj" uj
  uj=$((10#$(cat "$f")))
  while true; do
    uj=$((uj + $2))
    printf '%015d\n' "$uj" | dd of="$f" conv=notrunc status=none
    sleep 0.1
  done
}

# Wait (at most $2 s) until URL $1 answers.
wait_http() {
  local i
  for i in $(seq 1 $(($2 * 10))); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no answer from $1 within $2 s" >&2
  return 1
}

# The wattprint binary, built if needed.
wattprint_bin() {
  cargo build -q -p wattprint-cli --locked >&2 || return 1
  local dir
  dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  echo "$dir/debug/wattprint"
}
