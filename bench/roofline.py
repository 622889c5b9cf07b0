"""The hardware limit of a Whisper workload: how fast the GPU could go if it did nothing but the math and the
memory traffic the model needs, from the model's shape alone.

A window is one 30 s encoder pass (T = 1500 positions, compute-bound) plus ``tokens`` decoder steps. Decoding
is bound by memory: each step reads the decoder's weights once for the whole batch, and each window's
cross-attention keys and values (T x d_model per layer, in the KV cache's precision) and its own self-attention
cache. The limit adds the two phases, each at max(FLOPs / peak FLOP/s, bytes / bandwidth), with the vendor's
dense peaks (no sparsity): an upper bound no implementation reaches, used only to say how close a row gets.
"""

from __future__ import annotations

import dataclasses

from model_shapes import Shape

ENCODER_POSITIONS = 1500
MEL_FRAMES = 3000
WINDOW_SECONDS = 30.0


@dataclasses.dataclass(frozen=True)
class Gpu:
    name: str
    bf16_flops: float  # dense tensor-core peak, FLOP/s
    fp8_flops: float
    bandwidth: float  # bytes/s


#: NVIDIA's datasheet figures (H200 SXM; L4).
H200 = Gpu("H200", 989e12, 1979e12, 4.8e12)
L4 = Gpu("L4", 121e12, 242e12, 0.3e12)


def encoder_flops(shape: Shape) -> float:
    """One window: the two convolutions, then per layer the projections, attention and feed-forward."""
    d, t = shape.d_model, ENCODER_POSITIONS
    convolutions = 2 * 3 * shape.num_mel_bins * d * MEL_FRAMES + 2 * 3 * d * d * t
    per_layer = 8 * d * d * t + 4 * t * t * d + 4 * d * shape.ffn_dim * t
    return convolutions + shape.encoder_layers * per_layer


def cross_kv_flops(shape: Shape) -> float:
    """One window: every decoder layer projects the encoder output to its cross-attention keys and values."""
    return shape.decoder_layers * 4 * shape.d_model ** 2 * ENCODER_POSITIONS


def decoder_flops_per_token(shape: Shape, position: int) -> float:
    d = shape.d_model
    per_layer = 8 * d * d + 4 * d * d + 4 * d * shape.ffn_dim + 4 * ENCODER_POSITIONS * d + 4 * position * d
    return shape.decoder_layers * per_layer + 2 * d * shape.vocab_size


def decoder_weight_bytes(shape: Shape, weight_bytes: float) -> float:
    """What one decode step reads of the weights: self-attention, cross q/o, feed-forward, the output embedding."""
    d = shape.d_model
    per_layer = 4 * d * d + 2 * d * d + 2 * d * shape.ffn_dim
    return (shape.decoder_layers * per_layer + d * shape.vocab_size) * weight_bytes


def limit_seconds(shape: Shape, windows: int, tokens: int, batch: int, gpu: Gpu = H200,
                  kv_bytes: float = 1.0, fp8_weights: bool = False) -> float:
    """Seconds the GPU needs at best for ``windows`` windows of ``tokens`` tokens, ``batch`` windows decoding at once."""
    linear_flops = gpu.fp8_flops if fp8_weights else gpu.bf16_flops
    weight_bytes = 1.0 if fp8_weights else 2.0
    prefill = windows * (encoder_flops(shape) + cross_kv_flops(shape)) / linear_flops
    steps = tokens * -(-windows // batch)
    flops = windows * sum(decoder_flops_per_token(shape, position) for position in range(tokens)) / linear_flops
    cross_kv = windows * tokens * shape.decoder_layers * 2 * ENCODER_POSITIONS * shape.d_model * kv_bytes
    self_kv = windows * shape.decoder_layers * 2 * shape.d_model * kv_bytes * tokens * (tokens + 1) / 2
    memory = (steps * decoder_weight_bytes(shape, weight_bytes) + cross_kv + self_kv) / gpu.bandwidth
    return prefill + max(flops, memory)


def limit_rtfx(shape: Shape, tokens: int, batch: int, windows: int = 92, **hardware) -> float:
    """The RTFx no engine can pass on this workload (30 s windows)."""
    return windows * WINDOW_SECONDS / limit_seconds(shape, windows, tokens, batch, **hardware)
