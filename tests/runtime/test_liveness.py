"""Issue 14.1: liveness must fail once the engine that served has stopped, so Kubernetes restarts the pod."""

import pytest
from kserve.model_repository import ModelRepository

from whisper_runtime.audio import AudioLimits
from whisper_runtime.engines.transformers_engine import TransformersEngine
from whisper_runtime.server.v2 import AudioDataPlane, WhisperModel
from whisper_runtime.transcriber import Transcriber

pytestmark = pytest.mark.model


async def test_liveness_follows_the_engine(tiny_en_dir):
    model = WhisperModel("whisper", Transcriber(TransformersEngine(tiny_en_dir, dtype="float32", max_batch=2), AudioLimits(2**20, 60)))
    registry = ModelRepository()
    registry.update(model)
    dataplane = AudioDataPlane(model_registry=registry)
    assert await dataplane.live() == {"status": "alive"}  # still loading: not dead
    await model.start_engine()
    assert await dataplane.live() == {"status": "alive"} and await dataplane.ready()
    await model.transcriber.engine.stop()  # the engine dies for good
    assert await dataplane.live() == {"status": "dead"}
    assert not await dataplane.ready()
