"""The MNIST classifier whose penultimate layer is the feature space of FID, KID and precision/recall.

Inception-v3 features, the usual choice, know nothing of handwriting and are not available offline; a small
CNN trained on MNIST itself is the standard substitute for digits. Its version is a hash of its weights,
recorded beside every metric computed with it, so metrics from different extractors are never compared.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnistgen.errors import MnistgenError
from mnistgen.images import to_unit
from mnistgen.settings import ClassifierSection, Settings

FEATURE_LAYER = "features"
MODEL_FILE = "classifier.keras"
INFO_FILE = "classifier.json"


class ClassifierError(MnistgenError):
    """The classifier is missing or not good enough to measure with."""


@dataclass(frozen=True)
class Classifier:
    """A trained classifier: `probabilities` and `features` of images in [0, 1], shape (n, 28, 28).

    `read` gives both from one pass through the network (`outputs`: the `inference` pass of the network
    with two outputs, the feature layer and the logits), which is what the evaluation needs for every
    sample set."""

    model: Any
    outputs: Any
    version: str
    test_accuracy: float

    def read(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(features as float64, class probabilities) of images in [0, 1]."""
        import keras

        features, logits = in_batches(self.outputs, np.asarray(images, np.float32).reshape(-1, 28, 28, 1))
        return features.astype(np.float64), np.asarray(keras.ops.softmax(logits))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return self.read(images)[1]

    def features(self, images: np.ndarray) -> np.ndarray:
        return self.read(images)[0]


def inference(network: Any) -> Any:
    """`network`'s forward pass at inference as a traced graph (`tf.function`) rather than Keras' eager
    call: the same numbers, in less time on the CPU, which counts for the 10,000 samples of every evaluated
    model (tuning log, "Where the evaluation's time goes")."""
    import tensorflow as tf

    return tf.function(lambda inputs: network(inputs, training=False))


def in_batches(forward: Any, inputs: np.ndarray, batch: int = 2000) -> Any:
    """`forward(inputs)` (see `inference`), `batch` rows at a time, concatenated as numpy arrays: one
    array, or a tuple of them for a network of several outputs."""
    parts = [forward(inputs[i : i + batch]) for i in range(0, len(inputs), batch)]
    if isinstance(parts[0], (list, tuple)):
        return tuple(np.concatenate([np.asarray(p[k]) for p in parts]) for k in range(len(parts[0])))
    return np.concatenate([np.asarray(p) for p in parts])


def build(cfg: ClassifierSection) -> Any:
    import keras

    narrow, wide = cfg.filters
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(narrow, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(narrow, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(wide, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(wide, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Dropout(0.25),
            keras.layers.Flatten(),
            keras.layers.Dense(cfg.features, activation="relu", name=FEATURE_LAYER),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, name="logits"),
        ],
        name="mnist_classifier",
    )


def weights_version(model: Any) -> str:
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:12]


def train(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    cfg: ClassifierSection,
    seed: int,
    progress: bool = True,
) -> tuple[Any, float]:
    """Train and test the classifier on uint8 images; refuses one below `cfg.min_accuracy`."""
    model, accuracy = fit_and_score(
        to_unit(train_images), train_labels, to_unit(test_images), test_labels, cfg, seed, progress
    )
    if accuracy < cfg.min_accuracy:
        raise ClassifierError(
            f"the feature classifier reached {accuracy:.4f} test accuracy, below the required "
            f"{cfg.min_accuracy}; its features would make FID meaningless. Fix: raise classifier.epochs."
        )
    return model, accuracy


def fit_and_score(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    cfg: ClassifierSection,
    seed: int,
    progress: bool = False,
) -> tuple[Any, float]:
    """A fresh classifier (`cfg`'s architecture and budget) fitted to (n, 28, 28) images in [0, 1];
    returns it and its accuracy on the test images.

    The loop feeds numpy batches to `train_on_batch`, in an order that is a function of (seed, epoch):
    `fit()`'s tf.data pipeline cost more than the steps here (its threads wait on the training's), and
    this way the same seed gives the same classifier, bit for bit.
    """
    import keras
    from tqdm.auto import tqdm

    keras.utils.set_random_seed(seed)
    model = build(cfg)
    batch = cfg.batch_size
    per_epoch = len(train_images) // batch
    model.compile(
        # Cosine decay to zero: the last epochs settle into a minimum, worth a few tenths of a percent.
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(cfg.lr, cfg.epochs * per_epoch)
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    images, labels = np.asarray(train_images, np.float32)[..., None], np.asarray(train_labels, np.int32)
    for epoch in range(cfg.epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(images))
        for step in tqdm(
            range(per_epoch), desc=f"classifier epoch {epoch + 1}", disable=not progress, leave=False
        ):
            chosen = order[step * batch : (step + 1) * batch]
            model.train_on_batch(images[chosen], labels[chosen])
    logits = in_batches(inference(model), np.asarray(test_images, np.float32)[..., None])
    return model, float(np.mean(logits.argmax(axis=1) == test_labels))


def save(model: Any, accuracy: float, folder: Path, trained_on: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / MODEL_FILE)
    info = {"version": weights_version(model), "test_accuracy": accuracy, "trained_on": trained_on}
    (folder / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return folder / MODEL_FILE


def load(folder: Path) -> Classifier:
    import keras

    if not (folder / MODEL_FILE).is_file():
        raise ClassifierError(f"no feature classifier in {folder}. Fix: run `mnistgen classifier` first.")
    model = keras.saving.load_model(folder / MODEL_FILE, safe_mode=True)
    info = json.loads((folder / INFO_FILE).read_text())
    outputs = keras.Model(model.inputs[0], [model.get_layer(FEATURE_LAYER).output, model.outputs[0]])
    return Classifier(model, inference(outputs), info["version"], info["test_accuracy"])


def trained_on(project_dir: Path, profile: str) -> dict[str, Any]:
    """What a saved classifier was trained from, by the rule `dvc status` follows for the `classifier`
    stage (its params and deps in dvc.yaml): while it is unchanged, the classifier is current."""
    from mnistgen import lineage
    from mnistgen.config import load_params

    return lineage.fingerprint(project_dir, load_params(project_dir), "classifier", profile)


def ensure(project_dir: Path, params: Settings, progress: bool = True) -> tuple[str, float, bool]:
    """The classifier in `classifier.dir` if it is current (see `trained_on`), else a new one.
    Returns (version, test accuracy, whether it was trained now)."""
    folder = project_dir / params.classifier.dir
    if (folder / MODEL_FILE).is_file() and (folder / INFO_FILE).is_file():
        info = json.loads((folder / INFO_FILE).read_text())
        if info.get("trained_on") == trained_on(project_dir, params.profile):
            return info["version"], info["test_accuracy"], False
    _, version, accuracy = train_and_log(project_dir, params, progress)
    return version, accuracy, True


def train_and_log(project_dir: Path, params: Settings, progress: bool = True) -> tuple[Path, str, float]:
    """Train the classifier on the published MNIST, save it under `classifier.dir`, log it to MLflow.

    Returns (saved model path, version, test accuracy).
    """
    import mlflow

    from mnistgen import runtime, tracking
    from mnistgen.config import flatten
    from mnistgen.data.prepare import load_mnist
    from mnistgen.datasets import EVALUATION, TRAINING, dataset, mnist_input

    cfg = params.classifier
    runtime.configure(int(cfg.seed), params.train.deterministic)  # the same data, the same extractor
    splits = load_mnist(project_dir, params)
    tracking.use_experiment(project_dir, params.mlflow)
    with mlflow.start_run(
        run_name="classifier",
        tags={
            "kind": "classifier",
            "profile": params.profile,
            "data_version": tracking.data_version(project_dir),
        },
    ):
        mlflow.log_params(flatten({"classifier": cfg.plain()}))
        subset = slice(0, cfg.train_images)  # None: the whole training split
        rows = {"train": len(splits["train"].images[subset]), "test": len(splits["test"].images)}
        for split, context in (("train", TRAINING), ("test", EVALUATION)):
            mlflow.log_input(dataset(mnist_input(project_dir, params, split, rows[split], context)), context)
        model, accuracy = train(
            splits["train"].images[subset],
            splits["train"].labels[subset],
            splits["test"].images,
            splits["test"].labels,
            cfg,
            int(cfg.seed),
            progress,
        )
        path = save(model, accuracy, project_dir / cfg.dir, trained_on(project_dir, params.profile))
        version = weights_version(model)
        mlflow.log_metric("test_accuracy", accuracy)
        mlflow.set_tag("extractor_version", version)
        mlflow.log_artifacts(str(path.parent), artifact_path="classifier")
    return path, version, accuracy
