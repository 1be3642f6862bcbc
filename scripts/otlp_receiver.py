"""A real OTLP/HTTP metrics receiver for scripts/test.d/otlp.sh.

Decodes every POST to /v1/metrics with the OpenTelemetry project's own protobuf definitions
(PyPI `opentelemetry-proto`): a JSON body must parse strictly (no unknown field) into an
ExportMetricsServiceRequest, after gzip when `Content-Encoding: gzip`. The first request is
answered 503 with `Retry-After: 1` (the sender must retry the same snapshot); the others 200.
After two accepted requests it writes what it saw as JSON to the file given and exits.

Usage: python otlp_receiver.py PORT OUT_FILE
"""

import gzip
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

PORT, OUT = int(sys.argv[1]), sys.argv[2]
seen = {"requests": [], "errors": []}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        try:
            req = json_format.Parse(body.decode(), ExportMetricsServiceRequest())
        except Exception as e:  # a schema error is the test's failure, reported
            seen["errors"].append(str(e))
            self.send_response(400)
            self.end_headers()
            return
        metrics = {}
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    points = m.sum.data_points if m.HasField("sum") else m.gauge.data_points
                    metrics[m.name] = {
                        "unit": m.unit,
                        "kind": "sum" if m.HasField("sum") else "gauge",
                        "values": [p.as_double for p in points],
                    }
        seen["requests"].append(
            {
                "authorization": self.headers.get("authorization"),
                "encoding": self.headers.get("content-encoding"),
                "digest": hash(body),
                "metrics": metrics,
            }
        )
        if len(seen["requests"]) == 1:
            self.send_response(503)
            self.send_header("Retry-After", "1")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", PORT), Handler)
server.timeout = 60
while len(seen["requests"]) < 3 and not seen["errors"]:
    server.handle_request()
with open(OUT, "w") as f:
    json.dump(seen, f)
