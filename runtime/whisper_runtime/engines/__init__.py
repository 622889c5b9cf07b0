"""Speech engines behind one small interface (:class:`whisper_runtime.engines.base.SpeechEngine`)."""
