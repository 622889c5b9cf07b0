"""Whisper's special-token vocabulary: the model-specific hooks both engines share.

It validates a request's language and task against the model, builds the decoder prompt, and turns
generated token ids into text, timestamped segments and the detected language.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Sequence

from transformers import AutoConfig, WhisperTokenizer
from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

from .engines.base import DecodeOptions, WindowResult
from .errors import InvalidRequest
from .windowing import Segment

#: Seconds per timestamp token step.
TIME_PRECISION = 0.02
#: English-only checkpoints have one token fewer: no language can be chosen.
MULTILINGUAL_VOCAB_SIZE = 51865
#: Whisper's budget for a previous-text prompt: half the 448-token decoder context, less <|startofprev|>.
MAX_PROMPT_TOKENS = 223


class WhisperVocabulary:
    def __init__(self, tokenizer: WhisperTokenizer, multilingual: bool):
        self.tokenizer = tokenizer
        self.multilingual = multilingual
        self.start_of_transcript = tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
        self.end_of_text = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        self.timestamp_begin = tokenizer.convert_tokens_to_ids("<|notimestamps|>") + 1
        self._language_by_id = {
            tokenizer.convert_tokens_to_ids(f"<|{code}|>"): code for code in LANGUAGES
        }

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> "WhisperVocabulary":
        config = AutoConfig.from_pretrained(model_dir)
        return cls(WhisperTokenizer.from_pretrained(model_dir), config.vocab_size >= MULTILINGUAL_VOCAB_SIZE)

    def resolve(self, options: DecodeOptions) -> DecodeOptions:
        """Options checked against this model, the language normalised to its code."""
        if not self.multilingual:
            if options.task == "translate":
                raise InvalidRequest("this model is English-only: it cannot translate", param="task")
            if options.language not in (None, "en", "english"):
                raise InvalidRequest(
                    f"this model is English-only; language {options.language!r} is not available", param="language"
                )
            return dataclasses.replace(options, language="en")
        if options.language is None:
            return options
        code = _language_code(options.language)
        if code is None:
            raise InvalidRequest(f"unknown language {options.language!r}: use an ISO-639-1 code such as 'en'", "language")
        return dataclasses.replace(options, language=code)

    def check_prompt(self, prompt: str) -> None:
        """Refuse a prompt that would break decoding: special tokens in it, or more than Whisper's prompt budget.

        Checked per request before any batch is formed, so a bad prompt cannot fail the windows it would share
        a batch with.
        """
        ids = self.tokenizer.encode(" " + prompt.strip(), add_special_tokens=False)
        specials = sorted({self.tokenizer.convert_ids_to_tokens(i) for i in ids if i >= self.tokenizer.eos_token_id})
        if specials:
            raise InvalidRequest(f"the prompt may not contain special tokens; found {', '.join(specials)}", param="prompt")
        if len(ids) > MAX_PROMPT_TOKENS:
            raise InvalidRequest(f"the prompt is {len(ids)} tokens; Whisper takes at most {MAX_PROMPT_TOKENS}", param="prompt")

    def language_of(self, token_id: int) -> Optional[str]:
        return self._language_by_id.get(token_id)

    def detects_language(self, options: DecodeOptions) -> bool:
        """Whether a window decoded with ``options`` chooses its language as its first generated token."""
        return self.multilingual and options.language is None

    def task_token_id(self, task: str) -> int:
        return self.tokenizer.convert_tokens_to_ids(f"<|{task}|>")

    def decoder_prompt(self, options: DecodeOptions) -> str:
        """The decoder's forced prefix, e.g. ``<|startoftranscript|><|en|><|transcribe|>`` (timestamps on).

        A window that detects its language stops at ``<|startoftranscript|>``: the language and the task token
        are then its first generated tokens (``engines.timestamp_rules`` constrains them).
        """
        previous = f"<|startofprev|> {options.prompt.strip()}" if options.prompt else ""
        if self.detects_language(options):
            return f"{previous}<|startoftranscript|>"
        language = options.language if self.multilingual else "en"
        return f"{previous}<|startoftranscript|><|{language}|><|{options.task}|>"

    def parse(self, token_ids: Sequence[int], window_seconds: float, stopped_as_loop: bool = False) -> WindowResult:
        """Generated ids (with or without the forced prefix) -> text, segments, language; ``stopped_as_loop`` when
        the engine ended the decode as a loop (engines/loop_stop.py)."""
        ids = list(token_ids)
        if self.start_of_transcript in ids:
            ids = ids[len(ids) - ids[::-1].index(self.start_of_transcript) :]
        ended = self.end_of_text in ids
        if ended:  # what follows end-of-text is a batch's padding, not the window's
            ids = ids[: ids.index(self.end_of_text) + 1]
        language = next((self._language_by_id[i] for i in ids[:1] if i in self._language_by_id), None)
        text_ids = [i for i in ids if i < self.timestamp_begin]
        return WindowResult(
            text=self._text(text_ids),
            segments=tuple(self._segments(ids, window_seconds)),
            language=language,
            num_tokens=len(ids),
            finish_reason="repetition" if stopped_as_loop else "stop" if ended else "length",
        )

    def _text(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def _segments(self, ids: Sequence[int], window_seconds: float) -> list[Segment]:
        """Pair timestamp tokens around the text between them; an unclosed tail ends with the window.

        Times are clamped to the window: the model may place an end past the audio, into the padding.
        """
        segments = []
        start: Optional[float] = None
        pending: list[int] = []
        for token in ids:
            if token < self.timestamp_begin:
                pending.append(token)
                continue
            time = min((token - self.timestamp_begin) * TIME_PRECISION, round(window_seconds, 3))
            if start is not None and self._text(pending):
                segments.append(Segment(start, time, self._text(pending)))
                start, pending = None, []
            else:
                start, pending = time, []
        if start is not None and self._text(pending):
            segments.append(Segment(start, round(window_seconds, 3), self._text(pending)))
        return segments


def _language_code(language: str) -> Optional[str]:
    lowered = language.strip().lower()
    if lowered in LANGUAGES:
        return lowered
    return TO_LANGUAGE_CODE.get(lowered)

