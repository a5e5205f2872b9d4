"""The feature classifier's inference pass: traced for speed, to the bit what Keras' eager call gives."""

from __future__ import annotations

import numpy as np
from helpers.settings import settings

from mnistgen.evaluation.classifier import FEATURE_LAYER, build, in_batches, inference


def test_the_traced_pass_in_batches_gives_the_eager_call_to_the_bit() -> None:
    """Every figure of the evaluation is read through `inference` in batches; a record made with Keras'
    eager call must come out the same, so the two agree on every bit, for one output and for two."""
    import keras

    keras.utils.set_random_seed(0)
    network = build(settings().classifier)
    images = np.random.default_rng(0).uniform(0.0, 1.0, (500, 28, 28, 1)).astype(np.float32)
    eager = [np.asarray(network(images[i : i + 200], training=False)) for i in range(0, 500, 200)]
    traced = in_batches(inference(network), images, batch=200)
    assert traced.shape == (500, 10)
    assert np.array_equal(traced, np.concatenate(eager))

    two = keras.Model(network.inputs[0], [network.get_layer(FEATURE_LAYER).output, network.outputs[0]])
    features, logits = in_batches(inference(two), images, batch=200)
    assert np.array_equal(logits, traced)
    assert features.shape == (500, settings().classifier.features)
