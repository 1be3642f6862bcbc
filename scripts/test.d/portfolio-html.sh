#!/usr/bin/env bash
# Browser test of the portfolio report: imports the provider fixtures of examples/portfolio/
# and a measured run into a temporary history, writes `wattprint report --format portfolio
# -o portfolio.html`, renders it in headless Chromium (Debian `chromium`, installed if
# missing) as a screenshot and as a PDF (`--print-to-pdf`), and checks both: the headline
# figures come first (with the portfolio's MWh and what carries none), the month x tier chart
# has its axes, the charts by month, provider and tier were drawn, the overhead score per tier
# and the methodology are there, runs are named by model, every line carries its tier, and
# the PDF has pages.
# Usage: bash scripts/test.d/portfolio-html.sh [KEEP_DIR]  (KEEP_DIR keeps the PNG and PDF)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/agent-test.sh

apt_install chromium
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || { echo "portfolio-html.sh: chromium not installed" >&2; exit 1; }
WATTPRINT=$(wattprint_bin)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export WATTPRINT_DB="$TMP/history.sqlite"

for f in gcp-carbon-footprint.csv gcp-carbon-footprint.ndjson aws-carbon-emissions.csv \
         aws-sustainability-api.json azure-monthly-summary.json; do
  "$WATTPRINT" import "examples/portfolio/$f" 2>/dev/null
done
printf '# wattprint trace v1\n# id: onprem\n# started_at: 2026-03-10T10:00:00Z\nt_s,domain,kind,unit,value\n0,gpu-0,gpu,W,500\n36000,gpu-0,gpu,W,500\n' >"$TMP/t.csv"
"$WATTPRINT" import "$TMP/t.csv" --zone FR --label team=platform 2>/dev/null
# A run inside GCP project ml-prod in February (detail of the export's figure), named by model.
printf '# wattprint trace v1\n# id: inside\n# started_at: 2026-02-10T10:00:00Z\nt_s,domain,kind,unit,value\n0,gpu-0,gpu,W,300\n3600,gpu-0,gpu,W,300\n' >"$TMP/inside.csv"
"$WATTPRINT" import "$TMP/inside.csv" --zone gcp:europe-west1 --label project=ml-prod --label model=llama-8b 2>/dev/null
# A FOCUS bill with no carbon: 1,000 GB of transfer in us-east-1, estimated by the CCF method.
printf 'BillingAccountId,ChargeCategory,ChargeDescription,ChargePeriodStart,ConsumedQuantity,ConsumedUnit,ProviderName,RegionId,ServiceCategory,ServiceName,SubAccountId,BilledCost\nB,Usage,Data transfer out to the internet,2026-05-10 00:00:00,1000,GB,AWS,us-east-1,Networking,Amazon Virtual Private Cloud,333333333333,90\n' >"$TMP/focus.csv"
"$WATTPRINT" import "$TMP/focus.csv" 2>/dev/null
"$WATTPRINT" report --format portfolio --period 2026 -o "$TMP/portfolio.html" 2>/dev/null

chrome() {
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage \
    --user-data-dir="$TMP/profile" --hide-scrollbars "$@" 2>>"$TMP/chromium.log" || {
    echo "portfolio-html.sh: chromium failed" >&2; tail -20 "$TMP/chromium.log" >&2; exit 1; }
}
chrome --dump-dom "file://$TMP/portfolio.html" >"$TMP/dom.html"
chrome --window-size=1000,5000 --screenshot="$TMP/full.png" "file://$TMP/portfolio.html" >/dev/null
chrome --window-size=1000,1600 --screenshot="$TMP/shot.png" "file://$TMP/portfolio.html" >/dev/null
chrome --no-pdf-header-footer --print-to-pdf="$TMP/portfolio.pdf" "file://$TMP/portfolio.html" >/dev/null

python3 - "$TMP/dom.html" "$TMP/shot.png" "$TMP/portfolio.pdf" <<'PY'
import re, sys
dom = open(sys.argv[1], encoding="utf-8").read()
first_table = re.search(r'data-table="([a-z]+)"', dom).group(1)
assert first_table == "headline", f"the page opens with {first_table}, not the headline figures"
# 2,202.25 kg of provider figures + 0.22 g measured in FR + 311.06 g estimated.
assert "Location-based</td><td class=\"n\">2.203 tCO2e" in dom, "headline location-based total"
energy = re.search(r"Energy \(facility\)</td><td class=\"n\">([^<]*)</td>", dom).group(1)
assert "MWh (measured" in energy and "provider-reported line(s) carry no energy" in energy, energy
for section in ('data-table="overhead"', 'data-section="methodology"', "Data-quality tiers",
                "Nothing counted twice", "Apache-2.0", "eGRID2023", "series break(s)"):
    assert section in dom, section
stack = re.search(r'<svg[^>]*data-chart="month-tier".*?</svg>', dom, re.S).group(0)
assert ">location-based tCO2e</text>" in stack and ">month</text>" in stack, "axes of the month x tier chart"
assert 'data-tier="estimate"' in stack and 'data-tier="provider-reported"' in stack, stack[:300]
assert "model=llama-8b" in dom, "the measured run is named by its model, not its id"
charts = re.findall(r'data-chart="([a-z-]+)"', dom)
for c in ("month", "provider", "tier"):
    assert c in charts, charts
lines = re.search(r'data-table="lines".*?</table>', dom, re.S).group(0)
rows = lines.count("<tr>") - 1
tiers = re.findall(r"<tr><td>(measured|provider-reported|estimate \(CCF method\))</td>", lines)
assert rows > 0 and len(tiers) == rows, (rows, len(tiers))
png = open(sys.argv[2], "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000, "screenshot"
pdf = open(sys.argv[3], "rb").read()
pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
assert pdf[:5] == b"%PDF-" and pages >= 1, pages
print(f"  portfolio rendered: charts {charts}, {rows} lines each with its tier, PDF {pages} page(s)")
PY
if [ -n "${1:-}" ]; then mkdir -p "$1" && cp "$TMP/shot.png" "$TMP/full.png" "$TMP/portfolio.pdf" "$1/"; fi
echo "portfolio-html.sh: the portfolio report rendered in headless Chromium (screenshot and PDF)"
