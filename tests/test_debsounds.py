"""edge sounds fetch: pinned Debian packages' sounds into a bank folder that training reads."""

from __future__ import annotations

import json
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from edge.errors import ConfigError
from edge.runtime.card import sha256_file
from edge.sim import debsounds as d
from edge.sim.frontaudio import KINDS, SoundBank, read_sound
from tests.conftest import need

SR_IN = 44100


def _wav(path: Path, seconds: float, channels: int) -> None:
    n = int(seconds * SR_IN)
    t = np.arange(n) / SR_IN
    x = 0.5 * np.sin(2 * np.pi * 1000 * t) * np.exp(-3 * t)
    pcm = (np.repeat(x[:, None], channels, 1) * 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(SR_IN)
        w.writeframes(pcm.tobytes())


def _deb(tmp: Path, name: str = "edge-test-sounds") -> tuple[Path, d.Package]:
    """A real .deb built by dpkg-deb: two sounds and a copyright file."""
    need("dpkg-deb")
    root = tmp / "pkgroot"
    _wav(root / "usr/share/sounds/test/shatter.wav", 0.8, 2)
    _wav(root / "usr/share/sounds/test/cymbal.wav", 1.5, 1)
    doc = root / "usr/share/doc" / name
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Files: *\nLicense: GPL-2+\n")
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: edge <edge@localhost>\n"
        "Description: sounds for a test\n")
    deb = tmp / f"{name}_1.0-1_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)],
                   check=True, capture_output=True)
    return deb, d.Package(name, "1.0-1", sha256_file(deb))


def _sounds(pkg: d.Package) -> list[d.DebSound]:
    return [d.DebSound(pkg.name, "usr/share/sounds/test/shatter.wav", "glass", "heldout", "GPL-2+"),
            d.DebSound(pkg.name, "usr/share/sounds/test/cymbal.wav", "other", "train", "GPL-2+")]


def test_fetch_writes_16k_mono_flac_a_bank_file_and_the_licence(tmp_path: Path) -> None:
    deb, pkg = _deb(tmp_path)
    out = tmp_path / "bank"
    lines: list[str] = []
    bank = d.fetch(out, [deb], sounds=_sounds(pkg), packages={pkg.name: pkg},
                   cache=tmp_path / "cache", download=False, progress=lines.append)
    assert bank == out / "bank.json"
    entries = json.loads(bank.read_text())["sounds"]
    assert [(e["kind"], e["split"], e["version"]) for e in entries] == [
        ("glass", "heldout", "1.0-1"), ("other", "train", "1.0-1")]
    shatter = read_sound(out / entries[0]["file"])  # refuses anything but 16 kHz
    assert abs(len(shatter) / 16000 - 0.8) < 0.01
    # the stereo pair downmixed (each channel at -3 dB, libswresample's default), not summed
    assert abs(float(np.abs(shatter).max()) - 0.5 * 2 ** 0.5) < 0.02
    assert (out / "licences" / f"{pkg.name}.copyright").read_text().startswith("Files: *")
    assert any("glass, heldout, 0.80 s" in line for line in lines)

    held, train = SoundBank.load(out, "heldout"), SoundBank.load([out], "train")
    assert list(held.pieces) == ["glass"] and list(train.pieces) == ["other"]
    assert abs(len(train.pieces["other"][0]) / 16000 - 1.5) < 0.01

    # up to date: nothing is read again, not even the package
    deb.unlink()
    lines.clear()
    d.fetch(out, [], sounds=_sounds(pkg), packages={pkg.name: pkg}, cache=tmp_path / "cache",
            download=False, progress=lines.append)
    assert lines == [f"{out}: up to date (2 sounds)"]


def test_a_long_recording_is_cut(tmp_path: Path) -> None:
    """A soundtrack is kept as ``cut`` seconds from a start: the bank says so, the file is that
    long, and a cut past the recording's end is refused naming both."""
    deb, pkg = _deb(tmp_path)
    cut = d.DebSound(pkg.name, "usr/share/sounds/test/cymbal.wav", "other", "heldout", "GPL-2+",
                     cut=(0.5, 0.75))
    bank = d.fetch(tmp_path / "bank", [deb], sounds=[cut], packages={pkg.name: pkg},
                   cache=tmp_path / "cache", download=False)
    (entry,) = json.loads(bank.read_text())["sounds"]
    assert entry["cut"] == [0.5, 0.75]
    x = read_sound(tmp_path / "bank" / entry["file"])
    assert abs(len(x) / 16000 - 0.75) < 0.01
    # the decaying tone (0.5 exp(-3 t)) from 0.5 s on
    assert abs(float(np.abs(x[:800]).max()) - 0.5 * np.exp(-3 * 0.5)) < 0.03
    late = d.DebSound(pkg.name, "usr/share/sounds/test/cymbal.wav", "other", "heldout",
                      "GPL-2+", cut=(1.0, 1.0))
    with pytest.raises(ConfigError, match=r"1\.5 s, shorter than the cut \(1\.0, 1\.0\)"):
        d.fetch(tmp_path / "late", [deb], sounds=[late], packages={pkg.name: pkg},
                cache=tmp_path / "cache", download=False)
    assert not (tmp_path / "late").exists()  # nothing written


def test_a_song_is_its_tracks_summed(tmp_path: Path) -> None:
    """A rhythm game keeps a song's guitar apart from the rest of the band: ``also`` adds the
    second track sample by sample (the longer one's length), scaled only if the sum clips."""
    deb, pkg = _deb(tmp_path)
    song = d.DebSound(pkg.name, "usr/share/sounds/test/shatter.wav", "music", "train", "GPL-2+",
                      also="usr/share/sounds/test/cymbal.wav")
    bank = d.fetch(tmp_path / "bank", [deb], sounds=[song], packages={pkg.name: pkg},
                   cache=tmp_path / "cache", download=False)
    (entry,) = json.loads(bank.read_text())["sounds"]
    assert entry["also"] == "usr/share/sounds/test/cymbal.wav" and entry["kind"] == "music"
    x = read_sound(tmp_path / "bank" / entry["file"])
    assert abs(len(x) / 16000 - 1.5) < 0.01  # the longer track's length
    # both tracks are the same decaying tone: 0.5 sqrt(2) (stereo, downmixed) + 0.5 clips, so
    # the sum is scaled to full scale; past 0.8 s only the second track (0.5 exp(-3 t)) plays
    assert abs(float(np.abs(x).max()) - 1.0) < 0.01
    scale = 1.0 / (0.5 * 2 ** 0.5 + 0.5)
    late = x[int(0.85 * 16000): int(0.9 * 16000)]
    assert abs(float(np.abs(late).max()) - scale * 0.5 * np.exp(-3 * 0.85)) < 0.02
    train = SoundBank.load(tmp_path / "bank", "train")
    assert list(train.pieces) == ["music"]
    # a bank's kinds can be chosen; an unknown kind is refused
    assert not SoundBank.load(tmp_path / "bank", "train", ["glass", "other"]).pieces
    assert list(SoundBank.load(tmp_path / "bank", "train", ["music"]).pieces) == ["music"]
    with pytest.raises(ConfigError, match="sound kinds thunder: not one of"):
        SoundBank.load(tmp_path / "bank", "train", ["thunder"])


def test_fetch_refuses_what_is_not_pinned_missing_or_not_a_bank(tmp_path: Path) -> None:
    deb, pkg = _deb(tmp_path)
    other = d.Package(pkg.name, pkg.version, "0" * 64)
    with pytest.raises(ConfigError, match="matches no pinned package"):
        d.fetch(tmp_path / "a", [deb], sounds=_sounds(pkg), packages={pkg.name: other},
                cache=tmp_path / "cache", download=False)
    with pytest.raises(ConfigError, match="not in .*; give it with --deb FILE"):
        d.fetch(tmp_path / "a", [], sounds=_sounds(pkg), packages={pkg.name: pkg},
                cache=tmp_path / "cache", download=False)
    missing = [d.DebSound(pkg.name, "usr/share/sounds/test/none.wav", "glass", "train", "x")]
    with pytest.raises(ConfigError, match="no usr/share/sounds/test/none.wav inside"):
        d.fetch(tmp_path / "a", [deb], sounds=missing, packages={pkg.name: pkg},
                cache=tmp_path / "cache", download=False)
    assert not (tmp_path / "a").exists()  # nothing half-written
    with pytest.raises(ConfigError, match="unpinned packages: nobody"):
        d.fetch(tmp_path / "a", [deb], sounds=[d.DebSound("nobody", "x.wav", "glass", "train", "x")],
                packages={pkg.name: pkg}, download=False)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty and not a sound bank"):
        d.fetch(busy, [deb], sounds=_sounds(pkg), packages={pkg.name: pkg},
                cache=tmp_path / "cache", download=False)
    assert (busy / "notes.txt").read_text() == "mine"


def test_a_bank_file_with_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bank.json").write_text(json.dumps(
        {"sounds": [{"file": "x.flac", "kind": "thunder", "split": "train"}]}))
    with pytest.raises(ConfigError, match="kind 'thunder'"):
        SoundBank.load(tmp_path, "train")
    (tmp_path / "bank.json").write_text("[]")
    with pytest.raises(ConfigError, match="not a sound bank"):
        SoundBank.load(tmp_path, "train")


def test_the_pinned_list_names_pinned_packages_unique_files_and_held_out_glass() -> None:
    names = [s.name for s in d.SOUNDS]
    assert len(names) == len(set(names))
    assert {s.package for s in d.SOUNDS} == set(d.PACKAGES)
    assert all(s.kind in KINDS and s.split in ("train", "heldout") for s in d.SOUNDS)
    for split in ("train", "heldout"):
        kinds = {s.kind for s in d.SOUNDS if s.split == split}
        assert {"glass", "dog", "music", "other"} <= kinds, split
    # music and dogs a model learns from and those it is scored on are other packages'
    for kind in ("music", "dog"):
        by = {sp: {s.package for s in d.SOUNDS if s.kind == kind and s.split == sp}
              for sp in ("train", "heldout")}
        assert by["train"] and by["heldout"] and not by["train"] & by["heldout"], kind
    # a source's files are on one side only: held-out scores are on recordings no model heard
    sides: dict[str, set[str]] = {}
    for s in d.SOUNDS:
        sides.setdefault(str(Path(s.member).parent), set()).add(s.split)
    mixed = {folder for folder, sp in sides.items() if len(sp) > 1}
    assert not mixed, mixed
    # home-dev-1's glass shatter is minetest's second file, ../shared/realworld/sounds' dog
    # tuxpaint's: never fetched
    assert not any(s.member.endswith("default_break_glass.2.ogg") for s in d.SOUNDS)
    assert not any(s.package == "tuxpaint-stamps-default" and "dog" in s.member
                   for s in d.SOUNDS)
