"""The local stream-input server: engines, encoders, alignment and the WebSocket app."""
