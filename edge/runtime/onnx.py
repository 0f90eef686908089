"""ONNX Runtime backend: CPU by default, CUDA / TensorRT execution providers when present."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edge.runtime.card import check_io
from edge.errors import EngineError
from edge.runtime.base import C, Engine

log = logging.getLogger(__name__)

_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64"}

# ONNX Runtime's x86-64 kernel for uint8 activations times int8 weights sums pairs of products
# into 16 bits with saturation on SSE4.1, AVX2 and AVX-512 without VNNI; the entry below takes
# effect on AVX2 and AVX-512 (ONNX Runtime's session config keys say both). On an AVX2 CPU the
# shipped INT8 driver model's logits were off from its own Q/DQ arithmetic by up to 2.4, and
# INT8 builds that pass their gate elsewhere failed it. The entry makes ONNX Runtime run those
# layers as uint8 x uint8 (exact; 2-18 % more time a window for the shipped INT8 models there).
# It is set only where the CPU's flags show no int8 dot product (or cannot be read): with
# AVX-512 VNNI, whose products are exact, it changed no output of the shipped INT8 models and
# cost 28-60 % more time a window (one thread; README, "What INT8 costs").
X64_QUANT_PRECISION = "session.x64quantprecision"


# CPU flags (Linux /proc/cpuinfo) of an int8 dot-product instruction, which ONNX Runtime's INT8
# CPU kernels are made to gain over FP32 with: VNNI (AVX-512 or AVX), AMX on x86-64; SDOT/UDOT
# and the int8 matrix multiply on ARM (a Jetson's). Without one INT8 need not be faster; with one
# it need not either on networks as small as ours: on an AVX-512 VNNI + AMX CPU the served front
# models' INT8 took 1.03 and 1.43 times FP32's time a window, the pixel models' 0.88 (one
# thread; README, "What INT8 costs").
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def cpuinfo_values(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, list[str]] | None:
    """Each key of a Linux ``/proc/cpuinfo`` with its values, one a processor that gives it, in
    order; None where the file cannot be read (not Linux)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def cpu_int8_dot(cpuinfo: str | Path = "/proc/cpuinfo") -> bool | None:
    """True when the CPU has an int8 dot-product instruction (:data:`INT8_DOT_FLAGS`), False when
    its flags say it has none, None where they cannot be read (not Linux)."""
    values = cpuinfo_values(cpuinfo)
    if values is None:
        return None
    lines = values.get("flags", []) + values.get("Features", [])  # x86-64, ARM
    flags = {f for line in lines for f in line.split()}
    if not flags:
        return None
    return any(f in flags for f in INT8_DOT_FLAGS)


def int8_note(engine: Engine[Any], cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """What serving an INT8 file on ONNX Runtime's CPU provider may cost here; None for any other
    engine, file or provider. The CPU's int8 dot product (:func:`cpu_int8_dot` of ``cpuinfo``)
    gives the reason; the card's figures, where its build measured them, the FP32 file beside it
    and the command that times both on this CPU, where there are such, are named."""
    path = engine.model_path
    if not isinstance(engine, OnnxEngine) or not path.name.endswith(".int8.onnx"):
        return None
    if engine.session.get_providers() != ["CPUExecutionProvider"]:
        return None
    if cpu_int8_dot(cpuinfo) is False:
        note = (f"{path.name} is INT8 on a CPU without an int8 dot-product instruction, where "
                "ONNX Runtime's INT8 kernels are no faster than FP32")
    else:
        note = (f"{path.name} is INT8 on ONNX Runtime's CPU provider, whose INT8 kernels need "
                "not beat FP32 on a network this small, even with an int8 dot-product instruction")
    int8 = engine.card.metrics.get("int8", {})
    timed = int8.get("cpu_ms_per_window")
    if isinstance(timed, dict) and {"fp32", "int8"} <= timed.keys():
        note += (f" (its build timed FP32 {timed['fp32']:.2f} ms and INT8 {timed['int8']:.2f} ms "
                 f"a window on {timed.get('cpu', 'its CPU')})")
    fp32 = path.with_name(path.name[: -len(".int8.onnx")] + ".onnx")
    if fp32.is_file():
        note += f"; model.path: {fp32} serves the FP32 model, which may cost less here"
        if int8.get("calibration"):
            # a card's set is named from the project root, the folder above engines/
            data = Path(int8["calibration"])
            beside = path.parent.parent / data
            data = beside if not data.is_absolute() and beside.is_dir() else data
            note += f"; edge compare {fp32} {path} --data {data} times both on this CPU"
    return note


@functools.cache
def _host_int8_dot() -> bool | None:
    """:func:`cpu_int8_dot` of this machine, read once."""
    return cpu_int8_dot()


def session_options(threads: int = 1, cpuinfo: str | Path | None = None) -> Any:
    """ONNX Runtime session options as every session of ours has them: ``threads`` intra-op
    threads, one inter-op thread, warnings off, and INT8 matrix products that do not saturate
    on x86-64 CPUs without VNNI (:data:`X64_QUANT_PRECISION`, set unless the CPU's flags, this
    machine's or ``cpuinfo``'s, show an int8 dot product)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if (_host_int8_dot() if cpuinfo is None else cpu_int8_dot(cpuinfo)) is not True:
        so.add_session_config_entry(X64_QUANT_PRECISION, "1")
    return so


class OnnxEngine(Engine[C]):
    """A model on ONNX Runtime.

    Options: ``threads`` (intra-op threads, default 1 — an embedded pipeline shares its cores
    with capture), ``providers`` (default ``["CPUExecutionProvider"]``).
    """

    type_key = "onnx"

    def __init__(self, model_path: Path, card: C, options: dict[str, Any]) -> None:
        super().__init__(model_path, card, options)
        import onnxruntime as ort

        so = session_options(int(options.get("threads", 1)))
        providers = list(options.get("providers", ["CPUExecutionProvider"]))
        available = ort.get_available_providers()
        missing = [p for p in providers if p not in available]
        if missing:
            raise EngineError(
                f"ONNX Runtime here has no {', '.join(missing)} (available: {', '.join(available)})"
            )
        chosen: list[Any] = []
        for p in providers:
            if p == "TensorrtExecutionProvider":
                cache = Path(options.get("cache_dir") or model_path.parent / "trt-cache")
                cache.mkdir(parents=True, exist_ok=True)
                chosen.append((p, {
                    "device_id": int(options.get("device", 0)),
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": str(cache),
                    "trt_timing_cache_enable": True,
                    "trt_timing_cache_path": str(cache),
                    "trt_int8_enable": model_path.name.endswith(".int8.onnx"),
                    "trt_fp16_enable": bool(options.get("fp16", False)),
                }))
            elif p == "CUDAExecutionProvider":
                chosen.append((p, {"device_id": int(options.get("device", 0))}))
            else:
                chosen.append(p)
        try:
            self.session = ort.InferenceSession(str(model_path), so, providers=chosen)
        except Exception as exc:  # ORT raises its own exception types for bad files
            raise EngineError(f"{model_path}: cannot load ONNX model: {str(exc).splitlines()[0]}") from None
        ins = {i.name: (list(i.shape), _DTYPES.get(i.type, i.type)) for i in self.session.get_inputs()}
        outs = {o.name: (list(o.shape), _DTYPES.get(o.type, o.type)) for o in self.session.get_outputs()}
        check_io(card, str(model_path), ins, outs)
        self._output_names = [o.name for o in self.session.get_outputs()]
        batch_dim = next(iter(ins.values()))[0][0]
        self._max_batch = batch_dim if isinstance(batch_dim, int) else None

    @property
    def max_batch(self) -> int | None:
        return self._max_batch

    def infer(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.session.run(self._output_names, batch)
        return dict(zip(self._output_names, outs))

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["providers"] = self.session.get_providers()
        return d


ENGINE = OnnxEngine
