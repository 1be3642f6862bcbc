"""A real OTLP/HTTP receiver (metrics and traces) for scripts/test.d/otlp.sh.

Decodes every POST with the OpenTelemetry project's own protobuf definitions (PyPI
`opentelemetry-proto`), after gzip when `Content-Encoding: gzip`:

- `/v1/metrics`: a JSON body must parse strictly (no unknown field) into an
  ExportMetricsServiceRequest;
- `/v1/traces`: a protobuf body (`Content-Type: application/x-protobuf`) must parse into an
  ExportTraceServiceRequest.

The first request of each signal is answered 503 with `Retry-After: 1` (the sender must retry
the same batch); the others 200. `GET /seen` answers what was seen so far, as JSON; the
receiver stops after 120 s, or at `GET /stop`.

Usage: python otlp_receiver.py PORT
"""

import gzip
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

PORT = int(sys.argv[1])
seen = {"requests": [], "traces": [], "errors": []}
stop = False


def value(v):
    """An AnyValue as a Python value."""
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def attributes(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


def metrics_of(req):
    metrics = {}
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                points = m.sum.data_points if m.HasField("sum") else m.gauge.data_points
                metrics[m.name] = {
                    "unit": m.unit,
                    "kind": "sum" if m.HasField("sum") else "gauge",
                    "monotonic": m.sum.is_monotonic if m.HasField("sum") else None,
                    "values": [p.as_double for p in points],
                    "attributes": [attributes(p.attributes) for p in points],
                }
    return metrics


def spans_of(req):
    spans = []
    for rs in req.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append(
                    {
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "name": s.name,
                        "kind": s.kind,
                        "start": s.start_time_unix_nano,
                        "end": s.end_time_unix_nano,
                        "attributes": attributes(s.attributes),
                        "service": resource.get("service.name"),
                        "scope": ss.scope.name,
                    }
                )
    return spans


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body=b"", retry_after=None):
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        global stop
        if self.path == "/stop":
            stop = True
        self.answer(200, json.dumps(seen).encode())

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        common = {
            "authorization": self.headers.get("authorization"),
            "encoding": self.headers.get("content-encoding"),
            "content_type": self.headers.get("content-type"),
            "digest": hash(body),
        }
        try:
            if self.path == "/v1/metrics":
                req = json_format.Parse(body.decode(), ExportMetricsServiceRequest())
                log = seen["requests"]
                log.append(dict(common, metrics=metrics_of(req)))
            elif self.path == "/v1/traces":
                req = ExportTraceServiceRequest.FromString(body)
                log = seen["traces"]
                log.append(dict(common, spans=spans_of(req)))
            else:
                raise ValueError("unexpected path %s" % self.path)
        except Exception as e:  # a schema error is the test's failure, reported
            seen["errors"].append("%s: %s" % (self.path, e))
            self.answer(400)
            return
        if len(log) == 1:
            self.answer(503, retry_after="1")
        else:
            self.answer(200)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", PORT), Handler)
server.timeout = 1
deadline = time.time() + 120
while not stop and time.time() < deadline:
    server.handle_request()
