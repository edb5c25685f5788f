"""Prometheus exposition, read from the live objects at scrape time (a registry per app, no globals)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from kis.gateway.service import GatewayService


class GatewayCollector(Collector):
    def __init__(self, service: GatewayService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        m = self.service.quote_metrics()
        counters = {
            "ws_messages": "KIS realtime data frames received",
            "ws_records": "KIS realtime records received",
            "rest_fallbacks": "quote answers served from KIS REST",
            "rest_calls": "KIS REST quote calls made",
            "rest_rate_limited": "quote requests refused for the REST rate limit",
            "ws_reconnect_count": "KIS WebSocket reconnects",
            "parse_failures": "realtime frames that failed to parse",
            "quote_requests": "quote requests answered or refused",
        }
        for key, doc in counters.items():
            yield CounterMetricFamily(f"kis_{key}", doc, value=float(m[key]))
        gauges = {
            "cached_symbols": "symbols with a realtime quote cached",
            "ws_slots_used": "KIS realtime registrations in use",
            "ws_slots_max": "KIS realtime registration cap",
            "stream_clients": "quote stream (SSE) clients",
            "fallback_ratio": "share of quote answers served from REST",
        }
        for key, doc in gauges.items():
            yield GaugeMetricFamily(f"kis_{key}", doc, value=float(m[key]))
        yield GaugeMetricFamily("kis_ws_connected", "1 when the KIS WebSocket is connected",
                                value=1.0 if m["ws_connected"] else 0.0)
        yield GaugeMetricFamily("kis_ws_heartbeat_fresh", "1 when the KIS WebSocket heartbeat is fresh",
                                value=1.0 if m["ws_heartbeat_fresh"] else 0.0)
        lease = self.service.rt.lease
        yield GaugeMetricFamily("kis_session_owner", "1 when this process owns the KIS session",
                                value=1.0 if lease and lease.is_owner else 0.0)


def make_registry(service: GatewayService) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(service))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
