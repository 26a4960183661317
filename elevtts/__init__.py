"""elevtts: streaming text to speech over the ElevenLabs stream-input WebSocket protocol."""

import time

__version__ = "0.1.0"

# The first thing any `elevtts` command imports: "total (the whole command)" counts from here, so
# it covers the imports, and not what a shell ran before (`a && elevtts ...` may exec into us).
STARTED_AT = time.monotonic()
