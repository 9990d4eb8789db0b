from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.servers import (
    Gateway,
    Upstream,
    hybrid_config,
    start_gateway,
    start_llama_server,
    stop,
)


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    server = start_llama_server(tmp_path_factory.mktemp("upstream"))
    yield server
    stop(server.proc)


@pytest.fixture(scope="module")
def gateway(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path_factory.mktemp("gateway"), hybrid_config(upstream.base_url))
    yield gw
    stop(gw.proc)
