"""Live transcription, protocol-free: session state, turn detection (VAD), partial and final decodes.

The WebSocket shell (``server/realtime.py``) translates OpenAI's realtime events to and from this package.
"""
