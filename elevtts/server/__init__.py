"""The local server: the pure session, its WebSocket transport and HTTP API on one port (aiohttp),
the synthesis pipeline, engines and encoders."""
