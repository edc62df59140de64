"""The subprocess helper: a server that cannot start reports why, with its log."""

from __future__ import annotations

import pytest

from rationalrewards.testing.servers import free_port, start_server


def test_a_server_that_cannot_start_raises_with_its_log():
    with pytest.raises(RuntimeError, match="unknown backend") as info:
        start_server("nonsense:thing", startup_timeout=120)
    assert "exited before answering /health" in str(info.value)


def test_free_port_is_bindable():
    import socket

    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # raises if the port is taken
        assert s.getsockname()[1] == port
