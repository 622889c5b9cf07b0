"""Protocol adapters (KServe v2, OpenAI audio API) over :class:`whisper_runtime.transcriber.Transcriber`."""
