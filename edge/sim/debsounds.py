"""``edge sounds fetch``: real recorded sounds out of pinned Debian packages, for training.

The sound bank of ``../shared/realworld/sounds`` holds one real glass shatter and one dog; a home
model trained on it took real crash cymbals and a desktop "glass" alert for breaking glass and
missed two real shatters it had not heard. Debian's game, desktop and music packages ship many
real recordings (glass breaking, cymbals, household tools and appliances, animals) under free
licences. This module names the ones a home model learns from (:data:`SOUNDS`), each from a
package pinned by version and SHA-256 (:data:`PACKAGES`), and writes them as 16 kHz mono FLAC
into a folder with ``bank.json`` (what each file is, its split, its package and licence) and the
packages' copyright files; :meth:`edge.sim.frontaudio.SoundBank.load` reads such a folder.

Packages come from ``--deb FILE`` (a device with no registry), the user cache
(``$XDG_CACHE_HOME/edge/debs``) or ``apt-get download``; ``dpkg-deb -x`` unpacks them. Nothing is
written into the output folder until every sound converted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ConfigError
from edge.pinned import Source, resolve
from edge.runtime.card import sha256_file

Progress = Callable[[str], None]
SR = 16000
BANK_FILE = "bank.json"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    sha256: str  # of the .deb

    @property
    def filename(self) -> str:
        return f"{self.name}_{self.version.split(':')[-1]}_all.deb"


@dataclass(frozen=True)
class DebSound:
    package: str
    member: str  # path inside the package
    kind: str  # glass, dog, speech, music or other (unlabelled)
    split: str  # train or heldout
    licence: str
    cut: tuple[float, float] | None = None  # (start s, seconds) of a long recording
    also: str | None = None  # a second member mixed in (a song's separate guitar track)

    @property
    def name(self) -> str:
        """The file it becomes: ``package__last-two-path-parts.flac``."""
        parts = Path(self.member).parts[-2:]
        stem = "_".join(p.replace(" ", "-") for p in parts).rsplit(".", 1)[0]
        return f"{self.package}__{stem}.flac"


PACKAGES = {p.name: p for p in (
    Package("minetest-data", "5.6.1+dfsg+~1.9.0mt8+dfsg-2",
            "91371dd2bd51cfcd4fa60c138667989a47047dfe1a47f7523b9ad1782d397585"),
    Package("brainparty-data", "0.61+dfsg-7",
            "fc01026824b6274eff222c9163ba134fc90889bd7d688091ffdee8e12cefc4d4"),
    Package("supertux-data", "0.6.3-2",
            "a6ad8865972f1dbb5e7b49f4e1b381dd16a68f3028a3502cfeaca2400285d27f"),
    Package("enigma-data", "1.20-dfsg.1-2.2",
            "e4cb966d16047353cdbe188e50e4e91edc20d7b3473ea0320d24689078ceed27"),
    Package("hydrogen-drumkits", "2017.09.19~dfsg-1",
            "6ea3c6df9a67762e2362f946c695e619859126b19fbccf32a2e8f07dfd03b2f4"),
    Package("tuxpaint-stamps-default", "2022.06.04-1",
            "6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34"),
    Package("mate-media-common", "1.26.0-2",
            "ced0387e36f90561be2318738ec25b0b20d02c18145e0d24c74a9838e381be4e"),
    Package("sound-icons", "0.1-8",
            "cbb7defa9cab0c86c9151e72c6c8a99a0ed21d244bc4c7cffdde7a0e4d9fa5b3"),
    Package("lmms-common", "1.2.2+dfsg1-6",
            "7d9aa55dd05f11edc57104203ee1c350e3e41f8936ab3741da2bb1158fd46c37"),
    Package("epiphany-data", "0.7.0+0-7",
            "437cb351d75d507d6bc892a2cdc1c06b0374c8cd797a6a1b7c492e775778cc9f"),
    Package("sound-theme-freedesktop", "0.8-2",
            "135cc4893ba590d428577bc3bf42df756a165c05a2a43f84311ad7db779a70ea"),
    Package("fretsonfire-songs-muldjord", "2.dfsg-2.1",
            "b37adf8b08b46d4182c283e760e4f40622d83674e05803960ea1e11a92600c7b"),
    Package("fretsonfire-songs-sectoid", "1.dfsg-3.1",
            "14c1ed3e43c1a6a80eae7698f0469a0825cd1184e441968d62df89ca418aa0b4"),
    Package("frozen-bubble-data", "2.212-11",
            "39cdfd07d9532d1558762cf265a844d09015c4540568573c50f444cc084166e0"),
    Package("scorched3d-data", "44+dfsg-8",
            "b0be0a6d561966a62b1f135e0e6f5681c85f12e34ecad5777cb1af9fbcb7f1da"),
    Package("qabcs-data", "1.0.2-6",
            "3484da4cf258e6f3a39a1fc99bbfcaddfd679cff96a8fa792f261ab0a2bf9d86"),
    Package("trophy-data", "2.0.3-2",
            "d0071039230b737ca82a9dcbdd0ec18363312d49a999598b99cea95c5c6018c0"),
    Package("etw-data", "3.6+svn162-6",
            "d1c79c32f6223332c01eb23ba78531e8d9d663c1f057cd21d8aac708b8de218a"),
    Package("xemacs21-basesupport", "2009.02.17.dfsg.3-1",
            "439b91026324abc90a975df7aaaecdedd984a83a2524c0d2ab3f64a5dc79cebb"),
)}


def _many(package: str, folder: str, names: str, kind: str, split: str,
          licence: str, cut: tuple[float, float] | None = None) -> list[DebSound]:
    return [DebSound(package, f"{folder}/{n}", kind, split, licence, cut) for n in names.split()]


def _songs(package: str, folder: str, names: str, split: str, licence: str,
           cut: tuple[float, float]) -> list[DebSound]:
    """A rhythm game's songs, each its backing track (the rest of the band) with its guitar
    track mixed in: the band's recording as a radio plays it. ``names`` are ``|``-separated."""
    return [DebSound(package, f"{folder}/{n}/song.ogg", "music", split, licence, cut,
                     also=f"{folder}/{n}/guitar.ogg") for n in names.split("|")]


_MT = "usr/share/games/minetest/games/minetest_game/mods/default/sounds"
_BP = "usr/share/games/brainparty"
_H2 = "usr/share/hydrogen/data/drumkits"
_TP = "usr/share/tuxpaint/stamps"
_SI = "usr/share/sounds/sound-icons"
_FD = "usr/share/sounds/freedesktop/stereo"
_STM = "usr/share/games/supertux2/music"
_FOF = "usr/share/games/fretsonfire/data/songs"

#: What is fetched. Split by source (a folder is on one side only), so held-out scores are on
#: recordings no model heard: the held-out glass is two games' shatters (one recorded at
#: 8 kHz); the held-out ordinary sounds are other drum kits' cymbals and drums, a game's meow,
#: pops and whacks, a cat, desktop alert sounds and a screen reader's earcons, and everyday
#: sounds of a home that must start no event: a desktop's alarm clock, ringtones, dial tones
#: and chimes, and 30 s of each of nine game soundtracks (music: drums, bells, synths) and of
#: four songs of a metal band (sectoid). Music a home model learns from is another band's four
#: songs (muldjord) and a puzzle game's three tracks (frozen-bubble), 90 s each. Dogs: five
#: recordings of barking (one to three barks, a 4 s run of barks and whines) from two games and
#: a children's alphabet app to learn from; held out, a football game's bark, an editor's
#: (recorded at 8 kHz) and a desktop's bark alert.
#: minetest's second glass file is left out: it is the shatter of
#: ``../shared/realworld/home-dev-1``.
SOUNDS: tuple[DebSound, ...] = (
    DebSound("minetest-data", f"{_MT}/default_break_glass.3.ogg", "glass", "train", "CC-BY-SA-3.0"),
    DebSound("supertux-data", "usr/share/games/supertux2/sounds/crystallo-shatter.ogg", "glass",
             "train", "GPL-3+"),
    DebSound("brainparty-data", f"{_BP}/glass_break.wav", "glass", "heldout", "GPL-3+"),
    DebSound("enigma-data", "usr/share/games/enigma/soundsets/enigma/shatter.wav", "glass",
             "heldout", "GPL-2"),
    *_many("brainparty-data", _BP, "meow.wav explosion.wav card_flip.wav balloon_pop.wav "
           "whack.wav soft_boom.wav", "other", "heldout", "GPL-3+"),
    *_many("hydrogen-drumkits", f"{_H2}/The Black Pearl 1.0", "SabianCrash-Hard.wav "
           "SabianCrash-Soft.wav SabianCrashFlink-Med.wav PaisteRide-Med.wav PaisteBell-Hard.wav "
           "Cowbell-Hard.wav", "other", "train", "GPL-2"),
    *_many("hydrogen-drumkits", f"{_H2}/ForzeeStereo", "Crash18-1.wav CrashRide18-2.wav "
           "RideBell-1.wav", "other", "train", "GPL-2"),
    *_many("hydrogen-drumkits", f"{_H2}/ColomboAcousticDrumkit", "crash20i__crash.flac "
           "crash16i__ride2.flac", "other", "train", "GPL-2+ with composition exception"),
    DebSound("hydrogen-drumkits", f"{_H2}/Audiophob/124101__connersaw8__crash.wav", "other",
             "train", "CC0"),
    *_many("hydrogen-drumkits", f"{_H2}/Millo_MultiLayered2", "crash_03.flac ride_03.flac",
           "other", "heldout", "GPL-2"),
    *_many("tuxpaint-stamps-default", _TP, "household/tools/hammer.ogg "
           "household/tools/mallet_metal.ogg household/arttools/scissors_small_open.ogg "
           "household/tools/saw.ogg household/kettle.ogg household/toilet.ogg "
           "household/Washing-machine.ogg household/vacuum_cleaner.ogg household/rubberduck.ogg "
           "household/dishes/bottle.ogg household/dishes/glass.ogg hobbies/camera_35mm.ogg "
           "seasonal/christmas/gift.ogg "
           "seasonal/christmas/hard_candy.ogg seasonal/newyears/fireworks.ogg "
           "naturalforces/lightningbolt.ogg food/fruit/apple_red.ogg", "other", "train", "GPL-2"),
    *_many("tuxpaint-stamps-default", _TP, "hobbies/music/percussion/cymbal_crash.ogg "
           "hobbies/music/percussion/drumkit.ogg seasonal/halloween/blackcat.ogg", "other",
           "heldout", "GPL-2"),
    *_many("lmms-common", "usr/share/lmms/samples/drums", "crash01.ogg crash02.ogg ride01.ogg "
           "hihat_opened01.ogg shaker01.ogg clap01.ogg snare_acoustic01.ogg", "other", "heldout",
           "GPL-2+"),
    DebSound("epiphany-data", "usr/share/epiphany/sfx/wood_smash.wav", "other", "train", "GPL-2"),
    *_many("mate-media-common", "usr/share/sounds/mate/default/alerts", "glass.ogg drip.ogg "
           "sonar.ogg", "other", "heldout", "GPL-2+"),
    *_many("sound-icons", _SI, "cymbaly-1.wav glass-water-1.wav gummy-cat-2.wav "
           "percussion-10.wav", "other", "heldout", "GPL-2+"),
    DebSound("sound-theme-freedesktop", f"{_FD}/alarm-clock-elapsed.oga", "other", "heldout",
             "CC-BY-SA-3.0"),
    *_many("sound-theme-freedesktop", _FD, "phone-incoming-call.oga phone-outgoing-calling.oga "
           "phone-outgoing-busy.oga message-new-instant.oga", "other", "heldout", "GPL-2+"),
    *_many("sound-theme-freedesktop", _FD, "bell.oga complete.oga", "other", "heldout",
           "CC-BY-3.0"),
    *_many("sound-theme-freedesktop", _FD, "dialog-warning.oga window-attention.oga "
           "suspend-error.oga network-connectivity-lost.oga", "other", "heldout",
           "CC-BY-SA-3.0"),
    *_many("supertux-data", _STM, "forest/clavelian_march.ogg misc/battle_theme.ogg "
           "antarctic/chipdisko.ogg forest/forest_theme.ogg castle/darkforestkeep.ogg "
           "tropical/saharan_penguin.ogg retro/classic.ogg misc/theme.ogg "
           "forest/bright_thunders.ogg", "music", "heldout", "GPL-2+", cut=(40.0, 30.0)),
    *_songs("fretsonfire-songs-sectoid", f"{_FOF}/sectoid", "Escape from chaosland|Feelings|"
            "Metal madness|War of freedom", "heldout", "GPL-2+", cut=(40.0, 30.0)),
    *_songs("fretsonfire-songs-muldjord", f"{_FOF}/muldjord", "armygeddon|chaos_god|"
            "internal_degeneration|mutilated_mime", "train", "CC-BY-SA-3.0", cut=(20.0, 90.0)),
    *_many("frozen-bubble-data", "usr/share/games/frozen-bubble/snd", "frozen-mainzik-1p.ogg "
           "frozen-mainzik-2p.ogg introzik.ogg", "music", "train", "GPL-2", cut=(10.0, 90.0)),
    *_many("scorched3d-data", "usr/share/games/scorched3d/data/globalmods/apoc/data/wav/misc",
           "dog.wav dog2.wav dog3.wav", "dog", "train", "CC-BY-SA-3.0"),
    DebSound("qabcs-data", "usr/share/qabcs/abcs/all/noises/dog.ogg", "dog", "train", "GPL-3+"),
    DebSound("trophy-data", "usr/share/games/trophy/sounds/dog.wav", "dog", "train", "GPL-2"),
    DebSound("etw-data", "usr/share/games/etw/snd/dog.wav", "dog", "heldout", "GPL-2+"),
    DebSound("xemacs21-basesupport", "usr/share/xemacs21/xemacs-packages/etc/sounds/bark.wav",
             "dog", "heldout", "GPL"),
    DebSound("mate-media-common", "usr/share/sounds/mate/default/alerts/bark.ogg", "dog",
             "heldout", "GPL-2+"),
)


def cache_dir() -> Path:
    """Where downloaded packages are kept: ``$XDG_CACHE_HOME/edge/debs`` (``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge" / "debs"


def _quiet(_: str) -> None:
    pass


def resolve_debs(needed: Sequence[Package], given: Sequence[str | Path] = (), *,
                 cache: Path | None = None, download: bool = True,
                 progress: Progress = _quiet) -> dict[str, Path]:
    """The .deb of each needed package, by name: a given file (matched by SHA-256), a cached
    copy, or a fresh ``apt-get download`` into the cache."""
    source = Source[Package]("package", "--deb FILE", lambda p: p.name,
                             lambda p, c: _download(p, c, progress))
    return resolve(source, needed, PACKAGES.values(), given, cache or cache_dir(), download,
                   progress)


def _download(pkg: Package, cache: Path, progress: Progress) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    progress(f"{pkg.name} {pkg.version}: apt-get download")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        try:
            res = subprocess.run(["apt-get", "download", f"{pkg.name}={pkg.version}"], cwd=tmp,
                                 capture_output=True, text=True)
        except FileNotFoundError:
            raise ConfigError(f"{pkg.name}: apt-get is not installed; download "
                              f"{pkg.filename} yourself and pass --deb FILE") from None
        debs = sorted(Path(tmp).glob("*.deb"))
        if res.returncode != 0 or not debs:
            tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ConfigError(f"{pkg.name}={pkg.version}: apt-get download failed ({tail[0]}); "
                              f"download {pkg.filename} yourself and pass --deb FILE")
        if sha256_file(debs[0]) != pkg.sha256:
            raise ConfigError(f"{debs[0].name}: SHA-256 differs from the pinned "
                              f"{pkg.sha256[:12]}...")
        out = cache / pkg.filename
        os.replace(debs[0], out)
    return out


def unpack(deb: Path, members: Sequence[str], into: Path) -> None:
    """``members`` of ``deb`` (and its copyright file) under ``into``, by ``dpkg-deb -x``."""
    if shutil.which("dpkg-deb") is None:
        raise ConfigError("dpkg-deb is not installed (Debian's dpkg): it unpacks the packages")
    res = subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], capture_output=True, text=True)
    if res.returncode != 0:
        raise ConfigError(f"{deb}: dpkg-deb -x failed: {res.stderr.strip()}")
    missing = [m for m in members if not (into / m).is_file()]
    if missing:
        raise ConfigError(f"{deb.name}: no {', '.join(missing)} inside")


def _decode(src: Path) -> np.ndarray:
    """``src`` decoded, mixed to mono and resampled to 16 kHz (float32)."""
    import av

    parts: list[np.ndarray] = []
    try:
        with av.open(str(src)) as box:
            stream = box.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SR)
            for frame in box.decode(stream):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
    except (OSError, av.error.FFmpegError) as exc:
        raise ConfigError(f"{src}: cannot read sound: {exc}") from None
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def to_flac(src: Path, dst: Path, cut: tuple[float, float] | None = None,
            also: Path | None = None) -> float:
    """``src`` decoded, mixed to mono, resampled to 16 kHz (``also``: a second recording added
    sample by sample; ``cut``: only ``seconds`` from ``start``) and written as FLAC; its
    seconds."""
    import av

    x = _decode(src)
    if also is not None:
        y = _decode(also)
        n = max(len(x), len(y))
        x = np.pad(x, (0, n - len(x))) + np.pad(y, (0, n - len(y)))
        peak = float(np.abs(x).max()) if n else 0.0
        if peak > 1.0:  # two full-scale tracks summed: scaled, not clipped
            x /= peak
    if cut is not None:
        start = round(cut[0] * SR)
        if start + round(cut[1] * SR) > len(x):
            raise ConfigError(f"{src}: {len(x) / SR:.1f} s, shorter than the cut {cut}")
        x = x[start:start + round(cut[1] * SR)]
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    with av.open(str(dst), "w", format="flac") as box:
        st = box.add_stream("flac", rate=SR, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SR
        for packet in st.encode(frame):
            box.mux(packet)
        for packet in st.encode(None):
            box.mux(packet)
    return len(x) / SR


def fetch(out: str | Path, debs: Sequence[str | Path] = (), *, sounds: Sequence[DebSound] = SOUNDS,
          packages: dict[str, Package] | None = None, cache: Path | None = None,
          download: bool = True, progress: Progress = _quiet) -> Path:
    """Write ``sounds`` (of ``packages``, default :data:`PACKAGES`) as FLAC into ``out`` with
    ``bank.json`` and the packages' copyright files under ``licences/``; returns the bank file.
    Up to date (nothing read) when ``bank.json`` lists the same sounds and they are there."""
    out = Path(out)
    packages = PACKAGES if packages is None else packages
    unknown = sorted({s.package for s in sounds} - set(packages))
    if unknown:
        raise ConfigError(f"sounds of unpinned packages: {', '.join(unknown)}")
    entries: list[dict[str, Any]] = [
        {"file": s.name, "kind": s.kind, "split": s.split, "package": s.package,
         "version": packages[s.package].version, "member": s.member, "licence": s.licence,
         **({} if s.cut is None else {"cut": list(s.cut)}),
         **({} if s.also is None else {"also": s.also})}
        for s in sounds]
    bank = out / BANK_FILE
    if bank.is_file():
        try:
            have = json.loads(bank.read_text())["sounds"]
        except (ValueError, KeyError, TypeError):
            have = None
        if have == entries and all((out / e["file"]).is_file() for e in entries):
            progress(f"{out}: up to date ({len(entries)} sounds)")
            return bank
    names = sorted({s.package for s in sounds})
    files = resolve_debs([packages[n] for n in names], debs, cache=cache, download=download,
                         progress=progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        stage = Path(tmp) / "bank"
        (stage / "licences").mkdir(parents=True)
        for n in names:
            mine = [s for s in sounds if s.package == n]
            root = Path(tmp) / n
            unpack(files[n], [m for s in mine for m in (s.member, s.also) if m], root)
            copyright = root / "usr" / "share" / "doc" / n / "copyright"
            if copyright.is_file():
                shutil.copyfile(copyright, stage / "licences" / f"{n}.copyright")
            for s in mine:
                seconds = to_flac(root / s.member, stage / s.name, s.cut,
                                  None if s.also is None else root / s.also)
                progress(f"{s.name}: {s.kind}, {s.split}, {seconds:.2f} s")
            shutil.rmtree(root)
        (stage / BANK_FILE).write_text(json.dumps({
            "about": "Real sounds from pinned Debian packages (edge sounds fetch); each file "
                     "keeps its package's licence, in licences/. For training and evaluation; "
                     "not shipped inside models.",
            "sounds": entries}, indent=1) + "\n")
        if out.exists():
            if any(out.iterdir()) and not bank.is_file():
                raise ConfigError(f"{out}: not empty and not a sound bank; give another --out")
            shutil.rmtree(out)
        os.replace(stage, out)
    return bank
