#!/usr/bin/env bash
# The Helm chart in deploy/helm/wattprint-agent: `helm lint` and `helm template` where helm is
# installed. Helm is no Debian package here, so otherwise the chart is rendered by the small
# stand-in below, which knows only the template constructs the chart uses (values, release,
# if/with/end, toYaml | nindent) and fails on any other; every rendered document must parse
# as YAML and carry what the chart promises (downward-API labels, limits, ServiceMonitor).
# Usage: bash scripts/test.d/helm.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CHART=deploy/helm/wattprint-agent
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if command -v helm >/dev/null; then
  helm lint "$CHART"
  helm template wattprint "$CHART" --namespace monitoring >"$TMP/rendered.yaml"
  how="helm template"
else
  echo "-- helm is not installed (no Debian package): rendering with the stand-in, not linted by helm"
  python3 - "$CHART" >"$TMP/rendered.yaml" <<'PY'
import os, re, sys, yaml
chart = sys.argv[1]
values = yaml.safe_load(open(f"{chart}/values.yaml"))
release = {"Name": "wattprint", "Namespace": "monitoring"}

def lookup(path, dot):
    if path == ".":
        return dot
    parts = path.lstrip(".").split(".")
    if parts[0] == "Values":
        v = values
        parts = parts[1:]
    elif parts[0] == "Release":
        return release[parts[1]]
    else:
        v = dot
    for p in parts:
        v = v[p]
    return v

def expr(e, dot):
    e = e.strip()
    m = re.fullmatch(r"toYaml (\S+) \| nindent (\d+)", e)
    if m:
        text = yaml.safe_dump(lookup(m[1], dot), default_flow_style=False).rstrip("\n")
        pad = " " * int(m[2])
        return "\n" + "\n".join(pad + l for l in text.splitlines())
    if re.fullmatch(r"\.[A-Za-z.]+", e):
        return str(lookup(e, dot)).lower() if isinstance(lookup(e, dot), bool) else str(lookup(e, dot))
    raise SystemExit(f"the stand-in does not know {{{{ {e} }}}}: install helm or extend scripts/test.d/helm.sh")

def render(src):
    # Whitespace trimming of `{{-` and `-}}` as Go templates do.
    src = re.sub(r"\s*\{\{-", "{{", src)
    src = re.sub(r"-\}\}\s*", "}}", src)
    out, stack = [], [(True, values)]
    pos = 0
    for m in re.finditer(r"\{\{(.*?)\}\}", src, re.S):
        if all(s[0] for s in stack):
            out.append(src[pos:m.start()])
        pos = m.end()
        t = m[1].strip()
        if t.startswith("if ") or t.startswith("with "):
            v = lookup(t.split(None, 1)[1], stack[-1][1]) if all(s[0] for s in stack) else None
            stack.append((bool(v), v if t.startswith("with ") else stack[-1][1]))
        elif t == "end":
            stack.pop()
        elif all(s[0] for s in stack):
            out.append(expr(t, stack[-1][1]))
    out.append(src[pos:])
    return "".join(out)

docs = []
for name in sorted(os.listdir(f"{chart}/templates")):
    docs.append(f"# Source: {name}\n" + render(open(f"{chart}/templates/{name}").read()))
print("\n---\n".join(docs))
PY
  how="the stand-in renderer"
fi

python3 - "$TMP/rendered.yaml" "$CHART" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
yaml.safe_load(open(f"{sys.argv[2]}/Chart.yaml"))
kinds = {d["kind"]: d for d in docs}
assert set(kinds) >= {"DaemonSet", "Service", "ServiceMonitor"}, list(kinds)
c = kinds["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]
env = {e["name"]: e for e in c["env"]}
for k, path in (("POD_UID", "metadata.uid"), ("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
    assert env[k]["valueFrom"]["fieldRef"]["fieldPath"] == path, env[k]
assert c["resources"]["limits"]["cpu"] and c["resources"]["limits"]["memory"], c["resources"]
assert "--workloads" in c["args"] and any(a.startswith("--spool=") for a in c["args"]), c["args"]
ep = kinds["ServiceMonitor"]["spec"]["endpoints"][0]
assert ep["port"] == "metrics" and ep["authorization"]["credentials"]["key"] == "token", ep
print(f"  {len(docs)} documents: {', '.join(sorted(kinds))}")
PY
# Every rendered built-in resource is validated, strictly (unknown fields refused), against
# the Kubernetes OpenAPI schemas that PyPI's kubernetes-validate bundles (offline). The
# ServiceMonitor is the Prometheus Operator's CRD, which it has no schema for: its fields are
# checked above.
PY=${PYTHON:-python3}
WANT="kubernetes-validate==1.37.0 pyyaml==6.0.3"
VENV=target/helm-venv
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$VENV/.wattprint-tools" 2>/dev/null)" != "$WANT" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $WANT
  echo "$WANT" >"$VENV/.wattprint-tools"
fi
"$VENV/bin/python" - "$TMP/rendered.yaml" <<'PY'
import sys, yaml, kubernetes_validate as kv
version = "1.33.0"  # a Kubernetes release still supported on 2026-11-30
checked = 0
for d in yaml.safe_load_all(open(sys.argv[1])):
    if not d or d.get("kind") == "ServiceMonitor":
        continue
    try:
        kv.validate(d, version, strict=True)
    except kv.ValidationError as e:
        raise SystemExit(f"helm.sh: {d['kind']} {d['metadata']['name']} is not a valid Kubernetes {version} object: {e.message} at {'/'.join(map(str, e.path))}")
    checked += 1
assert checked >= 2, checked
print(f"  {checked} built-in resources valid against the Kubernetes {version} schemas (strict)")
PY
echo "helm.sh: the chart renders ($how) with the downward-API labels, limits and a ServiceMonitor; built-in kinds schema-valid"
