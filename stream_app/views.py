"""The worker's web views: /metrics for Prometheus, /health for a supervisor, /ready for a load balancer."""

from __future__ import annotations

import faust
from faust.web import Request, Response, View
from prometheus_client import generate_latest

from stream_app.state import ScorerState

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4"


def register_views(app: faust.App, state: ScorerState) -> None:
    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            # aiohttp takes the charset apart from the content type
            return self.bytes(generate_latest(state.metrics.registry), content_type=PROMETHEUS_CONTENT_TYPE)

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            report = state.health()
            return self.json(report, status=200 if report["status"] == "alive" else 503)

    @app.page("/ready")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
            health = state.health()
            ready = bool(assigned) and health["status"] == "alive" and not state.missing_topics
            body = {"ready": ready, "model_version": state.version, "partitions": assigned, "health": health}
            if state.lists is not None:
                lists = state.lists
                body["lists"] = {"entries": len(lists.table), "loaded": lists.loaded, "error": lists.last_error}
            return self.json(body, status=200 if ready else 503)
