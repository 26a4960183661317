"""elevtts: streaming text to speech over the ElevenLabs stream-input WebSocket protocol."""

__version__ = "0.1.0"
