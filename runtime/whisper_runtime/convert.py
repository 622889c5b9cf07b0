"""Convert a CTranslate2 Whisper model into a Hugging Face ``WhisperForConditionalGeneration`` folder.

Input: a CTranslate2 model directory (``model.bin``, ``config.json``, ``tokenizer.json``) as faster-whisper uses.
Output: ``model.safetensors``, ``config.json``, ``generation_config.json``, tokenizer files and
``preprocessor_config.json``, loadable by Transformers (``AutoProcessor``, ``WhisperForConditionalGeneration``)
and by vLLM.

The binary layout read here is the one ``ctranslate2.specs.model_spec.ModelSpec._serialize`` writes (binary
version 6): a header, then every variable (name, shape, dtype, raw bytes), then aliases (a name pointing at another
variable, e.g. the output projection tied to the token embeddings). The weight names invert CTranslate2's
``WhisperLoader``, which fuses q/k/v projections into one matrix and renames layers.

CLI: ``whisper-convert-ct2 CT2_DIR OUT_DIR [--dtype float16|float32]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import struct
from pathlib import Path
from typing import Any, BinaryIO, Mapping, Sequence

import numpy as np

SUPPORTED_BINARY_VERSION = 6
WHISPER_SPEC_NAME = "WhisperSpec"
#: Order of CTranslate2's DataType enum (include/ctranslate2/types.h).
_CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
#: OpenAI's rule: English-only checkpoints have one token fewer (no language-token shift).
MULTILINGUAL_MIN_VOCAB_SIZE = 51865
#: Whisper's timestamp tokens are 20 ms apart and come right after the special tokens.
TIMESTAMP_STEP_SECONDS = 0.02
#: Special tokens that are not language tokens (the same list CTranslate2's converter uses).
NON_LANGUAGE_SPECIAL_TOKENS = frozenset(
    {
        "<|endoftext|>",
        "<|startoftranscript|>",
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nocaptions|>",
        "<|notimestamps|>",
    }
)
_LAYER_NAME = re.compile(r"^(encoder|decoder)/layer_(\d+)/")


class ConversionError(ValueError):
    """The input is not a CTranslate2 Whisper model this converter understands."""


@dataclasses.dataclass(frozen=True)
class Ct2Model:
    """The content of a CTranslate2 ``model.bin``; aliases are resolved into ``variables``."""

    binary_version: int
    spec_name: str
    spec_revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]


# ---------------------------------------------------------------------------------------------------------------
# Reading model.bin


def _read(stream: BinaryIO, fmt: str) -> tuple:
    size = struct.calcsize(fmt)
    data = stream.read(size)
    if len(data) != size:
        raise ConversionError("model.bin is truncated")
    return struct.unpack(fmt, data)


def _read_string(stream: BinaryIO) -> str:
    (length,) = _read(stream, "<H")
    raw = stream.read(length)
    if len(raw) != length:
        raise ConversionError("model.bin is truncated")
    return raw[:-1].decode("utf-8")  # the length counts the trailing NUL


def _bfloat16_to_float32(raw: np.ndarray) -> np.ndarray:
    """numpy has no bfloat16: a bfloat16 is the upper half of a float32."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def _read_variable(stream: BinaryIO) -> tuple[str, np.ndarray]:
    name = _read_string(stream)
    (rank,) = _read(stream, "<B")
    shape = _read(stream, f"<{rank}I")
    (type_id,) = _read(stream, "<B")
    (num_bytes,) = _read(stream, "<I")
    if type_id >= len(_CT2_DTYPES):
        raise ConversionError(f"variable {name!r} has unknown dtype id {type_id}")
    dtype_name = _CT2_DTYPES[type_id]
    raw = stream.read(num_bytes)
    if len(raw) != num_bytes:
        raise ConversionError(f"model.bin is truncated inside variable {name!r}")
    storage = np.uint16 if dtype_name == "bfloat16" else np.dtype(dtype_name)
    array = np.frombuffer(raw, dtype=storage).reshape(shape)
    return name, _bfloat16_to_float32(array) if dtype_name == "bfloat16" else array


def read_ct2_model(path: Path) -> Ct2Model:
    """Parse a CTranslate2 ``model.bin``."""
    with open(path, "rb") as stream:
        (binary_version,) = _read(stream, "<I")
        if binary_version != SUPPORTED_BINARY_VERSION:
            raise ConversionError(
                f"{path}: CTranslate2 binary version {binary_version} is not supported "
                f"(expected {SUPPORTED_BINARY_VERSION}, written by CTranslate2 >= 3.0)"
            )
        spec_name = _read_string(stream)
        (spec_revision,) = _read(stream, "<I")
        (num_variables,) = _read(stream, "<I")
        variables = dict(_read_variable(stream) for _ in range(num_variables))
        (num_aliases,) = _read(stream, "<I")
        aliases = dict((_read_string(stream), _read_string(stream)) for _ in range(num_aliases))
    for alias, target in aliases.items():
        variables[alias] = variables[target]
    return Ct2Model(binary_version, spec_name, spec_revision, variables, aliases)


# ---------------------------------------------------------------------------------------------------------------
# Weights: CTranslate2 names -> Hugging Face names


def dequantize(variables: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Undo CTranslate2's integer quantization (``weight * scale`` rounded; one scale per output row)."""
    result = {}
    for name, value in variables.items():
        if name.endswith("_scale"):
            continue
        scale = variables.get(f"{name}_scale")
        if scale is not None:
            per_row = scale.astype(np.float32).reshape((-1,) + (1,) * (value.ndim - 1)) if scale.ndim else scale
            value = value.astype(np.float32) / per_row
        result[name] = value
    return result


class _StateDictBuilder:
    """Collects Hugging Face tensors from CTranslate2 variables, one layer kind at a time."""

    def __init__(self, variables: Mapping[str, np.ndarray]):
        self._variables = variables
        self.tensors: dict[str, np.ndarray] = {}

    def _get(self, name: str) -> np.ndarray:
        try:
            return self._variables[name]
        except KeyError:
            raise ConversionError(f"model.bin has no variable {name!r}") from None

    def copy(self, ct2_name: str, hf_name: str) -> None:
        self.tensors[hf_name] = self._get(ct2_name)

    def layer_norm(self, ct2_scope: str, hf_scope: str) -> None:
        self.copy(f"{ct2_scope}/gamma", f"{hf_scope}.weight")
        self.copy(f"{ct2_scope}/beta", f"{hf_scope}.bias")

    def linear(self, ct2_scope: str, hf_scope: str) -> None:
        self.copy(f"{ct2_scope}/weight", f"{hf_scope}.weight")
        if f"{ct2_scope}/bias" in self._variables:
            self.copy(f"{ct2_scope}/bias", f"{hf_scope}.bias")

    def fused_linear(self, ct2_scope: str, hf_scopes: Sequence[str]) -> None:
        """Split a fused projection (rows stacked q, k, v) back into its parts.

        Whisper's key projection has no bias; CTranslate2 stores zeros there. Dropping it is exact anyway: a bias
        on the keys adds the same value to every score of a query, which softmax ignores.
        """
        weights = np.split(self._get(f"{ct2_scope}/weight"), len(hf_scopes))
        biases = np.split(self._get(f"{ct2_scope}/bias"), len(hf_scopes))
        for hf_scope, weight, bias in zip(hf_scopes, weights, biases):
            self.tensors[f"{hf_scope}.weight"] = weight
            if not hf_scope.endswith("k_proj"):
                self.tensors[f"{hf_scope}.bias"] = bias

    def attention(self, ct2_scope: str, hf_scope: str, cross: bool) -> None:
        projections = [f"{hf_scope}.{name}" for name in ("q_proj", "k_proj", "v_proj")]
        if cross:  # the query comes from the decoder, key and value from the encoder output
            self.linear(f"{ct2_scope}/linear_0", projections[0])
            self.fused_linear(f"{ct2_scope}/linear_1", projections[1:])
            self.linear(f"{ct2_scope}/linear_2", f"{hf_scope}.out_proj")
        else:
            self.fused_linear(f"{ct2_scope}/linear_0", projections)
            self.linear(f"{ct2_scope}/linear_1", f"{hf_scope}.out_proj")

    def transformer_layer(self, ct2_scope: str, hf_scope: str, has_cross_attention: bool) -> None:
        self.layer_norm(f"{ct2_scope}/self_attention/layer_norm", f"{hf_scope}.self_attn_layer_norm")
        self.attention(f"{ct2_scope}/self_attention", f"{hf_scope}.self_attn", cross=False)
        if has_cross_attention:
            self.layer_norm(f"{ct2_scope}/attention/layer_norm", f"{hf_scope}.encoder_attn_layer_norm")
            self.attention(f"{ct2_scope}/attention", f"{hf_scope}.encoder_attn", cross=True)
        self.layer_norm(f"{ct2_scope}/ffn/layer_norm", f"{hf_scope}.final_layer_norm")
        self.linear(f"{ct2_scope}/ffn/linear_0", f"{hf_scope}.fc1")
        self.linear(f"{ct2_scope}/ffn/linear_1", f"{hf_scope}.fc2")


def count_layers(variables: Mapping[str, Any], stack: str) -> int:
    indices = {int(match.group(2)) for name in variables if (match := _LAYER_NAME.match(name)) and match.group(1) == stack}
    return max(indices) + 1 if indices else 0


def hf_state_dict(variables: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Hugging Face tensors of ``WhisperForConditionalGeneration`` (``proj_out`` is tied to the embeddings)."""
    builder = _StateDictBuilder(dequantize(variables))
    for conv in ("conv1", "conv2"):
        builder.linear(f"encoder/{conv}", f"model.encoder.{conv}")
    for stack in ("encoder", "decoder"):
        builder.copy(f"{stack}/position_encodings/encodings", f"model.{stack}.embed_positions.weight")
        builder.layer_norm(f"{stack}/layer_norm", f"model.{stack}.layer_norm")
        for index in range(count_layers(variables, stack)):
            builder.transformer_layer(
                f"{stack}/layer_{index}", f"model.{stack}.layers.{index}", has_cross_attention=stack == "decoder"
            )
    builder.copy("decoder/embeddings/weight", "model.decoder.embed_tokens.weight")
    return builder.tensors


def cast_floats(tensors: Mapping[str, np.ndarray], dtype: str | None) -> dict[str, np.ndarray]:
    """Cast every floating tensor to ``dtype`` (None keeps each tensor's own; contiguous for safetensors)."""
    return {
        name: np.ascontiguousarray(value.astype(dtype) if dtype and value.dtype.kind == "f" else value)
        for name, value in tensors.items()
    }


# ---------------------------------------------------------------------------------------------------------------
# Configuration, generation config and tokenizer (pure: dictionaries in, dictionaries out)


def _scalar(variables: Mapping[str, np.ndarray], name: str) -> int:
    return int(np.asarray(variables[name]).reshape(()))


def model_config(variables: Mapping[str, np.ndarray], special_ids: Mapping[str, int]) -> dict[str, Any]:
    """``WhisperConfig`` arguments read off the weights' shapes."""
    embeddings = variables["decoder/embeddings/weight"]
    conv1 = variables["encoder/conv1/weight"]
    eot = special_ids["<|endoftext|>"]
    return {
        "architectures": ["WhisperForConditionalGeneration"],
        "vocab_size": embeddings.shape[0],
        "d_model": embeddings.shape[1],
        "num_mel_bins": conv1.shape[1],
        "encoder_layers": count_layers(variables, "encoder"),
        "decoder_layers": count_layers(variables, "decoder"),
        "encoder_attention_heads": _scalar(variables, "encoder/num_heads"),
        "decoder_attention_heads": _scalar(variables, "decoder/num_heads"),
        "encoder_ffn_dim": variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        "decoder_ffn_dim": variables["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        "max_source_positions": variables["encoder/position_encodings/encodings"].shape[0],
        "max_target_positions": variables["decoder/position_encodings/encodings"].shape[0],
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
        "decoder_start_token_id": special_ids["<|startoftranscript|>"],
        "tie_word_embeddings": True,
    }


def language_tokens(special_ids: Mapping[str, int]) -> dict[str, int]:
    """``{"<|en|>": 50259, ...}``: the special tokens that name a language."""
    return {token: id_ for token, id_ in special_ids.items() if token not in NON_LANGUAGE_SPECIAL_TOKENS}


def generation_config(
    ct2_config: Mapping[str, Any], special_ids: Mapping[str, int], vocab_size: int, max_length: int
) -> dict[str, Any]:
    """``GenerationConfig`` arguments in the layout of OpenAI's checkpoints on the Hugging Face hub.

    English-only checkpoints still carry language tokens in their vocabulary, so the vocabulary size, not the
    tokenizer, tells whether the model is multilingual.
    """
    multilingual = vocab_size >= MULTILINGUAL_MIN_VOCAB_SIZE
    eot = special_ids["<|endoftext|>"]
    config: dict[str, Any] = {
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
        "decoder_start_token_id": special_ids["<|startoftranscript|>"],
        "max_length": max_length,
        "suppress_tokens": list(ct2_config["suppress_ids"]),
        "begin_suppress_tokens": list(ct2_config["suppress_ids_begin"]),
        "alignment_heads": [list(head) for head in ct2_config["alignment_heads"]],
        "no_timestamps_token_id": special_ids["<|notimestamps|>"],
        "prev_sot_token_id": special_ids["<|startofprev|>"],
        "max_initial_timestamp_index": 50,
        "return_timestamps": False,
        "is_multilingual": multilingual,
    }
    if multilingual:
        config["lang_to_id"] = language_tokens(special_ids)
        config["task_to_id"] = {task: special_ids[f"<|{task}|>"] for task in ("transcribe", "translate")}
    return config


def special_token_ids(tokenizer_json: Mapping[str, Any]) -> dict[str, int]:
    return {token["content"]: token["id"] for token in tokenizer_json["added_tokens"] if token["special"]}


def timestamp_tokens(first_id: int, vocab_size: int) -> list[dict[str, Any]]:
    """``<|0.00|>`` ... ``<|30.00|>``: the ids above the special tokens; CTranslate2 ships them only in its vocabulary."""
    return [
        {
            "id": id_,
            "content": f"<|{(id_ - first_id) * TIMESTAMP_STEP_SECONDS:.2f}|>",
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": False,  # Transformers finds the first timestamp id as "last special id + 1"
        }
        for id_ in range(first_id, vocab_size)
    ]


def complete_tokenizer_json(tokenizer_json: Mapping[str, Any], vocab_size: int) -> dict[str, Any]:
    """The package's tokenizer.json plus the timestamp tokens, so every id the model can emit decodes."""
    added = list(tokenizer_json["added_tokens"])
    first_timestamp = max(token["id"] for token in added) + 1
    return {**tokenizer_json, "added_tokens": added + timestamp_tokens(first_timestamp, vocab_size)}


# ---------------------------------------------------------------------------------------------------------------
# Writing the folder


def _write_tokenizer_and_processor(tokenizer_json: dict[str, Any], special_ids: Mapping[str, int], n_mels: int, out_dir: Path) -> None:
    """Let Transformers write its own tokenizer_config.json, processor_config.json and preprocessor_config.json.

    preprocessor_config.json is what Transformers 4 and vLLM look for; Transformers 5 folds it into
    processor_config.json, so both are written.
    """
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

    (out_dir / "tokenizer.json").write_text(json.dumps(tokenizer_json, ensure_ascii=False))
    tokenizer = WhisperTokenizer.from_pretrained(
        str(out_dir),
        additional_special_tokens=list(special_ids),
        model_max_length=tokenizer_json.get("truncation") or 1024,
    )
    processor = WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=n_mels), tokenizer=tokenizer)
    processor.save_pretrained(str(out_dir))
    processor.feature_extractor.save_pretrained(str(out_dir))


def convert(ct2_dir: Path, out_dir: Path, dtype: str | None = "float16") -> Path:
    """Write the Hugging Face folder for the CTranslate2 model in ``ct2_dir``; ``dtype`` None keeps the stored one."""
    from safetensors.numpy import save_file
    from transformers import GenerationConfig, WhisperConfig

    model = read_ct2_model(ct2_dir / "model.bin")
    if model.spec_name != WHISPER_SPEC_NAME:
        raise ConversionError(f"{ct2_dir}: expected a {WHISPER_SPEC_NAME} model, got {model.spec_name}")
    ct2_config = json.loads((ct2_dir / "config.json").read_text())
    tokenizer_json = json.loads((ct2_dir / "tokenizer.json").read_text())
    special_ids = special_token_ids(tokenizer_json)

    config = model_config(model.variables, special_ids)
    tensors = cast_floats(hf_state_dict(model.variables), dtype)
    torch_dtype = dtype or str(tensors["model.decoder.embed_tokens.weight"].dtype)

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    generation = generation_config(ct2_config, special_ids, config["vocab_size"], config["max_target_positions"])
    suppression = {key: generation[key] for key in ("suppress_tokens", "begin_suppress_tokens")}
    WhisperConfig(**config, **suppression, dtype=torch_dtype).save_pretrained(str(out_dir))
    GenerationConfig(**generation).save_pretrained(str(out_dir))
    _write_tokenizer_and_processor(
        complete_tokenizer_json(tokenizer_json, config["vocab_size"]), special_ids, config["num_mel_bins"], out_dir
    )
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="whisper-convert-ct2", description=__doc__.split("\n\n")[0])
    parser.add_argument("ct2_dir", type=Path, help="directory with model.bin, config.json, tokenizer.json")
    parser.add_argument("out_dir", type=Path, help="where to write the Hugging Face model")
    parser.add_argument(
        "--dtype", choices=("float16", "float32", "keep"), default="float16", help="dtype of the saved weights"
    )
    args = parser.parse_args(argv)
    try:
        convert(args.ct2_dir, args.out_dir, None if args.dtype == "keep" else args.dtype)
    except (ConversionError, FileNotFoundError) as error:
        parser.exit(2, f"whisper-convert-ct2: error: {error}\n")
    print(args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
