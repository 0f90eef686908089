"""The reference audio-visual fusion network.

Video: a small CNN per frame, a temporal convolution, masked pooling (all frames and the most
recent quarter, since a state "now" matters more than two seconds ago). Audio: a log-mel CNN
pooled over time three ways: the mean of the whole window, the mean of its last half second
(what sounds now) and the maximum (whether a pattern's beep occurred anywhere in the window).
Fusion: each modality's embedding is gated by whether any of its data is valid, and the
presence flags themselves are inputs, so one model serves when a modality is missing (it is
trained with modality dropout).

Three heads — video only, audio only, both — and each class takes its logit from the head of
the modality its card names. A class that only one modality can show ("a person is in view")
then cannot lean on a correlated cue of the other (people often talk): it stays right when
that cue is absent, and the branch has to learn it. Multi-label sigmoid head (logits out).

:class:`Ensemble` averages the logits of members trained from other seeds (``edge train
--members N``).
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


def masked_pools(
    x: torch.Tensor, mask: torch.Tensor, recent: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked mean of ``x`` [B, C, L] over all L and over the last ``recent`` steps (default a
    quarter); mask [B, L]."""
    m = mask.unsqueeze(1)
    full = (x * m).sum(-1) / m.sum(-1).clamp(min=1.0)
    q = max(1, x.shape[-1] // 4 if recent is None else min(recent, x.shape[-1]))
    mr = m[..., -q:]
    last = (x[..., -q:] * mr).sum(-1) / mr.sum(-1).clamp(min=1.0)
    return full, last


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Maximum of ``x`` [B, C, L] (non-negative) over the valid steps; 0 where none is."""
    return (x * mask.unsqueeze(1)).amax(-1)


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
        # Over time as a 1 x 3 two-dimensional convolution: TensorRT's ONNX parser documents
        # 2D and 3D convolutions and pooling only.
        self.temporal = nn.Sequential(
            nn.Conv2d(embed, embed, (1, 3), padding=(0, 1)), nn.ReLU(inplace=True)
        )
        self.out_dim = 2 * embed

    def forward(self, video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        f = self.frame(video.flatten(0, 1)).view(b, t, -1).transpose(1, 2)  # [B, E, T]
        f = self.temporal((f * mask.unsqueeze(1)).unsqueeze(2)).squeeze(2)
        full, recent = masked_pools(f, mask)
        return torch.cat([full, recent], dim=1)


class AudioBranch(nn.Module):
    """Log-mel CNN; ``columns_per_s`` sets how many pooled steps make the last half second."""

    def __init__(
        self, n_mels: int, width: int = 32, embed: int = 128, columns_per_s: float = 100.0
    ) -> None:
        super().__init__()
        w = width
        # 20 ms steps after the first convolution keep the 0.1 s beeps of a CO alarm apart;
        # the 64 mel bands do not need all their detail either.
        self.conv = nn.Sequential(
            nn.Conv2d(1, w // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(w // 2),
            nn.ReLU(inplace=True),
            _block2d(w // 2, w, 1),
            nn.MaxPool2d((2, 2)),
            _block2d(w, 2 * w, 1),
            nn.MaxPool2d((2, 2)),
            _block2d(2 * w, 2 * w, 1),
        )
        self.proj = nn.Sequential(nn.Conv2d(2 * w * (n_mels // 8), embed, 1), nn.ReLU(inplace=True))
        self.recent = max(1, int(round(0.5 * columns_per_s / 8)))
        self.out_dim = 3 * embed

    def forward(self, audio: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.conv(audio)  # [B, C, M/8, F/8]
        x = self.proj(x.flatten(1, 2).unsqueeze(2)).squeeze(2)  # [B, E, F/8]
        # Each pooled step covers 8 log-mel columns; it counts as valid if any of them is.
        n = min(int(x.shape[-1]), int(mask.shape[-1]) // 8)
        m = mask[:, : 8 * n].reshape(-1, n, 8).amax(-1)
        x = x[..., -n:]
        full, recent = masked_pools(x, m, self.recent)
        return torch.cat([full, recent, masked_max(x, m)], dim=1)


class FusionNet(nn.Module):
    """Inputs: video [B,T,C,H,W], video_mask [B,T], audio [B,1,M,F], audio_mask [B,F].

    ``modalities`` names, per class, the head it takes its logit from: ``video``, ``audio`` or
    ``both`` (the default for every class).
    """

    head: nn.Sequential
    head_video: nn.Sequential
    head_audio: nn.Sequential

    def __init__(
        self,
        n_classes: int,
        channels: int,
        size: int,
        n_mels: int,
        width: int = 32,
        modalities: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.video = VideoBranch(channels, size, width)
        self.audio = AudioBranch(n_mels, width)
        add_heads(self, self.video.out_dim, self.audio.out_dim, n_classes, modalities)

    @staticmethod
    def _head(d: int, n: int) -> nn.Sequential:
        return nn.Sequential(nn.Linear(d, 192), nn.ReLU(inplace=True), nn.Dropout(0.1), nn.Linear(192, n))

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
        both = self.head(torch.cat([v, a, pv, pa], dim=1))
        lv = self.head_video(torch.cat([v, pv], dim=1))
        la = self.head_audio(torch.cat([a, pa], dim=1))
        return lv * self.sel_video + la * self.sel_audio + both * self.sel_both



def add_heads(net: nn.Module, dv: int, da: int, n_classes: int,
              modalities: list[str] | None) -> None:
    """The three heads of a fusion network (both, video only, audio only, over embeddings of
    ``dv`` and ``da`` plus a presence flag each) and the per-class selectors of the head each
    class answers from, ``modalities`` naming ``video``, ``audio`` or ``both`` per class."""
    net.head = FusionNet._head(dv + da + 2, n_classes)
    net.head_video = FusionNet._head(dv + 1, n_classes)
    net.head_audio = FusionNet._head(da + 1, n_classes)
    mods = modalities or ["both"] * n_classes
    if len(mods) != n_classes or set(mods) - {"video", "audio", "both"}:
        raise ValueError(f"modalities must name video, audio or both per class: {mods}")
    for name in ("video", "audio", "both"):
        sel = torch.tensor([[1.0 if m == name else 0.0 for m in mods]])
        net.register_buffer(f"sel_{name}", sel)

class FrontBranch(nn.Module):
    """Per-frame front-end features ``[B, T, F]`` -> an embedding of the window.

    Each row is standardised by fixed constants (``shift``, ``scale``: set from the training
    data), and beside it goes its difference from the window's mean row, so a subject's own
    baseline (eye size, head pitch) cancels and a change stands out; the mask is a channel too.
    A per-frame MLP (1 x 1 convolutions), two temporal 1 x 3 convolutions, then masked pools:
    the whole window, the last two targets, the last one, and the maximum.
    """

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, n_features: int, width: int = 64, embed: int = 64) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(1, 1, n_features))
        self.register_buffer("scale", torch.ones(1, 1, n_features))
        self.frame = nn.Sequential(
            nn.Conv2d(2 * n_features + 1, width, 1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 1), nn.ReLU(inplace=True),
        )
        self.temporal = nn.Sequential(
            nn.Conv2d(width, embed, (1, 3), padding=(0, 1)), nn.ReLU(inplace=True),
            nn.Conv2d(embed, embed, (1, 3), padding=(0, 1)), nn.ReLU(inplace=True),
        )
        self.out_dim = 4 * embed

    def forward(self, front: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1)  # [B, T, 1]
        z = (front - self.shift) * self.scale * m
        mean = z.sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1.0)
        rel = (z - mean) * m
        x = torch.cat([z, rel, m], dim=-1).transpose(1, 2).unsqueeze(2)  # [B, 2F+1, 1, T]
        mt = mask.unsqueeze(1).unsqueeze(2)
        x = self.frame(x) * mt
        x = (self.temporal(x) * mt).squeeze(2)  # [B, E, T]
        full, recent = masked_pools(x, mask, 2)
        _, last = masked_pools(x, mask, 1)
        return torch.cat([full, recent, last, masked_max(x, mask)], dim=1)


class FrontFusionNet(nn.Module):
    """Inputs: front [B,T,F], front_mask [B,T], audio [B,1,M,C], audio_mask [B,C].

    ``audio_columns`` are the front columns the audio gives (``speech.p``): they join the
    audio side (pooled over the targets), the rest are the video side, less ``unread_columns``
    (features this network is not to read: an eyes-closed network need not know the head's
    roll, so a change in how roll is measured cannot move it). Heads and per-class
    routing by ``modalities`` are :class:`FusionNet`'s: a ``video`` class answers from the
    front ends' picture features alone, an ``audio`` class from log-mel and VAD, ``both`` from all.
    """

    vcols: torch.Tensor
    acols: torch.Tensor
    head: nn.Sequential
    head_video: nn.Sequential
    head_audio: nn.Sequential
    sel_video: torch.Tensor
    sel_audio: torch.Tensor
    sel_both: torch.Tensor

    def __init__(
        self,
        n_classes: int,
        n_features: int,
        n_mels: int,
        audio_columns: list[int] | None = None,
        width: int = 64,
        audio_width: int = 16,
        modalities: list[str] | None = None,
        audio_pool: int = 2,
        unread_columns: list[int] | None = None,
    ) -> None:
        super().__init__()
        acols = sorted(audio_columns or [])
        skip = set(acols) | set(unread_columns or [])
        vcols = [k for k in range(n_features) if k not in skip]
        if not vcols:
            raise ValueError("a front model needs at least one picture feature")
        self.register_buffer("vcols", torch.tensor(vcols, dtype=torch.long), persistent=False)
        self.register_buffer("acols", torch.tensor(acols, dtype=torch.long), persistent=False)
        self.front = FrontBranch(len(vcols), width, width)
        # A fixed average pool (mels and 10 ms columns by ``audio_pool``) before the log-mel
        # branch: on a 2-core CPU the branch at full resolution cost 3-4x more to train, and
        # 20 ms steps still keep a CO alarm's 0.1 s beeps apart.
        self.pool = nn.AvgPool2d(audio_pool) if audio_pool > 1 else nn.Identity()
        self.audio_pool = audio_pool
        self.audio = AudioBranch(n_mels // audio_pool, audio_width, 96, 100.0 / audio_pool)
        self.n_speech = len(acols)
        add_heads(self, self.front.out_dim, self.audio.out_dim + 3 * self.n_speech, n_classes,
                  modalities)

    def set_normalisation(self, shift: torch.Tensor, scale: torch.Tensor) -> None:
        """Standardising constants of the picture features (``[F_video]`` each)."""
        self.front.shift.copy_(shift.view(1, 1, -1))
        self.front.scale.copy_(scale.view(1, 1, -1))

    def forward(
        self,
        front: torch.Tensor,
        front_mask: torch.Tensor,
        audio: torch.Tensor,
        audio_mask: torch.Tensor,
    ) -> torch.Tensor:
        pv = (front_mask.sum(1, keepdim=True) > 0).to(front.dtype)
        pa = (audio_mask.sum(1, keepdim=True) > 0).to(audio.dtype)
        v = self.front(front.index_select(2, self.vcols), front_mask) * pv
        k = self.audio_pool
        am = audio_mask
        if k > 1:  # a pooled column is valid when all its columns are (the min of the mask)
            n = audio_mask.shape[1] // k
            # A 2-D pool over [B, 1, 1, C]: TensorRT's parser documents 2-D and 3-D pools only.
            m4 = -audio_mask[:, : n * k].unsqueeze(1).unsqueeze(1)
            am = -torch.nn.functional.max_pool2d(m4, (1, k)).squeeze(1).squeeze(1)
        a = self.audio(self.pool(audio), am)
        if self.n_speech:
            sp = front.index_select(2, self.acols).transpose(1, 2)  # [B, S, T]
            full, recent = masked_pools(sp, front_mask, 2)
            a = torch.cat([a, full, recent, masked_max(sp, front_mask)], dim=1)
        a = a * pa
        both = self.head(torch.cat([v, a, pv, pa], dim=1))
        lv = self.head_video(torch.cat([v, pv], dim=1))
        la = self.head_audio(torch.cat([a, pa], dim=1))
        return lv * self.sel_video + la * self.sel_audio + both * self.sel_both


class Ensemble(nn.Module):
    """Members with one input contract, answering with the mean of their logits: one network
    (one ONNX graph, one INT8 engine) that is steadier than any one member. Members trained
    from other seeds and data disagree most where each is unsure, so the mean cuts what one
    seed's luck puts into a small class's score."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        self.members = nn.ModuleList(members)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        total = self.members[0](*inputs)
        for m in self.members[1:]:
            total = total + m(*inputs)
        return total * (1.0 / len(self.members))
