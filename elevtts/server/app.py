"""Where the CLI and older code import the server from: the transport's entry points, unchanged."""

from __future__ import annotations

from elevtts.server.config import ServerConfig
from elevtts.server.transport import StreamServer, serve_forever, server_url, start_server

__all__ = ["ServerConfig", "StreamServer", "serve_forever", "server_url", "start_server"]
