"""A service's metrics on a port of its own, served by prometheus-client's threaded server.

For the Starlette services (gateway, tenant service): a scrape is answered in the
server's threads, so it never waits on, or holds, the service's event loop, and the
public API's port never serves metrics.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server


class MetricsServer:
    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        # Binding fails loudly (port in use): a service must not run unobserved.
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
