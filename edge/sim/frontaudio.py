"""Audio for feature-level simulation: real sounds mixed into a scenario, and the real VAD on it.

This module owns the sound side of :mod:`edge.sim.frontsim`: the real sound files of
``../shared/realworld/sounds`` split into training and held-out pieces (:data:`SOUND_PIECES`,
:class:`SoundBank`), mixing them into a scenario's simulated audio through random microphones,
with the labels re-cut to the real sounds' own lengths (:func:`mix_audio`), hisses, ordinary
sounds of a home and real music (a bank's ``music``, often under speech: a TV) as negatives,
and the real silero VAD run on the mix (:func:`vad_chunks`, :func:`speech_at`), so a
model's ``speech.p`` is what the front end says, not a model of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.sim.scenario import Event, Scenario
from edge.sim.sound import decaying_partials, edges, shaped_noise, sub_rng, voiced
from edge.sim.voices import drums

SR = 16000
VAD_CHUNK = 512

#: The real sound files and what they are; pieces are ``(file, kind, start_s, end_s, split)``.
#: A file of a kind with several files is held out whole; long files are cut in time (the end
#: held out); the only glass and the only dog file serve training alone.
SOUND_PIECES: tuple[tuple[str, str, float, float, str], ...] = (
    ("alsa_Front_Left.flac", "speech", 0.0, math.inf, "train"),
    ("librosa_libri2_3436-172162-0000_male.flac", "speech", 0.0, math.inf, "train"),
    ("asterisk_allison_demo-instruct_8k.flac", "speech", 0.0, 48.0, "train"),
    ("asterisk_allison_demo-instruct_8k.flac", "speech", 48.0, math.inf, "heldout"),
    ("alsa_Rear_Right.flac", "speech", 0.0, math.inf, "heldout"),
    ("minetest_default_break_glass.1.flac", "glass", 0.0, math.inf, "train"),
    ("tuxpaint_dog_bark.flac", "dog", 0.0, math.inf, "train"),
    ("wikimedia_Bertof_rain_via_ahnlich.flac", "other", 0.0, 5.5, "train"),
    ("wikimedia_Bertof_rain_via_ahnlich.flac", "other", 5.5, math.inf, "heldout"),
    ("freedesktop_camera-shutter.flac", "other", 0.0, math.inf, "train"),
    ("librosa_robin_inspectorj.flac", "other", 0.0, math.inf, "heldout"),
)


KINDS = ("speech", "glass", "dog", "music", "other")


def bank_pieces(listed: Path) -> list[tuple[str, str, float, float, str]]:
    """The pieces a ``bank.json`` lists (whole files), checked."""
    import json

    from edge.errors import ConfigError

    try:
        entries = json.loads(listed.read_text())["sounds"]
        pieces = [(str(e["file"]), str(e["kind"]), 0.0, math.inf, str(e["split"]))
                  for e in entries]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{listed}: not a sound bank ({exc})") from None
    for name, kind, _, _, split in pieces:
        if kind not in KINDS or split not in ("train", "heldout"):
            raise ConfigError(f"{listed}: {name}: kind {kind!r} / split {split!r} (kinds "
                              f"{', '.join(KINDS)}; splits train, heldout)")
    return pieces


def read_sound(path: str | Path) -> np.ndarray:
    """A sound file's first channel as float32 at 16 kHz (PyAV decodes; the rate must match)."""
    import av

    from edge.errors import ConfigError

    parts: list[np.ndarray] = []
    try:
        with av.open(str(path)) as box:
            stream = box.streams.audio[0]
            if stream.rate != SR:
                raise ConfigError(f"{path}: {stream.rate} Hz audio, expected {SR}")
            for frame in box.decode(stream):
                raw = np.asarray(frame.to_ndarray())
                x = raw.astype(np.float64)
                if raw.dtype.kind == "i":
                    x /= float(2 ** (8 * raw.dtype.itemsize - 1))
                # planar: [channels, n]; packed: [1, n * channels]
                parts.append(x[0] if frame.format.is_planar else x[0, :: len(frame.layout.channels)])
    except (OSError, av.error.FFmpegError) as exc:
        raise ConfigError(f"{path}: cannot read sound: {exc}") from None
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


@dataclass
class SoundBank:
    """Real sounds by kind (:data:`KINDS`), one split of :data:`SOUND_PIECES` and banks."""

    pieces: dict[str, list[np.ndarray]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, folders: str | Path | Sequence[str | Path] | None, split: str,
             bank_kinds: Sequence[str] | None = None) -> SoundBank:
        """The ``split`` (``train`` / ``heldout``) pieces of the files in ``folders`` (None or
        empty: none). A folder with ``bank.json`` (``edge sounds fetch``) says what its files
        are, and gives only ``bank_kinds`` (None: every kind); any other folder is
        ``../shared/realworld/sounds``, named by :data:`SOUND_PIECES`."""
        from edge.errors import ConfigError
        from edge.sim.debsounds import BANK_FILE

        unknown = sorted(set(bank_kinds or ()) - set(KINDS))
        if unknown:
            raise ConfigError(f"sound kinds {', '.join(unknown)}: not one of {', '.join(KINDS)}")
        bank = cls()
        if folders is None:
            return bank
        for folder in [folders] if isinstance(folders, (str, Path)) else folders:
            listed = Path(folder) / BANK_FILE
            pieces = bank_pieces(listed) if listed.is_file() else list(SOUND_PIECES)
            for name, kind, a, b, sp in pieces:
                if sp != split or (listed.is_file() and bank_kinds is not None
                                   and kind not in bank_kinds):
                    continue
                x = read_sound(Path(folder) / name)
                seg = x[int(a * SR): None if math.isinf(b) else int(b * SR)]
                bank.pieces.setdefault(kind, []).append(np.ascontiguousarray(seg))
                bank.files.append(name if (a, b) == (0.0, math.inf) else f"{name}[{a:g}:{b:g} s]")
        return bank

    def has(self, kind: str) -> bool:
        return bool(self.pieces.get(kind))

    def pick(self, kind: str, rng: np.random.Generator) -> np.ndarray:
        """A piece of ``kind``, replayed at a random speed (0.9-1.12: pitch and tempo)."""
        ps = self.pieces[kind]
        x = ps[int(rng.integers(len(ps)))]
        r = float(rng.uniform(0.9, 1.12))
        n = max(1, int(len(x) / r))
        return np.interp(np.arange(n) * r, np.arange(len(x)), x).astype(np.float32)


def _envelope_db(x: np.ndarray, hop: int = 160) -> np.ndarray:
    n = len(x) // hop
    e = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    return np.asarray(20 * np.log10(e / (e.max() + 1e-12)))


def active_extent(x: np.ndarray, db: float = 40.0) -> tuple[int, int]:
    """Sample range where ``x``'s 10 ms envelope is within ``db`` of its peak."""
    on = np.flatnonzero(_envelope_db(x) > -db)
    if not len(on):
        return 0, len(x)
    return int(on[0]) * 160, min(len(x), (int(on[-1]) + 1) * 160)


# -- audio ---------------------------------------------------------------------------------------

#: Per class, the real-sound kind that may voice it, and how often it does when the bank has one.
REAL_VOICE = {"talking": ("speech", 0.5), "speech": ("speech", 0.7), "glass_break": ("glass", 0.6),
              "dog_bark": ("dog", 0.6)}


def _place(out: np.ndarray, x: np.ndarray, start: int, rms_bed: float, snr_db: float) -> None:
    """Add ``x`` at sample ``start`` with its active RMS ``snr_db`` over the bed's RMS."""
    a, b = active_extent(x)
    level = math.sqrt(float(np.mean(x[a:b] ** 2)) + 1e-12)
    gain = min(rms_bed * 10 ** (snr_db / 20) / level, 0.95 / (float(np.abs(x).max()) + 1e-9))
    end = min(len(out), start + len(x))
    if end > start:
        out[start:end] += gain * x[: end - start]


def _tilt(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``x`` through a random microphone and room: a first-order tilt, ``y[n] = x[n] - a x[n-1]``
    with ``a`` in [-0.6, 0.9] (a bright mic that makes sibilants hiss, to a dull one). The few
    real files must not teach that one recording's spectrum is what a class sounds like."""
    a = float(rng.uniform(-0.6, 0.9))
    y = x.astype(np.float64).copy()
    y[1:] -= a * x[:-1]
    return (y / (1 + abs(a))).astype(np.float32)


def _speech_from(x: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` samples of speech starting at an onset somewhere in ``x`` (looped when short)."""
    env = _envelope_db(x)
    on = np.flatnonzero((env > -25) & (np.concatenate([[-99.0], env[:-1]]) <= -25))
    k = int(on[int(rng.integers(len(on)))]) * 160 if len(on) else 0
    reps = -(-(n + k) // len(x)) + 1
    y = np.tile(x, reps)[k: k + n].copy()
    fade = min(len(y) // 2, 800)
    if fade:
        y[-fade:] *= np.linspace(1, 0, fade)
    return y


def mix_audio(sc: Scenario, bank: SoundBank) -> tuple[np.ndarray, Scenario]:
    """The scenario's audio with real sounds mixed in, and its labels re-cut to the real sounds.

    Events voiced by a real sound are left out of the simulator's render; the rest of the
    scenario (bed, distractors, other events) is the simulator's own.
    """
    from edge.sim.render import Simulator

    rng = sub_rng(sc.seed, "front-audio")
    real: dict[int, np.ndarray] = {}
    events = list(sc.events)
    for i, e in enumerate(sc.events):
        kind, p = REAL_VOICE.get(e.label, ("", 0.0))
        if kind and bank.has(kind) and rng.random() < p:
            x = bank.pick(kind, rng)
            if kind == "speech":
                x = _speech_from(x, rng, int((e.end - e.start) * SR))
            else:  # a finite sound: its label is where it is within 40 dB of its peak
                a, b = active_extent(x)
                x = x[a:]
                nxt = min([f.start for f in sc.events if f.label == e.label and f.start > e.start]
                          + [sc.seconds])
                end = min(nxt, e.start + (b - a) / SR)
                x = x[: int((end - e.start) * SR)]
                events[i] = Event(label=e.label, start=e.start, end=round(end, 4), variant=e.variant)
            real[i] = x
    render = sc.model_copy(update={"events": tuple(e for i, e in enumerate(events) if i not in real)})
    n = int(round(sc.seconds * SR))
    out = Simulator(render, 64, 48, 15.0, SR).audio(0, n).astype(np.float64)
    rms_bed = max(math.sqrt(float(np.mean(out ** 2))), 1e-3)
    mic = sub_rng(sc.seed, "front-mic")
    for i, x in real.items():
        _place(out, _tilt(x, mic), int(events[i].start * SR), rms_bed, float(rng.uniform(0, 25)))
    # Unlabelled real sounds: rain, birds, a shutter, cymbals, tools (negatives for every
    # class), and, in a car, someone else talking (a passenger, the radio) while the driver's
    # mouth is still.
    if bank.has("other"):
        for _ in range(int(rng.poisson(1.5 * sc.seconds / 60 + 0.3))):
            x = bank.pick("other", rng)
            x = x[: int(rng.uniform(2, 10) * SR)]
            _place(out, _tilt(x, mic), int(rng.uniform(0, sc.seconds) * SR), rms_bed,
                   float(rng.uniform(-5, 20)))
    # Hisses: a sibilant stressed by a bright microphone, a spray, a kettle: 4-8 kHz with a
    # sharp attack and nothing below, mostly inside speech (unlabelled). A glass model fired on
    # the sibilants of real read speech; the impact of breaking glass is broadband.
    if sc.task == "home":
        hiss = sub_rng(sc.seed, "front-hiss")
        talk = [(e.start, e.end) for e in events if e.label == "speech"]
        for _ in range(int(hiss.poisson(8 * sc.seconds / 60))):
            d = float(hiss.uniform(0.06, 0.3))
            if talk and hiss.random() < 0.7:
                s0, s1 = talk[int(hiss.integers(len(talk)))]
                t0 = float(hiss.uniform(s0, max(s0, s1 - d)))
            else:
                t0 = float(hiss.uniform(0, max(0.0, sc.seconds - d)))
            m = int(d * SR)
            lo = float(hiss.uniform(3000, 4500))
            x = shaped_noise(hiss, m, SR, lo, 8000) * edges(m, SR, float(hiss.uniform(0.005, 0.03)),
                                                            float(hiss.uniform(0.02, 0.08)))
            _place(out, x.astype(np.float32), int(t0 * SR), rms_bed, float(hiss.uniform(0, 22)))
    if sc.task == "home":
        for x, t0, snr in home_negatives(sc):
            _place(out, _tilt(x, mic), int(t0 * SR), rms_bed, snr)
    if sc.task == "home" and bank.has("music"):
        _music(out, sc, events, bank, rms_bed)
    if sc.task == "driver" and bank.has("speech") and rng.random() < 0.3:
        talk = [(e.start, e.end) for e in sc.events if e.label == "talking"]
        d = float(rng.uniform(1.5, 6.0))
        t0 = float(rng.uniform(0, max(0.0, sc.seconds - d)))
        if all(e1 + 0.5 <= t0 or e0 >= t0 + d + 0.5 for e0, e1 in talk):
            x = _speech_from(bank.pick("speech", rng), rng, int(d * SR))
            _place(out, _tilt(x, mic), int(t0 * SR), rms_bed, float(rng.uniform(-5, 12)))
    # Microphone gain and room level vary by tens of dB (a real cabin recording sat at -60 dB
    # RMS, the simulated beds at -20 to -40): the model must not read loudness as a class.
    out *= 10 ** (float(mic.uniform(-32, 6)) / 20)
    labels = sc.model_copy(update={"events": tuple(events)})
    return np.clip(out, -1, 1).astype(np.float32), labels


def _music(out: np.ndarray, sc: Scenario, events: Sequence[Event], bank: SoundBank,
           rms_bed: float) -> None:
    """Half the home scenarios: 6-24 s drawn of a real song or game track from a radio, a TV
    or a speaker (less where the scenario ends or a glass break is near; 2 s at least), 0-18 dB
    over the bed, unlabelled; in 60 % of those with speech it is playing as
    someone starts to speak (a TV's mix). A home model whose music was all simulated took
    speech over real music for breaking glass (the class at 0.99 on the mix, on neither part
    alone). The music keeps 0.5 s away from a glass break or a bark (the longer side of it
    plays): laid over one at its level, the event may be inaudible yet labelled, which
    teaches that music is glass (and the glass rule vetoes a break no louder than the seconds
    before).
    Its own random stream: the rest of the mix is drawn as without music."""
    rng = sub_rng(sc.seed, "front-music")
    if rng.random() >= 0.5:
        return
    d = float(rng.uniform(6, 24))
    talk = [(e.start, e.end) for e in events if e.label == "speech"]
    if talk and rng.random() < 0.6:
        t0 = talk[int(rng.integers(len(talk)))][0] - float(rng.uniform(0, d - 1))
    else:
        t0 = float(rng.uniform(-d / 2, max(0.0, sc.seconds - 2)))
    t0, t1 = max(t0, 0.0), min(t0 + d, sc.seconds)
    for e in sorted(events, key=lambda e: e.start):  # the longer side of each such event
        a, b = e.start - 0.5, e.end + 0.5
        if e.label in ("glass_break", "dog_bark") and a < t1 and b > t0:
            t0, t1 = (t0, a) if a - t0 >= t1 - b else (b, t1)
    if t1 - t0 < 2.0:
        return
    d = t1 - t0
    x = bank.pick("music", rng)
    k = int(rng.uniform(0, max(0.0, len(x) - d * SR)))
    x = x[k: k + int(d * SR)]
    x = x * edges(len(x), SR, float(rng.uniform(0.02, 1.0)), float(rng.uniform(0.02, 1.0)))
    _place(out, _tilt(x.astype(np.float32), rng), int(t0 * SR), rms_bed,
           float(rng.uniform(0, 18)))


def home_negatives(sc: Scenario) -> list[tuple[np.ndarray, float, float]]:
    """Ordinary sounds of a home, unlabelled: ``(sound, start s, dB over the bed)`` each.

    What a glass or dog model must not take for one (a home model trained on more glass fired
    on read speech, a bell, a cat and noise): struck bells and chimes (inharmonic partials
    with a sharp attack, ringing 0.3-2 s), a cat's meow (harmonics under formants, the pitch
    rising then falling, 0.4-1.2 s), clinks of cutlery or a cup (a few high partials, 0.05-0.3 s)
    and noise bursts (a tap, a fan, test noise: 0.3-3 s of band noise, soft edges); and songs
    with drums (:func:`edge.sim.voices.drums`, 4-12 s, about 0.75 a minute): a home model took
    a crash cymbal and hi-hats for glass.
    """
    rng = sub_rng(sc.seed, "front-negatives")
    out = []
    for _ in range(int(rng.poisson(5.0 * sc.seconds / 60))):
        kind = int(rng.integers(4))
        if kind == 0:  # a bell or chime
            n = int(rng.uniform(0.3, 2.0) * SR)
            f0 = float(rng.uniform(300, 2500))
            ratios = np.array([1.0, 2.0, 2.4, 3.0, 4.2, 5.4, 6.8])[: int(rng.integers(3, 8))]
            x = decaying_partials(n, SR, f0 * ratios * rng.uniform(0.97, 1.03, len(ratios)),
                                  rng.uniform(0.2, 1.0, len(ratios)),
                                  rng.uniform(0.05, 0.6, len(ratios)) * n / SR)
        elif kind == 1:  # a meow
            n = int(rng.uniform(0.4, 1.2) * SR)
            f0 = float(rng.uniform(350, 700))
            half = n // 2
            up = voiced(half, SR, f0, f0 * float(rng.uniform(1.2, 1.6)), [(900, 200), (2300, 300)])
            down = voiced(n - half, SR, f0 * 1.4, f0 * float(rng.uniform(0.7, 1.0)),
                          [(800, 200), (2100, 300)])
            x = np.concatenate([up, down]) * edges(n, SR, 0.05, 0.15)
        elif kind == 2:  # a clink
            n = int(rng.uniform(0.05, 0.3) * SR)
            x = decaying_partials(n, SR, rng.uniform(2500, 7000, 3), rng.uniform(0.3, 1.0, 3),
                                  rng.uniform(0.01, 0.08, 3))
        else:  # a noise burst
            n = int(rng.uniform(0.3, 3.0) * SR)
            lo = float(rng.uniform(50, 1500))
            x = shaped_noise(rng, n, SR, lo, float(rng.uniform(lo + 1000, 8000)))
            x = x * edges(n, SR, float(rng.uniform(0.005, 0.3)), float(rng.uniform(0.02, 0.3)))
        t0 = float(rng.uniform(0, max(0.0, sc.seconds - n / SR)))
        out.append((x.astype(np.float32), t0, float(rng.uniform(-5, 20))))
    for _ in range(int(rng.poisson(0.75 * sc.seconds / 60))):  # a song with drums
        n = int(rng.uniform(4.0, 12.0) * SR)
        t0 = float(rng.uniform(-2.0, max(0.0, sc.seconds - 2.0)))
        x = drums(rng, n, SR)
        if t0 < 0:
            x, t0 = x[int(-t0 * SR):], 0.0
        out.append((x.astype(np.float32), t0, float(rng.uniform(-5, 15))))
    return out


def vad_chunks(audio: np.ndarray, vad: object) -> np.ndarray:
    """Silero chunk probabilities of the whole stream (chunk ``k``: samples ``[512 k, 512 k +
    512)``), from a fresh state: the real front end, not a model of it."""
    vad.reset()  # type: ignore[attr-defined]
    return np.array([p for _, p in vad.push(audio, 0)], np.float32)  # type: ignore[attr-defined]


def speech_at(chunks: np.ndarray, targets_s: np.ndarray, half_s: float) -> np.ndarray:
    """Per target: the highest chunk probability among chunks wholly inside ``[t - half,
    t + half)`` (NaN: none), as :meth:`edge.front.cascade.Cascade.window` reads it."""
    out = np.full(len(targets_s), np.nan, np.float32)
    for k, t in enumerate(targets_s):
        n0, n1 = int(round((t - half_s) * SR)), int(round((t + half_s) * SR))
        c0 = max(0, -(-n0 // VAD_CHUNK))
        c1 = min(len(chunks), (n1 - VAD_CHUNK) // VAD_CHUNK + 1)
        if c1 > c0:
            out[k] = float(np.max(chunks[c0:c1]))
    return out
