"""Whisper architectures as weightless model folders, for the runtime's benchmark mode (random weights).

Speed does not depend on the weights' values, so a large-v3 folder made here (config.json of large-v3's
shape, base's tokenizer, feature extractor set to the shape's mel bins) measures what large-v3 costs, where
its weights cannot be fetched. Accuracy is measured on real weights only (docs/benchmarks.md says so).

    python bench/model_shapes.py --tokenizer_from BASE_DIR --out DIR large-v3 large-v3-turbo
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

#: Files taken from a real checkpoint: the tokenizer and the decoding defaults (base's ids; large-v3 has one
#: more language token, so its vocabulary is one row larger: the work per token is the same).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "generation_config.json")


@dataclasses.dataclass(frozen=True)
class Shape:
    d_model: int
    encoder_layers: int
    decoder_layers: int
    attention_heads: int
    num_mel_bins: int = 80
    vocab_size: int = 51865

    @property
    def ffn_dim(self) -> int:
        return 4 * self.d_model


#: OpenAI's published architectures (the Hugging Face configs of openai/whisper-*).
SHAPES = {
    "tiny": Shape(384, 4, 4, 6),
    "base": Shape(512, 6, 6, 8),
    "small": Shape(768, 12, 12, 12),
    "medium": Shape(1024, 24, 24, 16),
    "large-v2": Shape(1280, 32, 32, 20),
    "large-v3": Shape(1280, 32, 32, 20, num_mel_bins=128, vocab_size=51866),
    "large-v3-turbo": Shape(1280, 32, 4, 20, num_mel_bins=128, vocab_size=51866),
}


def config_of(shape: Shape, template: dict) -> dict:
    """A real checkpoint's config.json with the shape's dimensions (pure)."""
    return {
        **template,
        "d_model": shape.d_model,
        "encoder_layers": shape.encoder_layers,
        "decoder_layers": shape.decoder_layers,
        "encoder_attention_heads": shape.attention_heads,
        "decoder_attention_heads": shape.attention_heads,
        "encoder_ffn_dim": shape.ffn_dim,
        "decoder_ffn_dim": shape.ffn_dim,
        "num_mel_bins": shape.num_mel_bins,
        "vocab_size": shape.vocab_size,
        "num_hidden_layers": shape.encoder_layers,
    }


def write_shape(name: str, tokenizer_from: Path, out: Path) -> Path:
    """A model folder of the named shape with no weights (vLLM's ``load_format="dummy"`` needs none)."""
    shape = SHAPES[name]
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for file in TOKENIZER_FILES:
        shutil.copy(tokenizer_from / file, folder / file)
    template = json.loads((tokenizer_from / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config_of(shape, template), indent=2))
    features = json.loads((tokenizer_from / "preprocessor_config.json").read_text())
    features = {**features, "feature_size": shape.num_mel_bins}
    (folder / "preprocessor_config.json").write_text(json.dumps(features, indent=2))
    # Transformers 5 reads a processor's feature extractor from here first.
    processor = {"feature_extractor": features, "processor_class": "WhisperProcessor"}
    (folder / "processor_config.json").write_text(json.dumps(processor, indent=2))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer_from", type=Path, required=True, help="a real Whisper folder (base: multilingual)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("shapes", nargs="+", choices=sorted(SHAPES))
    args = parser.parse_args()
    for name in args.shapes:
        print(write_shape(name, args.tokenizer_from, args.out))


if __name__ == "__main__":
    main()
