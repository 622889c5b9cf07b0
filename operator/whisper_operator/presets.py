"""Model presets: the short names users write, and the Hugging Face repositories they stand for."""

from __future__ import annotations

PRESET_STORAGE_URIS: dict[str, str] = {
    "large-v3": "hf://openai/whisper-large-v3",
    "large-v3-turbo": "hf://openai/whisper-large-v3-turbo",
    "distil-large-v3.5": "hf://distil-whisper/distil-large-v3.5",
}

PRESETS = tuple(PRESET_STORAGE_URIS)


def storage_uri_for(preset: str) -> str:
    return PRESET_STORAGE_URIS[preset]
