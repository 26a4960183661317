"""Where the CLI and older code import the server from: the transport's entry points, unchanged."""

from __future__ import annotations

from elevtts.server.config import ServerConfig
from elevtts.server.http import Shutdown, serve_forever, server_url, start_server
from elevtts.server.state import StreamServer

__all__ = ["ServerConfig", "Shutdown", "StreamServer", "serve_forever", "server_url", "start_server"]
