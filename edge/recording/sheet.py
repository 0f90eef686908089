"""The contact sheet of a recording: what happened when, at a glance, to label by looking.

While recording, :class:`ContactSheet` keeps one small thumbnail per second (JPEG-compressed in
memory), the audio level per 100 ms and, where the silero VAD front end is installed
(``engines/front``), the speech probability per 32 ms chunk. :meth:`ContactSheet.render` draws
rows of ten seconds: thumbnails stamped with their time (mm:ss.s), and under them the level
(dBFS, RMS) and the speech activity as strips on the same time axis, one second per thumbnail.
A long recording is split over pages of ten minutes: ``sheet.png``, ``sheet-2.png``, ...
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from edge.errors import EdgeError

if TYPE_CHECKING:
    from edge.front.vad import StreamingVad

log = logging.getLogger(__name__)

COLS = 10  # seconds (thumbnails) per row
ROWS_PER_PAGE = 60
THUMB_W = 160
LEVEL_H = 32
VAD_H = 12
MARGIN = 64
HEADER_H = 58
FLOOR_DB = -60.0
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def mmss(t_s: float) -> str:
    """``mm:ss.s``."""
    t_s = max(0.0, t_s)
    minutes = int(t_s // 60)
    return f"{minutes:02d}:{t_s - 60 * minutes:04.1f}"


class SpeechActivity:
    """Silero VAD over the file's audio (mono mix; 32/48 kHz averaged down to 16 kHz).

    ``chunks`` holds ``(file sample of the chunk start, probability)``; NaN where unknown.
    """

    def __init__(self, vad: StreamingVad, sample_rate: int) -> None:
        self.vad = vad
        self.factor = sample_rate // vad.sample_rate
        self.chunks: list[tuple[int, float]] = []
        self._carry = np.zeros(0, np.float32)
        self._carry_ok = np.zeros(0, bool)
        self._next: int | None = None  # file sample index of _carry[0]

    def push(self, mono: np.ndarray, f0: int, valid: np.ndarray) -> None:
        if self._next is None:
            skip = (-f0) % self.factor  # start on the decimation grid
            mono, valid, f0 = mono[skip:], valid[skip:], f0 + skip
            self._next = f0
        x = np.concatenate([self._carry, mono])
        ok = np.concatenate([self._carry_ok, valid])
        start = self._next
        usable = len(x) // self.factor * self.factor
        self._carry, self._carry_ok = x[usable:], ok[usable:]
        self._next = start + usable
        if not usable:
            return
        dec = x[:usable].reshape(-1, self.factor).mean(axis=1)
        dec_ok = np.asarray(ok[:usable].reshape(-1, self.factor).all(axis=1), bool)
        for m, p in self.vad.push(dec, start // self.factor, dec_ok):
            self.chunks.append((m * self.factor, p))


def open_speech_activity(front_dir: str | Path, sample_rate: int) -> tuple[SpeechActivity | None, str]:
    """The VAD for the sheet, or None and a note saying why there is none."""
    try:
        from edge.front.vad import StreamingVad

        vad = StreamingVad(front_dir)
    except (EdgeError, ImportError, OSError) as exc:
        return None, f"speech activity not shown: no silero VAD ({str(exc).splitlines()[0]})"
    if sample_rate % vad.sample_rate:
        return None, (f"speech activity not shown: the VAD needs {vad.sample_rate} Hz or a "
                      f"multiple, the audio is {sample_rate} Hz")
    return SpeechActivity(vad, sample_rate), "speech activity: silero VAD (orange: speech)"


class ContactSheet:
    """Collects thumbnails, levels and speech activity; draws the sheet.

    Parameters
    ----------
    width, height:
        Frame size of the video (the thumbnails keep its aspect); None without video.
    sample_rate:
        Of the audio (0 without audio).
    speech:
        The VAD, or None.
    """

    def __init__(self, width: int | None, height: int | None, sample_rate: int,
                 speech: SpeechActivity | None = None) -> None:
        aspect = (height / width) if width and height else 0.75
        self.thumb_h = max(8, int(round(THUMB_W * aspect)))
        self.sample_rate = sample_rate
        self.speech = speech
        self.thumbs: dict[int, tuple[float, bytes]] = {}
        self._bin = max(1, sample_rate // 10)
        self._sumsq = np.zeros(0, np.float64)
        self._count = np.zeros(0, np.int64)
        self._bad = np.zeros(0, np.int64)

    # -- while recording -----------------------------------------------------------------
    def add_frame(self, image: np.ndarray, t_s: float) -> None:
        """The first frame of each second becomes that second's thumbnail."""
        k = int(math.floor(t_s))
        if k < 0 or k in self.thumbs:
            return
        small = cv2.resize(image, (THUMB_W, self.thumb_h), interpolation=cv2.INTER_AREA)
        ok, jpg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if ok:
            self.thumbs[k] = (t_s, jpg.tobytes())

    def add_audio(self, samples: np.ndarray, f0: int, valid: np.ndarray) -> None:
        """Accumulate the level per 100 ms (and feed the VAD)."""
        mono = samples.mean(axis=1) if samples.ndim == 2 else samples
        bins = (f0 + np.arange(len(mono))) // self._bin
        lo, hi = int(bins[0]), int(bins[-1]) + 1
        if hi > len(self._count):
            grow = max(hi, 2 * len(self._count)) - len(self._count)
            self._sumsq = np.concatenate([self._sumsq, np.zeros(grow)])
            self._count = np.concatenate([self._count, np.zeros(grow, np.int64)])
            self._bad = np.concatenate([self._bad, np.zeros(grow, np.int64)])
        rel = bins - lo
        sq = mono.astype(np.float64) ** 2
        self._sumsq[lo:hi] += np.bincount(rel, weights=np.where(valid, sq, 0.0), minlength=hi - lo)
        self._count[lo:hi] += np.bincount(rel, minlength=hi - lo)
        self._bad[lo:hi] += np.bincount(rel, weights=~valid, minlength=hi - lo).astype(np.int64)
        if self.speech is not None:
            self.speech.push(mono.astype(np.float32), f0, valid)

    def levels_db(self) -> tuple[np.ndarray, np.ndarray]:
        """Level per 100 ms bin (dBFS, RMS of the valid samples) and whether the bin is mostly a gap."""
        good = self._count - self._bad
        with np.errstate(divide="ignore", invalid="ignore"):
            rms2 = np.where(good > 0, self._sumsq / np.maximum(good, 1), 0.0)
            db = np.where(rms2 > 0, 10 * np.log10(rms2), FLOOR_DB)
        return np.maximum(db, FLOOR_DB), (self._bad * 2 > self._count) & (self._count > 0)

    # -- at the end ----------------------------------------------------------------------
    def render(self, path: str | Path, length_s: float, header: list[str]) -> list[Path]:
        """Draw the sheet (pages of ten minutes) and write it atomically; the paths written."""
        out = Path(path)
        seconds = max(1, int(math.ceil(length_s - 1e-6)))
        rows = (seconds + COLS - 1) // COLS
        pages = (rows + ROWS_PER_PAGE - 1) // ROWS_PER_PAGE
        written = []
        for page in range(pages):
            first = page * ROWS_PER_PAGE
            img = self._page(first, min(rows, first + ROWS_PER_PAGE), length_s, header, page, pages)
            target = out if page == 0 else out.with_name(f"{out.stem}-{page + 1}{out.suffix}")
            _write_png(target, img)
            written.append(target)
        return written

    def _page(self, row0: int, row1: int, length_s: float, header: list[str], page: int,
              pages: int) -> np.ndarray:
        row_h = self.thumb_h + LEVEL_H + VAD_H + 14
        w = MARGIN + COLS * THUMB_W + 8
        img = np.full((HEADER_H + (row1 - row0) * row_h + 4, w, 3), 24, np.uint8)
        lines = list(header) + ([f"page {page + 1} of {pages}"] if pages > 1 else [])
        for i, line in enumerate(lines[:4]):
            cv2.putText(img, line, (6, 14 + 13 * i), _FONT, 0.4, (230, 230, 230), 1, cv2.LINE_AA)
        db, gap = self.levels_db()
        vad = np.asarray(self.speech.chunks, np.float64).reshape(-1, 2) if self.speech else None
        px_per_s = THUMB_W
        for r in range(row0, row1):
            y = HEADER_H + (r - row0) * row_h
            s0 = r * COLS
            ys, yv = y + self.thumb_h + 3, y + self.thumb_h + LEVEL_H + 6
            cv2.putText(img, mmss(s0), (4, y + 14), _FONT, 0.4, (200, 200, 200), 1, cv2.LINE_AA)
            cv2.putText(img, "level", (4, ys + 20), _FONT, 0.38, (160, 200, 160), 1, cv2.LINE_AA)
            cv2.putText(img, "speech" if self.speech else "(no vad)", (4, yv + 10), _FONT, 0.33,
                        (120, 170, 240), 1, cv2.LINE_AA)
            for c in range(COLS):
                k = s0 + c
                if k >= length_s:
                    break
                x = MARGIN + c * THUMB_W
                self._thumb(img, k, x, y)
                cv2.rectangle(img, (x, ys), (x + THUMB_W - 1, ys + LEVEL_H), (40, 40, 40), 1)
                cv2.line(img, (x, ys + LEVEL_H // 3), (x + THUMB_W - 1, ys + LEVEL_H // 3),
                         (48, 48, 48), 1)  # -20 dBFS
            # Level bars: ten per second, under their second's thumbnail.
            b0, b1 = s0 * 10, min(len(db), (s0 + COLS) * 10)
            for b in range(b0, b1):
                if self._count[b] == 0:
                    continue
                x0 = MARGIN + int((b - b0) * px_per_s / 10)
                x1 = MARGIN + int((b - b0 + 1) * px_per_s / 10) - 1
                if gap[b]:
                    cv2.rectangle(img, (x0, ys + 1), (x1, ys + LEVEL_H - 1), (90, 90, 90), -1)
                    continue
                hgt = int(round((db[b] - FLOOR_DB) / -FLOOR_DB * (LEVEL_H - 2)))
                color = (60, 180, 60) if db[b] < -20 else (40, 200, 220) if db[b] < -6 else (40, 40, 230)
                if hgt > 0:
                    cv2.rectangle(img, (x0, ys + LEVEL_H - 1 - hgt), (x1, ys + LEVEL_H - 1), color, -1)
            if vad is not None and len(vad) and self.sample_rate:
                t = vad[:, 0] / self.sample_rate
                sel = (t >= s0) & (t < s0 + COLS)
                chunk_s = self.speech.vad.chunk_samples * self.speech.factor / self.sample_rate \
                    if self.speech else 0.032
                for ts, p in zip(t[sel].tolist(), vad[sel, 1].tolist()):
                    x0 = MARGIN + int((ts - s0) * px_per_s)
                    x1 = max(x0, MARGIN + int((ts + chunk_s - s0) * px_per_s) - 1)
                    color = (90, 90, 90) if math.isnan(p) else (30, 140, 255) if p >= 0.5 else (60, 50, 40)
                    cv2.rectangle(img, (x0, yv), (x1, yv + VAD_H - 2), color, -1)
        return img

    def _thumb(self, img: np.ndarray, k: int, x: int, y: int) -> None:
        got = self.thumbs.get(k)
        if got is None:
            cv2.rectangle(img, (x, y), (x + THUMB_W - 1, y + self.thumb_h - 1), (50, 50, 50), 1)
            cv2.putText(img, "no video", (x + 40, y + self.thumb_h // 2), _FONT, 0.4, (110, 110, 110), 1)
            label = mmss(k)
        else:
            t_s, jpg = got
            small = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
            if small is not None and small.shape[:2] == (self.thumb_h, THUMB_W):
                img[y : y + self.thumb_h, x : x + THUMB_W] = small
            label = mmss(t_s)
        (tw, th), _ = cv2.getTextSize(label, _FONT, 0.4, 1)
        cv2.rectangle(img, (x, y), (x + tw + 4, y + th + 5), (0, 0, 0), -1)
        cv2.putText(img, label, (x + 2, y + th + 2), _FONT, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.line(img, (x, y), (x, y + self.thumb_h + LEVEL_H + VAD_H + 6), (70, 70, 70), 1)


def _write_png(path: Path, img: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", img)
    if not ok:
        raise OSError(f"cannot encode {path.name}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data.tobytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
