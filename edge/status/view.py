"""The live terminal view of ``edge run``: per class a probability bar and state (committed by
the decision layer where the config has ``decisions:``), active rules and recent events, per
source its rate, data age and drops. On a terminal it redraws in place; piped, it prints one line a second.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from edge.timebase.clock import NS_PER_S
from edge.decisions.decide import Event
from edge.join.spine import Spine
from edge.service.run import Prediction

BAR = 24


def bar(p: float) -> str:
    n = int(round(max(0.0, min(1.0, p)) * BAR))
    return "█" * n + "·" * (BAR - n)


def render(preds: list[Prediction], spine: Spine, now_ns: int, thresholds: dict[str, float]) -> list[str]:
    """The view as lines of text (pure: testable without a terminal)."""
    lines = []
    for p in preds:
        lines.append(
            f"stream {p.stream}  video {p.video_valid:4.0%}  audio {p.audio_valid:4.0%}  "
            f"latency {(p.emitted_ns - p.t_end_ns) / 1e6:5.1f} ms"
        )
        truth = p.extra.get("truth")
        states = p.extra.get("states")  # committed by the decision layer, where configured
        for name, prob in p.probs.items():
            on = name in states if isinstance(states, list) else prob >= thresholds.get(name, 0.5)
            state = "ON " if on else "   "
            real = ""
            if isinstance(truth, list):
                real = "  (scripted: on)" if name in truth else ""
            lines.append(f"  {name:<14} {bar(prob)} {prob:5.2f} {state}{real}")
        rules = p.extra.get("rules")
        if isinstance(rules, list):
            lines.append(f"  rules active: {', '.join(rules) or '-'}")
    for name, src in spine.sources.items():
        age = "-" if src.stats.last_data_ns is None else f"{(now_ns - src.stats.last_data_ns) / 1e6:6.0f} ms"
        drops = src.stats.drops + (src.video.dropped if src.video is not None else 0)
        lines.append(
            f"source {name:<10} {src.state.value:<12} {src.fps_meter.rate(now_ns):5.1f} fps  "
            f"age {age}  drops {drops}  gaps {src.stats.gaps}  reconnects {src.stats.reconnects}"
        )
    return lines


class LiveView:
    """Draws :func:`render` in place on a terminal, or a line per second elsewhere."""

    def __init__(self, spine: Spine, thresholds: dict[str, float], out: TextIO | None = None) -> None:
        self.spine = spine
        self.thresholds = thresholds
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self._drawn = 0
        self._last_line_ns = 0
        self._log: list[str] = []

    def update(self, preds: list[Prediction], now_ns: int, events: Sequence[Event] = ()) -> None:
        for e in events:  # starts and ends: the last few under the view, or a line each
            if e.kind != "update":
                text = (f"{e.kind:<5} {e.rule} ({e.duration_s:.1f} s, peak {e.peak:.2f}"
                        f"{', flagged' if e.flagged else ''})")
                if self.tty:
                    self._log.append(text)
                else:
                    self.out.write(f"event {text}\n")
        del self._log[:-6]
        if self.tty:
            lines = render(preds, self.spine, now_ns, self.thresholds) + [
                f"event {ln}" for ln in self._log
            ]
            if self._drawn:
                self.out.write(f"\x1b[{self._drawn}F")
            self.out.write("".join(f"\x1b[2K{ln}\n" for ln in lines))
            self.out.flush()
            self._drawn = len(lines)
        elif now_ns - self._last_line_ns >= NS_PER_S:
            self._last_line_ns = now_ns
            for p in preds:
                on = ",".join(p.active) or "-"
                top = " ".join(f"{k}={v:.2f}" for k, v in p.probs.items())
                self.out.write(f"[{p.stream}] active: {on}  {top}\n")
            self.out.flush()
