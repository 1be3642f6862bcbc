#!/usr/bin/env bash
# Browser test of the HTML report: imports a two-GPU nvidia-smi log into a temporary history,
# writes `wattprint report -o report.html`, renders it in headless Chromium (Debian
# `chromium`, installed if missing), and checks the screenshot: the power chart's lines were
# drawn in each domain's colour, and the DOM Chromium parsed holds the three SVG charts.
# Usage: bash scripts/test.d/report-html.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/agent-test.sh

apt_install chromium
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "report-html.sh: chromium not installed" >&2; exit 1; }
WATTPRINT=$(wattprint_bin)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export WATTPRINT_DB="$TMP/history.sqlite"

python3 - "$TMP/gpu.csv" <<'PY'
import math, sys
with open(sys.argv[1], "w") as f:
    f.write("timestamp, index, name, power.draw [W]\n")
    for s in range(120):
        for gpu, base in ((0, 300.0), (1, 120.0)):
            w = base + 80.0 * math.sin(s / 10.0 + gpu)
            f.write(f"2026/03/01 10:{s // 60:02d}:{s % 60:02d}.000, {gpu}, NVIDIA H100 80GB HBM3, {w:.2f} W\n")
PY
"$WATTPRINT" import "$TMP/gpu.csv" --zone FR 2>/dev/null
"$WATTPRINT" report -o "$TMP/report.html" 2>/dev/null

chrome() {
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage \
    --user-data-dir="$TMP/profile" --hide-scrollbars "$@" 2>>"$TMP/chromium.log" || {
    echo "report-html.sh: chromium failed" >&2; tail -20 "$TMP/chromium.log" >&2; exit 1; }
}
chrome --dump-dom "file://$TMP/report.html" >"$TMP/dom.html"
chrome --window-size=1000,1400 --screenshot="$TMP/shot.png" "file://$TMP/report.html" >/dev/null

python3 - "$TMP/dom.html" "$TMP/shot.png" <<'PY'
import re, struct, sys, zlib
dom = open(sys.argv[1], encoding="utf-8").read()
charts = re.findall(r'data-chart="([a-z-]+)"', dom)
assert charts == ["power", "energy", "carbon"], charts
assert len(re.findall(r"<polyline", dom)) == 2, "one power line per GPU"

def png_pixels(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, prev, rows, i = zlib.decompress(idat), w * bpp, None, [], 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x] if prev else 0
            c = prev[x - bpp] if prev and x >= bpp else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line)); prev = line
    return rows, bpp

rows, bpp = png_pixels(sys.argv[2])
def count(rgb, tol=40):
    n = 0
    for r in rows:
        for x in range(0, len(r), bpp):
            if all(abs(r[x + k] - rgb[k]) <= tol for k in range(3)):
                n += 1
    return n
blue, orange = count((0x1f, 0x77, 0xb4)), count((0xff, 0x7f, 0x0e))
assert blue > 200 and orange > 200, f"chart colours barely drawn: blue {blue}, orange {orange} pixels"
print(f"  report rendered: charts {charts}, {blue} px of gpu-0's colour, {orange} px of gpu-1's")
PY
echo "report-html.sh: the HTML report rendered its SVG charts in headless Chromium"
