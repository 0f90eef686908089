"""The training loop shared by ``edge train`` and fine-tuning: the network a card describes and
how it is fitted.

:func:`build_model` builds :class:`~edge.train.model.FusionNet` or
:class:`~edge.train.model.FrontFusionNet` from a card; :func:`fit` trains it with AdamW, a
one-cycle rate, class-balanced BCE and modality dropout; :func:`predict` and :func:`macro_f1`
score it on validation windows.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from edge.errors import ConfigError
from edge.evaluate.metrics import prf
from edge.features.frames import VideoSpec
from edge.runtime.card import ModelCard
from edge.train.data import WindowSet

if TYPE_CHECKING:
    import torch


def build_model(card: ModelCard, data: WindowSet | None = None,
                audio_pool: int | None = None,
                unread: list[str] | None = None) -> "torch.nn.Module":
    """The network a card describes: :class:`FrontFusionNet` for a model over front-end
    features (normalised over ``data``'s picture features when given; its log-mel pooled by
    ``audio_pool``, else by the card's ``provenance.audio_pool``, else 2), else
    :class:`FusionNet`. A front model's picture side does not read ``unread``, else the
    card's ``provenance.unread`` (``edge train --unread``). A card whose ``provenance.members`` is above 1
    describes an :class:`Ensemble` of that many (rebuilt to load an exported file's weights
    into)."""
    from edge.train.model import Ensemble, FrontFusionNet, FusionNet

    members = int(card.provenance.get("members", 1))
    if members > 1:
        if data is not None:
            raise ValueError("an ensemble's members are built one by one, each normalised over "
                             "its own data (edge.train.train)")
        one = card.model_copy(update={"provenance": {**card.provenance, "members": 1}})
        return Ensemble([build_model(one, None, audio_pool, unread) for _ in range(members)])

    n_classes = len(card.classes)
    modalities = [c.modality for c in card.classes]
    if card.front:
        feats = list(card.front["features"])
        speech_cols = [k for k, f in enumerate(feats) if f.startswith("speech.")]
        pool = audio_pool if audio_pool is not None else int(card.provenance.get("audio_pool", 2))
        skip = unread_columns(feats, unread if unread is not None
                              else card.provenance.get("unread", []))
        fm = FrontFusionNet(n_classes, len(feats), int(card.audio["n_mels"]), speech_cols,
                            modalities=modalities, audio_pool=pool, unread_columns=skip)
        if data is not None:
            fm.set_normalisation(*front_normalisation(data, speech_cols + skip))
        return fm
    vs = VideoSpec.from_dict(card.video)
    return FusionNet(n_classes, vs.channels, vs.height, int(card.audio["n_mels"]),
                     modalities=modalities)


def fit(
    model: "torch.nn.Module", card: ModelCard, train_set: WindowSet, val_set: WindowSet,
    epochs: int, lr: float, batch: int, modality_dropout: float, rng: np.random.Generator,
    log: TextIO, started: float, freeze_norm: bool = False,
) -> None:
    """Train ``model`` in place: AdamW with a one-cycle rate, class-balanced BCE and modality
    dropout (a whole modality masked for a share of the batch so the model learns to serve
    without it); validation macro F1 after each epoch. ``freeze_norm`` keeps batch-norm
    statistics as they are (fine-tuning on a few minutes of data)."""
    import torch

    front = train_set.front is not None
    y_train = (train_set.labels >= 0.5).astype(np.float32)
    y_val = val_set.labels >= 0.5
    names = list(card.inputs)
    feats = list(card.front["features"]) if card.front else []
    speech_cols = [k for k, f in enumerate(feats) if f.startswith("speech.")]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(train_set) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    pos = y_train.mean(0)
    pos_weight = torch.tensor(np.clip((1 - pos) / np.maximum(pos, 1e-3), 1.0, 8.0), dtype=torch.float32)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    print(f"edge train: {len(train_set)} training / {len(val_set)} validation windows, "
          f"{sum(p.numel() for p in model.parameters())} parameters", file=log)
    for epoch in range(epochs):
        model.train()
        if freeze_norm:
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        order = rng.permutation(len(train_set))
        total = 0.0
        for i in range(0, len(order), batch):
            idx = np.sort(order[i : i + batch])
            b = {k: torch.from_numpy(v) for k, v in train_set.inputs(idx).items()}
            drop = rng.random(len(idx))
            # Modality dropout: mask all video for some windows, all audio for others.
            no_v = torch.from_numpy(drop < modality_dropout)
            no_a = torch.from_numpy((drop >= modality_dropout) & (drop < 2 * modality_dropout))
            vname = "front" if front else "video"
            b[f"{vname}_mask"][no_v] = 0.0
            b[vname][no_v] = 0.0  # serving zeros every column of a target without a frame
            b["audio_mask"][no_a] = 0.0
            b["audio"][no_a] = 0.0
            if speech_cols:  # no audio: the VAD has nothing to say either
                b["front"][no_a.nonzero(as_tuple=True)[0].unsqueeze(1), :, speech_cols] = 0.0
            if not front:
                b["video"] = augment_video(b["video"], rng)
            logits = model(*[b[k] for k in names])
            loss = loss_fn(logits, torch.from_numpy(y_train[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        probs = predict(model, val_set)
        f1 = macro_f1(probs, y_val, np.full(len(card.classes), 0.5))
        print(f"  epoch {epoch + 1}/{epochs}  loss {total / len(train_set):.4f}  "
              f"val macro F1 {f1:.3f}  ({time.monotonic() - started:.0f} s)", file=log, flush=True)


def unread_columns(features: list[str], unread: Any) -> list[int]:
    """The columns of ``features`` a network is not to read (``edge train --unread``, the
    card's ``provenance.unread``): picture features only, each once, and not all of them."""
    names = [str(u) for u in unread] if isinstance(unread, (list, tuple)) else None
    if names is None:
        raise ConfigError(f"unread: a list of front features, not {unread!r}")
    for u in names:
        if u not in features:
            raise ConfigError(f"unread: {u!r} is not one of the model's front features "
                              f"({', '.join(features)})")
        if u.startswith("speech."):
            raise ConfigError(f"unread: {u!r} is an audio feature; only picture features "
                              "can be left unread")
    if len(set(names)) != len(names):
        raise ConfigError(f"unread: a feature named twice ({', '.join(names)})")
    cols = sorted(features.index(u) for u in names)
    if len(cols) == len([f for f in features if not f.startswith("speech.")]):
        raise ConfigError("unread: every picture feature; a front model needs one to read")
    return cols


def front_normalisation(data: WindowSet, skip: list[int]) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Mean and 1 / spread of each picture feature over the training rows that have a frame
    (columns in ``skip``, the audio ones, are left out)."""
    import torch

    assert data.front is not None and data.front_mask is not None
    rows = data.front[data.front_mask > 0]
    keep = [k for k in range(rows.shape[1]) if k not in skip]
    x = rows[:, keep].astype(np.float64)
    mean, sd = x.mean(0), x.std(0)
    return (torch.tensor(mean, dtype=torch.float32),
            torch.tensor(1.0 / np.maximum(sd, 1e-3), dtype=torch.float32))


def augment_video(video: "torch.Tensor", rng: np.random.Generator) -> "torch.Tensor":
    """Per window: brightness and contrast jitter and a small shift (camera mounting varies)."""
    import torch

    n = video.shape[0]
    gain = torch.from_numpy(rng.uniform(0.75, 1.25, (n, 1, 1, 1, 1)).astype(np.float32))
    bias = torch.from_numpy(rng.uniform(-0.3, 0.3, (n, 1, 1, 1, 1)).astype(np.float32))
    out = video * gain + bias
    dy, dx = (int(v) for v in rng.integers(-4, 5, 2))
    return torch.roll(out, shifts=(dy, dx), dims=(3, 4))


def predict(model: object, data: WindowSet, batch: int = 64) -> np.ndarray:
    import torch

    assert isinstance(model, torch.nn.Module)
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(data), batch):
            b = {k: torch.from_numpy(v) for k, v in data.inputs(slice(i, i + batch)).items()}
            out.append(torch.sigmoid(model(*b.values())).numpy())
    return np.concatenate(out)


def macro_f1(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> float:
    pred = probs >= thresholds[np.newaxis, :]
    fs = [prf(int((pred[:, k] & labels[:, k]).sum()), int((pred[:, k] & ~labels[:, k]).sum()),
              int((~pred[:, k] & labels[:, k]).sum()))[2] for k in range(labels.shape[1])]
    return float(np.mean(fs))
