"""TensorFlow's process-wide switches, set once per process: precision policy, seeds, determinism.

They are global in TensorFlow, which is why every training (and the evaluation) runs in a process of its
own. With determinism on, the same seed on the same machine gives the same weights and scores, bit for bit.
"""

from __future__ import annotations


def configure(seed: int, deterministic: bool, precision: str = "float32") -> None:
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
