"""``edge front-ends import``: pinned wheels in, ``engines/front/NAME.onnx`` + ``NAME.yaml`` out.

Wheels come from ``--wheel FILE`` (a device with no registry), the user cache
(``$XDG_CACHE_HOME/edge/wheels``) or ``pip download``; each is checked against its pinned
SHA-256, and so is every file read out of it. Everything is converted into a temporary folder
beside the output and moved in with ``os.replace`` only once all of it succeeded, so a failure
leaves the old contents of the output folder as they were.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from edge import __version__
from edge.runtime.card import sha256_file
from edge.errors import ConfigError
from edge.files import sync_dir
from edge.front.card import FrontCard, FrontTensor, Licence, Provenance, card_text, check_onnx_io
from edge.front.catalog import MODELS, WHEELS, FrontModel, Wheel
from edge.pinned import Source, resolve

Progress = Callable[[str], None]


class ImportFailed(ConfigError):
    """A wheel or model file that is missing, corrupt or not the pinned one."""


def cache_dir() -> Path:
    """Where downloaded wheels are kept: ``$XDG_CACHE_HOME/edge/wheels`` (``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge" / "wheels"


def _quiet(_: str) -> None:
    pass


def resolve_wheels(
    needed: Iterable[Wheel],
    given: Sequence[str | Path] = (),
    *,
    cache: Path | None = None,
    download: bool = True,
    progress: Progress = _quiet,
) -> dict[str, Path]:
    """The file of each needed wheel, by package: a given file (matched by its SHA-256), a
    cached copy, or a fresh ``pip download`` into the cache."""
    source = Source[Wheel]("wheel", "--wheel FILE", lambda w: w.package,
                           lambda w, c: _download(w, c, progress), ImportFailed)
    return resolve(source, needed, WHEELS.values(), given, cache or cache_dir(), download,
                   progress)


def _download(wheel: Wheel, cache: Path, progress: Progress) -> Path:
    progress(f"{wheel.filename}: pip download {wheel.package}=={wheel.version}")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", tmp,
               *wheel.pip_args, f"{wheel.package}=={wheel.version}"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise ImportFailed(
                f"{wheel.filename}: cannot download ({last}); give the wheel with --wheel FILE"
            )
        got = Path(tmp) / wheel.filename
        if not got.is_file():
            names = sorted(x.name for x in Path(tmp).iterdir())
            raise ImportFailed(f"{wheel.filename}: pip downloaded {names} instead")
        digest = sha256_file(got)
        if digest != wheel.sha256:
            raise ImportFailed(f"{wheel.filename}: downloaded SHA-256 {digest[:12]}... is not the pinned one")
        final = cache / wheel.filename
        os.replace(got, final)
    return final


def read_member(wheel_file: Path, member: str, sha256: str) -> bytes:
    """A file out of a wheel (a zip), checked against its pinned SHA-256."""
    try:
        with zipfile.ZipFile(wheel_file) as zf:
            data = zf.read(member)
    except KeyError:
        raise ImportFailed(f"{wheel_file}: has no {member} (not the pinned version?)") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ImportFailed(f"{wheel_file}: corrupt wheel ({exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ImportFailed(
            f"{wheel_file}!{member}: SHA-256 {digest[:12]}... differs from the pinned {sha256[:12]}..."
        )
    return data


def build_card(model: FrontModel, onnx_sha256: str, onnx_model: object) -> FrontCard:
    """The card of a written model: tensor shapes and dtypes are read from the ONNX graph."""
    from onnx import helper

    graph = getattr(onnx_model, "graph")
    tensors: dict[str, FrontTensor] = {}
    for vi in list(graph.input) + list(graph.output):
        tt = vi.type.tensor_type
        info = model.tensors.get(vi.name, {})
        # a dynamic dimension the file leaves unnamed takes the catalog's name for it
        dims: list[int | str] = list(info.get("shape") or [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim
        ])
        tensors[vi.name] = FrontTensor(
            shape=dims,
            dtype=str(helper.tensor_dtype_to_np_dtype(tt.elem_type)),
            layout=info.get("layout", ""),
            source_name=info.get("source_name", vi.name),
            description=info.get("description", ""),
        )
    w = model.wheel
    return FrontCard(
        name=model.name,
        task=model.task,
        description=model.description,
        provenance=Provenance(
            package=w.package, version=w.version, wheel=w.filename, wheel_sha256=w.sha256,
            file=model.member, file_sha256=model.sha256,
            converter=(f"edge {__version__} tflite2onnx (opset 17)" if model.is_tflite
                       else f"copied as is by edge {__version__}"),
            onnx_sha256=onnx_sha256,
        ),
        licence=Licence(spdx=w.spdx, attribution=w.attribution, text_file=licence_name(w)),
        inputs={vi.name: tensors[vi.name] for vi in graph.input},
        outputs={vi.name: tensors[vi.name] for vi in graph.output},
        preprocess=model.preprocess,
        postprocess=model.postprocess,
        notes=model.notes,
    )


def licence_name(wheel: Wheel) -> str:
    return f"LICENSE.{wheel.package}-{wheel.version}.txt"


def up_to_date(out: Path, models: Sequence[FrontModel]) -> bool:
    """Every model and card present, the card pinning the same source and naming the ONNX
    file's current hash."""
    from edge.front.card import load_front_card
    from edge.errors import EngineError

    for m in models:
        onnx_path, card_path = out / f"{m.name}.onnx", out / f"{m.name}.yaml"
        if not onnx_path.is_file() or not card_path.is_file():
            return False
        try:
            card = load_front_card(card_path)
        except EngineError:
            return False
        p = card.provenance
        if (p.wheel_sha256, p.file_sha256) != (m.wheel.sha256, m.sha256):
            return False
        if sha256_file(onnx_path) != p.onnx_sha256:
            return False
    return all((out / licence_name(w)).is_file() for w in {m.wheel for m in models})


def import_front_ends(
    out: str | Path = "engines/front",
    wheel_files: Sequence[str | Path] = (),
    *,
    force: bool = False,
    models: Sequence[FrontModel] = MODELS,
    cache: Path | None = None,
    download: bool = True,
    progress: Progress = _quiet,
) -> list[Path]:
    """Import the front ends into ``out``; returns the files written (none when up to date).

    Raises
    ------
    ImportFailed
        A wheel or a file in it that is missing, corrupt or not the pinned one.
    edge.front.tfl_read.TfliteError
        A model the converter cannot convert (the message names the file and the operator).
    """
    from edge.front.tflite2onnx import convert, require_onnx

    require_onnx()
    from onnx import load_model_from_string

    out = Path(out)
    if not force and up_to_date(out, models):
        progress(f"{out}: up to date ({len(models)} models)")
        return []
    wheels = {m.wheel for m in models}
    files = resolve_wheels(sorted(wheels, key=lambda w: w.package), wheel_files, cache=cache,
                           download=download, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(dir=out, prefix=".import-") as tmp_dir:
        tmp = Path(tmp_dir)
        staged: list[str] = []
        for w in wheels:
            text = _read_licence(files[w.package], w)
            (tmp / licence_name(w)).write_bytes(text)
            staged.append(licence_name(w))
        for m in models:
            wheel_file = files[m.wheel.package]
            data = read_member(wheel_file, m.member, m.sha256)
            where = f"{wheel_file.name}!{m.member}"
            if m.is_tflite:
                onnx_model = convert(data, where, rename=m.rename, producer_version=__version__,
                                     doc=f"{m.member} from {m.wheel.filename}, {m.wheel.spdx}")
                blob = onnx_model.SerializeToString()
            else:
                blob = data
                onnx_model = load_model_from_string(data)
            onnx_path = tmp / f"{m.name}.onnx"
            onnx_path.write_bytes(blob)
            card = build_card(m, hashlib.sha256(blob).hexdigest(), onnx_model)
            check_onnx_io(card, onnx_path)
            (tmp / f"{m.name}.yaml").write_text(card_text(card), encoding="utf-8")
            staged += [f"{m.name}.onnx", f"{m.name}.yaml"]
            verb = "converted" if m.is_tflite else "copied"
            progress(f"{m.name}: {verb} {m.member} ({len(blob) / 1e6:.1f} MB)")
        for name in staged:  # all converted: only now touch the output folder
            os.replace(tmp / name, out / name)
            written.append(out / name)
    sync_dir(out)
    progress(f"{out}: wrote {len(written)} files")
    return written


def _read_licence(wheel_file: Path, wheel: Wheel) -> bytes:
    try:
        with zipfile.ZipFile(wheel_file) as zf:
            return zf.read(wheel.licence_member)
    except KeyError:
        raise ImportFailed(f"{wheel_file}: has no {wheel.licence_member}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ImportFailed(f"{wheel_file}: corrupt wheel ({exc})") from None


def clean_stale(out: Path) -> None:
    """Remove temporary folders a killed import left behind."""
    for p in out.glob(".import-*"):
        shutil.rmtree(p, ignore_errors=True)
