"""requirements.lock: one hash-checked lock for every supported Python, checked offline from the lock itself
(CI installs it and runs the fast lane on each of them)."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata

import pytest
from helpers.paths import REPO
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

SUPPORTED = ("3.11", "3.12", "3.13")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LOCKED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^ ;\\]+)(?: ; (?P<marker>[^\\]+))?")


def environment(version: str) -> dict[str, str]:
    """The marker environment of CPython `version` on Linux x86-64, where the project runs."""
    return {
        "python_version": version,
        "python_full_version": f"{version}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }


def pinned(version: str, where: dict[str, str] | None = None) -> dict[str, Version]:
    """What the lock installs on Python `version` (in the marker environment `where`, by default that of its
    first release): each package once, with its version."""
    where = where or environment(version)
    pins: dict[str, Version] = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if not (found := LOCKED.match(line)):
            continue
        marker = found["marker"]
        if marker and not Marker(marker.strip()).evaluate(where):
            continue
        name = canonicalize_name(found["name"])
        assert name not in pins, f"{name} is pinned twice for Python {version}"
        pins[name] = Version(found["version"])
    return pins


def direct_requirements() -> list[Requirement]:
    """The project's dependencies and those of the extras the lock is made from (cpu, dev, team)."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    named = [*PYPROJECT["project"]["dependencies"], *(r for e in ("cpu", "dev", "team") for r in extras[e])]
    return [Requirement(text) for text in named]


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_lock_pins_every_dependency_for_every_supported_python(version: str) -> None:
    pins = pinned(version)
    for requirement in direct_requirements():
        if requirement.marker and not requirement.marker.evaluate(environment(version)):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not locked for Python {version}"
        assert pins[name] in requirement.specifier, f"{name} {pins[name]} is not {requirement.specifier}"


def test_the_lock_checks_a_hash_for_every_package() -> None:
    text = (REPO / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    unhashed = [
        entry.split()[0] for entry in entries if LOCKED.match(entry) and "--hash=sha256:" not in entry
    ]
    assert not unhashed, f"locked without a hash: {unhashed}"


def test_every_place_names_the_same_supported_pythons() -> None:
    """pyproject's requires-python and the lock's environments, the Makefile's choice and CI's lanes."""
    requires = SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert [v for v in ("3.10", "3.11", "3.12", "3.13", "3.14") if Version(f"{v}.0") in requires] == list(
        SUPPORTED
    )
    (environments,) = PYPROJECT["tool"]["uv"]["environments"]
    assert [v for v in ("3.10", *SUPPORTED, "3.14") if Marker(environments).evaluate(environment(v))] == list(
        SUPPORTED
    )
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^SUPPORTED_PYTHONS := (.+)$", makefile, re.M)[1].split() == sorted(SUPPORTED)[::-1]
    assert f"for version in {' '.join(SUPPORTED)}; do" in (REPO / ".ci" / "run").read_text()


def test_this_environment_is_what_the_lock_pins_for_its_python() -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert version in SUPPORTED
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in metadata.distributions()}
    # this interpreter's own markers: a pin such as python_full_version < '3.11.3' depends on the patch
    here = {**default_environment(), "extra": ""}
    differ = {name: (str(pin), str(installed.get(name))) for name, pin in pinned(version, here).items()}
    differ = {name: versions for name, versions in differ.items() if versions[0] != versions[1]}
    assert not differ, f"(locked, installed): {differ}"
