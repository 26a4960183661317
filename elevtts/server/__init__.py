"""The local stream-input server: the pure session, its WebSocket transport, engines and encoders."""
