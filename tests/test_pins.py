"""constraints.txt pins every dependency setup.cfg names, within setup.cfg's own bounds, and the
environment the tests run in is the pinned one, package for package: a figure or a hash measured
under other versions is not comparable (OpenCV's image arithmetic moves the front-end features'
bits on real footage, ONNX Runtime's kernels move INT8 logits)."""

from __future__ import annotations

import configparser
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> list[Requirement]:
    """setup.cfg's install_requires and the extras installed here (the GPU extra is not)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines()
    for extra in ("train", "dev"):
        lines += cfg["options.extras_require"][extra].splitlines()
    return [Requirement(ln) for ln in (x.strip() for x in lines) if ln and not ln.startswith("#")]


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt: {line!r} is not NAME==VERSION"
        pins[canonicalize_name(name)] = version
    return pins


def test_every_dependency_is_pinned_within_setup_cfg_bounds() -> None:
    pins = _pins()
    reqs = _requirements()
    assert len(reqs) >= 20
    unpinned = [r.name for r in reqs if canonicalize_name(r.name) not in pins]
    assert not unpinned, f"setup.cfg names {unpinned}, constraints.txt pins none of them"
    outside = [f"{r} (pinned {pins[canonicalize_name(r.name)]})" for r in reqs
               if not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)]
    assert not outside, f"pins outside setup.cfg's bounds: {outside}"


def test_the_tests_run_on_the_pinned_versions() -> None:
    """`make test` installs with ``-c constraints.txt``, which pins every package of the dev
    environment, indirect ones too (scipy, protobuf): each is installed at its pin. After
    upgrading a package on purpose, `make pins` records it (then the tests and the figures run
    again)."""
    moved = []
    for name, pinned in _pins().items():
        try:
            have = metadata.version(name).split("+")[0]  # torch's local label: 2.13.0+cpu
        except metadata.PackageNotFoundError:
            have = "not installed"
        if have != pinned:
            moved.append(f"{name} {have} (pinned {pinned})")
    assert not moved, f"installed versions differ from constraints.txt: {moved}"
