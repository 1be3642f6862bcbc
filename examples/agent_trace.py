"""One agent task as a real OpenTelemetry SDK trace, sent to `wattprint agent` over OTLP/HTTP.

    pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http
    wattprint agent --settle-lag 2s &
    python3 examples/agent_trace.py            # prints the task's energy per span

The task is one `invoke_agent` span over three LLM calls (`chat`) and two tool calls
(`execute_tool`), with the GenAI semantic conventions' attributes. Each call here only
sleeps: point it at a real model to meter real work. The agent answers
`GET /v1/traces/{trace_id}` with energy and carbon on every span, rolled up the tree.
"""

import json
import os
import sys
import time
import urllib.request

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

AGENT = os.environ.get("WATTPRINT_AGENT", "http://127.0.0.1:9464")


def main() -> int:
    provider = TracerProvider(resource=Resource.create({"service.name": "demo-agent"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{AGENT}/v1/traces"))
    )
    tracer = provider.get_tracer("wattprint.example")
    with tracer.start_as_current_span("invoke_agent planner") as task:
        task.set_attribute("gen_ai.operation.name", "invoke_agent")
        for step in range(3):
            with tracer.start_as_current_span("chat llama") as call:
                call.set_attribute("gen_ai.operation.name", "chat")
                call.set_attribute("gen_ai.request.model", "llama-3.1-8b")
                call.set_attribute("gen_ai.usage.input_tokens", 120)
                time.sleep(0.15)
                call.set_attribute("gen_ai.usage.output_tokens", 40 + 10 * step)
            if step < 2:
                with tracer.start_as_current_span("execute_tool search") as tool:
                    tool.set_attribute("gen_ai.operation.name", "execute_tool")
                    time.sleep(0.05)
        trace_id = format(task.get_span_context().trace_id, "032x")
    provider.shutdown()
    deadline = time.time() + 30
    while True:
        with urllib.request.urlopen(f"{AGENT}/v1/traces/{trace_id}") as r:
            doc = json.load(r)
        if doc["status"] == "settled" or time.time() > deadline:
            break
        time.sleep(0.2)
    print(json.dumps(doc, indent=1))
    return 0 if doc["status"] == "settled" else 1


if __name__ == "__main__":
    sys.exit(main())
