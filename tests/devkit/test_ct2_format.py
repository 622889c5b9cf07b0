"""The CTranslate2 reader and the weight mapping, without real weights.

A random miniature Whisper goes through CTranslate2's own converter (the writer of the format) and back through
ours; in float32 the round trip must be exact.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from whisper_runtime import convert as ct2

pytest.importorskip("ctranslate2")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

#: Whisper's special tokens in vocabulary order, with two languages
SPECIALS = (
    "<|endoftext|> <|startoftranscript|> <|en|> <|de|> <|translate|> <|transcribe|> "
    "<|startoflm|> <|startofprev|> <|nocaptions|> <|notimestamps|>"
).split()
TIMESTAMPS = 10


def _string(text: str) -> bytes:
    return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"


def _variable(name: str, array: np.ndarray, type_id: int, raw: bytes | None = None) -> bytes:
    data = array.tobytes() if raw is None else raw
    header = _string(name) + struct.pack("<B", array.ndim) + struct.pack(f"<{array.ndim}I", *array.shape)
    return header + struct.pack("<BI", type_id, len(data)) + data


def write_model_bin(path: Path, variables: list[bytes], aliases: dict[str, str], version: int = 6) -> Path:
    body = struct.pack("<I", version) + _string("WhisperSpec") + struct.pack("<II", 3, len(variables))
    body += b"".join(variables) + struct.pack("<I", len(aliases))
    body += b"".join(_string(alias) + _string(target) for alias, target in aliases.items())
    path.write_bytes(body)
    return path


def test_reads_every_dtype_and_resolves_aliases(tmp_path):
    half = np.arange(6, dtype=np.float16).reshape(2, 3)
    single = np.linspace(-1, 1, 4, dtype=np.float32)
    brain = np.array([1.5, -2.0], dtype=np.float32)
    brain_raw = (brain.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    path = write_model_bin(
        tmp_path / "model.bin",
        [
            _variable("a/half", half, 4),
            _variable("a/single", single, 0),
            _variable("a/brain", brain, 5, raw=brain_raw),
            _variable("a/heads", np.array(6, dtype=np.int16), 2),
        ],
        {"a/tied": "a/half"},
    )
    model = ct2.read_ct2_model(path)
    assert (model.binary_version, model.spec_name, model.spec_revision) == (6, "WhisperSpec", 3)
    np.testing.assert_array_equal(model.variables["a/half"], half)
    assert model.variables["a/half"].dtype == np.float16
    np.testing.assert_array_equal(model.variables["a/single"], single)
    np.testing.assert_array_equal(model.variables["a/brain"], brain)
    assert int(model.variables["a/heads"]) == 6
    assert model.variables["a/tied"] is model.variables["a/half"]


def test_dequantizes_int8_rows_with_their_scales():
    weight = np.array([[127, -64], [10, 20]], dtype=np.int8)
    scale = np.array([127.0, 10.0], dtype=np.float32)
    result = ct2.dequantize({"w/weight": weight, "w/weight_scale": scale})
    assert set(result) == {"w/weight"}
    np.testing.assert_allclose(result["w/weight"], [[1.0, -64 / 127], [1.0, 2.0]])


@pytest.mark.parametrize("version", [5, 7])
def test_refuses_other_binary_versions(tmp_path, version):
    path = write_model_bin(tmp_path / "model.bin", [], {}, version=version)
    with pytest.raises(ct2.ConversionError, match="binary version"):
        ct2.read_ct2_model(path)


def test_refuses_a_truncated_file(tmp_path):
    path = write_model_bin(tmp_path / "model.bin", [_variable("x", np.zeros(8, np.float32), 0)], {})
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ct2.ConversionError, match="truncated"):
        ct2.read_ct2_model(path)


def test_generation_config_follows_vocabulary_size():
    special_ids = {token: 50257 + index for index, token in enumerate(SPECIALS)}
    ct2_config = {"suppress_ids": [1], "suppress_ids_begin": [220, 50257], "alignment_heads": [[1, 0]]}
    multilingual = ct2.generation_config(ct2_config, special_ids, vocab_size=51865, max_length=448)
    english = ct2.generation_config(ct2_config, special_ids, vocab_size=51864, max_length=448)
    assert multilingual["is_multilingual"] and multilingual["lang_to_id"] == {"<|en|>": 50259, "<|de|>": 50260}
    assert multilingual["task_to_id"] == {"transcribe": 50262, "translate": 50261}
    assert not english["is_multilingual"] and "lang_to_id" not in english
    assert english["no_timestamps_token_id"] == special_ids["<|notimestamps|>"]


def test_timestamp_tokens_fill_the_vocabulary():
    tokens = ct2.timestamp_tokens(first_id=50364, vocab_size=51865)
    assert len(tokens) == 1501
    assert (tokens[0]["content"], tokens[-1]["content"]) == ("<|0.00|>", "<|30.00|>")
    assert not any(token["special"] for token in tokens)


# --------------------------------------------------------------------------------------------------------------
# Round trip through CTranslate2's own converter


@pytest.fixture(scope="module")
def miniature(tmp_path_factory):
    """A random 2-layer Whisper saved in Hugging Face format with a byte-level tokenizer and Whisper's specials."""
    from tokenizers import pre_tokenizers

    folder = tmp_path_factory.mktemp("miniature")
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokenizer = transformers.WhisperTokenizer(vocab={char: index for index, char in enumerate(alphabet)}, merges=[])
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIALS})
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIALS}
    eot = ids["<|endoftext|>"]
    config = transformers.WhisperConfig(
        vocab_size=len(alphabet) + len(SPECIALS) + TIMESTAMPS,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_target_positions=64,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=ids["<|startoftranscript|>"],
    )
    torch.manual_seed(0)
    model = transformers.WhisperForConditionalGeneration(config).eval()
    model.save_pretrained(folder / "hf")
    tokenizer.save_pretrained(folder / "hf")
    transformers.GenerationConfig(
        suppress_tokens=[1, 2], begin_suppress_tokens=[220, eot], alignment_heads=[[1, 0]], decoder_start_token_id=ids["<|startoftranscript|>"]
    ).save_pretrained(folder / "hf")
    return folder, model, ids


def _ct2_then_back(miniature, quantization: str, dtype: str | None):
    import ctranslate2

    folder, _, _ = miniature
    ct2_dir = folder / f"ct2-{quantization}"
    converter = ctranslate2.converters.TransformersConverter(str(folder / "hf"), copy_files=["tokenizer.json"])
    converter.convert(str(ct2_dir), quantization=quantization, force=True)
    back_dir = ct2.convert(ct2_dir, folder / f"back-{quantization}", dtype=dtype)
    return transformers.WhisperForConditionalGeneration.from_pretrained(back_dir, dtype=torch.float32).eval()


def _logits(model, ids):
    torch.manual_seed(1)
    features = torch.randn(1, 80, 3000)
    prompt = torch.tensor([[ids["<|startoftranscript|>"], ids["<|notimestamps|>"], 70, 71, 72]])
    with torch.inference_mode():
        return model(input_features=features, decoder_input_ids=prompt).logits


def test_float32_round_trip_is_exact(miniature):
    _, original, ids = miniature
    converted = _ct2_then_back(miniature, "float32", dtype=None)
    original_state, converted_state = original.state_dict(), converted.state_dict()
    assert set(original_state) == set(converted_state)
    for name, tensor in original_state.items():
        torch.testing.assert_close(converted_state[name], tensor, rtol=0, atol=0, msg=name)
    torch.testing.assert_close(_logits(converted, ids), _logits(original, ids), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("quantization", "tolerance"),
    [("float16", 2e-3), ("bfloat16", 2e-2), ("int8_float32", 5e-2)],
)
def test_reduced_precision_round_trip_is_close(miniature, quantization, tolerance):
    _, original, ids = miniature
    converted = _ct2_then_back(miniature, quantization, dtype="float32")
    torch.testing.assert_close(_logits(converted, ids), _logits(original, ids), rtol=0, atol=tolerance)


def test_output_folder_is_a_standard_whisper_checkpoint(miniature):
    folder, original, ids = miniature
    _ct2_then_back(miniature, "float16", dtype="float16")
    back = folder / "back-float16"
    config = json.loads((back / "config.json").read_text())
    assert config["architectures"] == ["WhisperForConditionalGeneration"] and config["model_type"] == "whisper"
    assert config["dtype"] == "float16"
    assert json.loads((back / "preprocessor_config.json").read_text())["feature_size"] == 80
    processor = transformers.AutoProcessor.from_pretrained(back)
    tokenizer = processor.tokenizer
    assert tokenizer.convert_tokens_to_ids("<|notimestamps|>") == ids["<|notimestamps|>"]
    assert tokenizer.convert_tokens_to_ids("<|0.02|>") == ids["<|notimestamps|>"] + 2
    assert len(tokenizer) == original.config.vocab_size
    text_ids = tokenizer.encode(" Hi there", add_special_tokens=False)
    assert tokenizer.decode([ids["<|startoftranscript|>"], *text_ids], skip_special_tokens=True) == " Hi there"


def test_cli_reports_a_missing_model(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ct2.main([str(tmp_path), str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "model.bin" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
