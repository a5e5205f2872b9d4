"""What a stage's result depends on, read from `dvc.yaml`: one staleness rule for DVC and the pipeline.

`dvc repro` re-runs a stage when a parameter or a dependency that `dvc.yaml` lists for it changes.
`mnistgen pipeline` decides whether a finished run on disk is still current from the very same list:
`stage_inputs` reads the stage's `params` and `deps` (with `${profile}` and `${item}` substituted), and
`fingerprint` records those parameters' values and the content hashes of those dependencies. Two entry
points, one rule: whatever makes `dvc status` list a stage makes the pipeline redo it, and nothing else.

What DVC cannot see is added to the fingerprint on top: a seed given on the command line instead of
`train.seed`, and `--set` overrides (experiments).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mnistgen.config import ConfigError

DVC_FILE = "dvc.yaml"
CODE_PREFIX = "src/mnistgen/"  # deps under here are the package's code (see `_resolve`)
IGNORED_DIRS = {"__pycache__"}  # also in .dvcignore, so DVC hashes folders the same way
IGNORED_SUFFIXES = {".pyc"}
_PLACEHOLDER = re.compile(r"\$\{(profile|item)\}")


@dataclass(frozen=True)
class StageInputs:
    """The parameters (dotted keys of params.yaml) and dependencies (paths) one stage lists."""

    params: tuple[str, ...]
    deps: tuple[str, ...]
    outs: tuple[str, ...]


def stage_inputs(project_dir: Path, stage: str, profile: str, item: str | None = None) -> StageInputs:
    """The inputs of `stage` (a `foreach` stage with its `item`) as `dvc.yaml` declares them."""
    dvc_file = project_dir / DVC_FILE
    try:
        stages = yaml.safe_load(dvc_file.read_text())["stages"]
    except FileNotFoundError as err:
        raise ConfigError(
            f"{dvc_file} does not exist: it declares what each step depends on. "
            "Fix: run mnistgen in the project folder (the one that holds params.yaml and dvc.yaml)."
        ) from err
    if stage not in stages:
        raise ConfigError(f"{dvc_file} has no stage {stage!r} (it has: {', '.join(stages)})")
    body = stages[stage].get("do", stages[stage])
    values = {"profile": profile, "item": item or ""}

    def names(entries: list[Any]) -> tuple[str, ...]:
        plain = (next(iter(entry)) if isinstance(entry, dict) else entry for entry in entries)
        return tuple(_PLACEHOLDER.sub(lambda m: values[m.group(1)], name) for name in plain)

    return StageInputs(
        names(body.get("params", [])), names(body.get("deps", [])), names(body.get("outs", []))
    )


def param_values(raw_params: dict[str, Any], keys: tuple[str, ...], profile: str) -> dict[str, Any]:
    """The values DVC would compare for `keys`: as written in params.yaml (before any profile is merged),
    except `profile`, which is the profile in use (`--profile` beats the `profile:` key)."""
    values: dict[str, Any] = {}
    for key in keys:
        if key == "profile":
            values[key] = profile
            continue
        node: Any = raw_params
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(
                    f"params.yaml has no {key!r}, which dvc.yaml tracks. Fix: add it (an empty section "
                    "`{}` where a profile changes nothing)."
                )
            node = node[part]
        values[key] = node
    return json.loads(json.dumps(values))  # plain JSON types, as the record on disk holds them


def content_hash(path: Path) -> str:
    """MD5 of a file's bytes, or of a folder's sorted (relative path, file hash) pairs; "missing" if none."""
    if path.is_file():
        return _file_md5(path, path.stat().st_mtime_ns, path.stat().st_size)
    if not path.is_dir():
        return "missing"
    digest = hashlib.md5()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not _ignored(p.relative_to(path))):
        stat = file.stat()
        file_hash = _file_md5(file, stat.st_mtime_ns, stat.st_size)
        digest.update(f"{file.relative_to(path).as_posix()}:{file_hash}\n".encode())
    return digest.hexdigest()


def _ignored(relative: Path) -> bool:
    return bool(IGNORED_DIRS & set(relative.parts)) or relative.suffix in IGNORED_SUFFIXES


@functools.lru_cache(maxsize=4096)
def _file_md5(path: Path, mtime_ns: int, size: int) -> str:
    """Cached by (path, mtime, size), as DVC caches its hashes: the 55 MB of MNIST are read once a process."""
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _resolve(project_dir: Path, dep: str) -> Path:
    """A dependency's path. Code deps (`src/mnistgen/...`) fall back to the installed package's files when
    the project folder has no source tree of its own (a project folder beside an installed mnistgen)."""
    path = project_dir / dep
    if dep.startswith(CODE_PREFIX) and not (project_dir / CODE_PREFIX).is_dir():
        return Path(__file__).parent / dep[len(CODE_PREFIX) :]
    return path


def fingerprint(
    project_dir: Path,
    raw_params: dict[str, Any],
    stage: str,
    profile: str,
    item: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Everything `stage`'s result depends on: the values of the params and the hashes of the deps that
    dvc.yaml lists for it, plus `extra` (what DVC cannot see: a command-line seed, `--set` overrides)."""
    inputs = stage_inputs(project_dir, stage, profile, item)
    return {
        "stage": f"{stage}@{item}" if item else stage,
        "params": param_values(raw_params, inputs.params, profile),
        "deps": {dep: content_hash(_resolve(project_dir, dep)) for dep in inputs.deps},
        **json.loads(json.dumps(extra)),
    }


def digest(values: dict[str, Any]) -> str:
    """A short, stable name for a fingerprint (an MLflow tag, searchable)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, by name: `variants.cgan`, `src/mnistgen/training`, `seed`."""
    changed = []
    for section in sorted(set(old) | set(new)):
        before, after = old.get(section), new.get(section)
        if isinstance(before, dict) and isinstance(after, dict) and section in ("params", "deps"):
            changed += [key for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
        elif before != after:
            changed.append(section)
    return changed


def commit_stages(project_dir: Path, stages: list[str]) -> None:
    """Record in `dvc.lock` what the pipeline just produced for `stages` (`dvc commit`), so `dvc status`
    calls them current until an input changes, as the pipeline does: the two entry points never fight over
    the same outputs."""
    from mnistgen.data.versioning import dvc

    dvc(project_dir, "commit", "--force", "--quiet", *stages)
