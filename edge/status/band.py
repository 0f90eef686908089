"""Whether a microphone hears anything above 4 kHz.

A microphone that samples at 8 kHz (a telephone-band headset, a Bluetooth hands-free link, a
cheap USB dongle), resampled to the model's 16 kHz by PulseAudio, ALSA's plug layer or a
driver, delivers a stream of the right rate with nothing above about 4 kHz. Nothing fails and
nothing clips, but what lives up there is gone: a shatter's fragments (the home ``glass_break``
rule's evidence is in 2-8 kHz), speech's sibilants. Measured over the 32 ms frames of a
recording, the 90th percentile of the 4.4-7.6 kHz band's level under the 2-3.6 kHz band's is
-40 dB for home-dev-1 resampled through 8 kHz by ffmpeg or soxr and -46 dB through PulseAudio,
while a full-band microphone's noise alone keeps the two bands level (0 dB) and real
recordings at 16 kHz and more stay at -24 dB (a ring tone alone) or above (speech -4, rain -10).

:class:`BandCheck` reads each sample once, in 512-sample frames, and keeps the ratio of the
frames whose 2-3.6 kHz band holds sound (not the silence of a muted stream) that is not one
tone (a beeping alarm's pure tone has nothing above it either). Its figure is the 90th
percentile over the last minute or so of such frames, once it has enough of them.
"""

from __future__ import annotations

import numpy as np

N_FFT = 512
REF_HZ = (2000.0, 3600.0)  # just under where an 8 kHz stream ends
HIGH_HZ = (4400.0, 7600.0)  # above its resampler's transition band
SOUND_DB = -60.0  # mean power per bin of the reference band (Hann, float audio) that is sound
TONE_SHARE = 0.5  # reference band power in its 3 strongest bins that makes the frame one tone


class BandCheck:
    """The high band's level under the reference band (dB, 90th percentile) of a stream.

    Parameters
    ----------
    sample_rate:
        Of the stream; under ``2 * HIGH_HZ[1]`` nothing can be checked (:meth:`push` gives None).
    keep:
        Frames whose ratios are kept (the newest); 1800 frames of 32 ms are about a minute.
    least:
        Frames needed before a figure is given (300: about 10 s of sound).
    """

    def __init__(self, sample_rate: int, keep: int = 1800, least: int = 300) -> None:
        self.sample_rate = sample_rate
        freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
        self._ref = (freqs >= REF_HZ[0]) & (freqs < REF_HZ[1])
        self._high = (freqs >= HIGH_HZ[0]) & (freqs < HIGH_HZ[1])
        self._usable = sample_rate >= 2 * HIGH_HZ[1]
        self._window = np.hanning(N_FFT).astype(np.float32)
        self._ratios = np.zeros(keep, np.float32)  # ring of the newest ratios (dB)
        self._count = 0  # ratios written so far
        self.least = least
        self._next: int | None = None  # absolute index of the next sample to read

    def push(self, audio: np.ndarray, mask: np.ndarray, n0: int) -> float | None:
        """Read the samples of ``audio`` (``[N, channels]`` from absolute index ``n0``, ``mask``
        True where real) not read before; return the 90th percentile of the kept ratios in dB,
        or None while fewer than ``least`` frames held sound."""
        if not self._usable:
            return None
        n = len(audio)
        start = 0 if self._next is None or self._next < n0 else self._next - n0
        count = (n - start) // N_FFT
        if count > 0:
            x = audio[start : start + count * N_FFT]
            if x.ndim == 2:
                x = x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)
            ok = mask[start : start + count * N_FFT].reshape(count, N_FFT).all(axis=1)
            frames = x.reshape(count, N_FFT)[ok]
            if len(frames):
                self._add(frames)
            self._next = n0 + start + count * N_FFT
        if self._count < self.least:
            return None
        kept = self._ratios[: min(self._count, len(self._ratios))]
        k = int(0.9 * (len(kept) - 1))  # the 90th percentile, nearest rank below
        return float(np.partition(kept, k)[k])

    def _add(self, frames: np.ndarray) -> None:
        spec = np.fft.rfft(frames * self._window, axis=1)
        power = spec.real**2 + spec.imag**2
        ref = power[:, self._ref]
        ref_mean = ref.mean(axis=1)
        top = np.partition(ref, -3, axis=1)[:, -3:].sum(axis=1)
        with np.errstate(divide="ignore"):
            sound = 10.0 * np.log10(ref_mean) > SOUND_DB
        sound &= top < TONE_SHARE * ref.sum(axis=1)
        if not sound.any():
            return
        high = power[sound][:, self._high].mean(axis=1)
        ratio = 10.0 * np.log10(np.maximum(high, 1e-30) / ref_mean[sound])
        ratio = ratio[-len(self._ratios) :]
        self._ratios[(self._count + np.arange(len(ratio))) % len(self._ratios)] = ratio
        self._count += len(ratio)
