"""The reference audio-visual fusion network.

Video: a small CNN per frame, a temporal convolution, masked pooling (all frames and the most
recent quarter, since a state "now" matters more than two seconds ago). Audio: a log-mel CNN
with the same two poolings over time. Fusion: each modality's embedding is gated by whether any
of its data is valid, and the presence flags themselves are inputs, so one model serves when a
modality is missing (it is trained with modality dropout). Multi-label sigmoid head (logits out).
"""

from __future__ import annotations

import torch
from torch import nn


def _block2d(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def masked_pools(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked mean of ``x`` [B, C, L] over all L and over the last quarter; mask [B, L]."""
    m = mask.unsqueeze(1)
    full = (x * m).sum(-1) / m.sum(-1).clamp(min=1.0)
    q = max(1, x.shape[-1] // 4)
    mr = m[..., -q:]
    recent = (x[..., -q:] * mr).sum(-1) / mr.sum(-1).clamp(min=1.0)
    return full, recent


class VideoBranch(nn.Module):
    def __init__(self, channels: int, size: int, width: int = 32, embed: int = 128) -> None:
        super().__init__()
        w = width
        side = size
        for _ in range(4):  # four stride-2 convolutions (padding 1, kernel 3)
            side = (side + 1) // 2
        # A fixed pooling to about 3x3 (adaptive pooling does not export with a dynamic batch).
        k = max(1, side // 3)
        out_side = side // k
        self.frame = nn.Sequential(
            _block2d(channels, w // 2, 2),
            _block2d(w // 2, w, 2),
            _block2d(w, 2 * w, 2),
            _block2d(2 * w, 2 * w, 1),
            _block2d(2 * w, 3 * w, 2),
            nn.AvgPool2d(k),
            nn.Flatten(),
            nn.Linear(3 * w * out_side * out_side, embed),
            nn.ReLU(inplace=True),
        )
        self.temporal = nn.Sequential(
            nn.Conv1d(embed, embed, 3, padding=1), nn.ReLU(inplace=True)
        )
        self.out_dim = 2 * embed

    def forward(self, video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        f = self.frame(video.flatten(0, 1)).view(b, t, -1).transpose(1, 2)  # [B, E, T]
        f = self.temporal(f * mask.unsqueeze(1))
        full, recent = masked_pools(f, mask)
        return torch.cat([full, recent], dim=1)


class AudioBranch(nn.Module):
    def __init__(self, n_mels: int, width: int = 32, embed: int = 128) -> None:
        super().__init__()
        w = width
        # The first convolution halves frequency only: onsets (alarm beeps, glass) need the
        # 10 ms time resolution, the 64 mel bands do not need all their detail.
        self.conv = nn.Sequential(
            nn.Conv2d(1, w // 2, 3, stride=(2, 1), padding=1, bias=False),
            nn.BatchNorm2d(w // 2),
            nn.ReLU(inplace=True),
            _block2d(w // 2, w, 1),
            nn.MaxPool2d((2, 2)),
            _block2d(w, 2 * w, 1),
            nn.MaxPool2d((2, 2)),
            _block2d(2 * w, 2 * w, 1),
        )
        self.proj = nn.Sequential(nn.Conv1d(2 * w * (n_mels // 8), embed, 1), nn.ReLU(inplace=True))
        self.out_dim = 2 * embed

    def forward(self, audio: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.conv(audio)  # [B, C, M/8, F/4]
        x = self.proj(x.flatten(1, 2))  # [B, E, F/4]
        m = nn.functional.max_pool1d(mask.unsqueeze(1), 4, 4, ceil_mode=False).squeeze(1)
        m = m[..., : x.shape[-1]]
        full, recent = masked_pools(x, m)
        return torch.cat([full, recent], dim=1)


class FusionNet(nn.Module):
    """Inputs: video [B,T,C,H,W], video_mask [B,T], audio [B,1,M,F], audio_mask [B,F]."""

    def __init__(
        self, n_classes: int, channels: int, size: int, n_mels: int, width: int = 32
    ) -> None:
        super().__init__()
        self.video = VideoBranch(channels, size, width)
        self.audio = AudioBranch(n_mels, width)
        d = self.video.out_dim + self.audio.out_dim + 2
        self.head = nn.Sequential(
            nn.Linear(d, 256), nn.ReLU(inplace=True), nn.Dropout(0.1), nn.Linear(256, n_classes)
        )

    def forward(
        self,
        video: torch.Tensor,
        video_mask: torch.Tensor,
        audio: torch.Tensor,
        audio_mask: torch.Tensor,
    ) -> torch.Tensor:
        pv = (video_mask.sum(1, keepdim=True) > 0).to(video.dtype)
        pa = (audio_mask.sum(1, keepdim=True) > 0).to(audio.dtype)
        v = self.video(video, video_mask) * pv
        a = self.audio(audio, audio_mask) * pa
        return self.head(torch.cat([v, a, pv, pa], dim=1))
