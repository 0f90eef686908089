"""Bad input, generated: configs, models, plans, URLs and scenario files that a user can get
wrong. Each must end with exit code 2 and one line on stderr naming the problem — never a
traceback."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.cli import main

ROOT = Path(__file__).resolve().parent.parent
DEMO = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
DEMO["sources"]["cabin"]["scenario"] = str(ROOT / "configs" / "scenarios" / "demo-driver.yaml")
DEMO["model"]["path"] = str(ROOT / "engines" / "driver-av.int8.onnx")
DEMO["paths"] = {"roots": [str(ROOT)]}  # the copies lie in a temporary folder


def one_line(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def mutate(path: str, value: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(DEMO)
    node: Any = cfg
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for k in keys[:-1]:
        node = node.setdefault(k, {}) if isinstance(node, dict) else node[k]
    node[keys[-1]] = value
    return cfg


# (key path, bad value, what the message must name)
CONFIG_CASES = [
    ("window.seconds", -1, "window.seconds"),
    ("window.seconds", "two", "window.seconds"),
    ("window.frames", 0, "window.frames"),
    ("window.frames", 1000, "window.frames"),
    ("window.hop", 0, "window.hop"),
    ("window.max_wait_video", -0.1, "window.max_wait_video"),
    ("window.audio_seconds", 100, "window.audio_seconds"),
    ("window.colour", "red", "window.colour"),
    ("sources.cabin.fps", 0, "sources.cabin.fps"),
    ("sources.cabin.width", -5, "sources.cabin.width"),
    ("sources.cabin.type", "lidar", "sources.cabin"),
    ("sources.cabin.sample_rate", 0, "sources.cabin.sample_rate"),
    ("streams.cabin.video", "nope", "no source named 'nope'"),
    ("model.engine.type", "tflite", "model.engine.type"),
    ("model.engine.threads", 0, "model.engine.threads"),
    ("decisions.defaults.tau", -1, "decisions.defaults.tau"),
    ("decisions.update_every", -2, "decisions.update_every"),
    ("decisions.rules.4.cumulative.total_at_least", 60, "cannot exceed within"),
    ("health.horizon", 0, "health.horizon"),
    ("http", {"port": 70000}, "http.port"),
    ("sinkz", {}, "sinkz"),
    ("model.path", "/etc/passwd", "model.path: /etc/passwd lies outside"),
    ("sources.cabin.scenario", "../../x.yaml", "sources.cabin.scenario: ../../x.yaml (resolves to"),
    ("model.engine.cache_dir", "/tmp", "model.engine.cache_dir"),
]


@pytest.mark.parametrize(("path", "value", "needle"), CONFIG_CASES,
                         ids=[f"{p}={v!r}" for p, v, _ in CONFIG_CASES])
def test_a_malformed_config_is_one_line_naming_the_key(
    path: str, value: Any, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(mutate(path, value), sort_keys=False))
    one_line(["validate-config", str(f)], capsys, needle, "(line ")


@pytest.mark.parametrize(("text", "needle"), [
    ("", "mapping"), ("- a\n- b\n", "mapping"), ("sources: {a: [1, 2\n", "line"),
    ("sources: {}\nstreams: {}\nwindow: {seconds: 1}\n\tbad: tab\n", "line"),
])
def test_broken_yaml_is_one_line(text: str, needle: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    one_line(["validate-config", str(f)], capsys, needle)


def test_semantic_config_errors_surface_when_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(mutate("decisions.rules.0.duration.class", "sneeze"), sort_keys=False))
    one_line(["run", "--config", str(f), "--duration", "0.1", "--no-view"], capsys,
             "unknown class 'sneeze'")
    f.write_text(yaml.safe_dump(mutate("sources.cabin.audio_buffer_seconds", 2), sort_keys=False))
    one_line(["run", "--config", str(f), "--duration", "0.1", "--no-view"], capsys, "audio ring holds 2 s")


def model_config(tmp_path: Path, model: Path, engine: str = "onnx") -> Path:
    cfg = mutate("model", {"path": str(model), "engine": {"type": engine}})
    cfg["paths"] = {"roots": [str(ROOT), str(tmp_path)]}
    f = tmp_path / "m.yaml"
    f.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return f


def test_bad_models_and_plans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = ROOT / "engines" / "driver-av.yaml"
    # a text file named .onnx, beside a good card
    fake = tmp_path / "fake.onnx"
    fake.write_text("not a model")
    shutil.copy(card, tmp_path / "fake.yaml")
    one_line(["run", "--config", str(model_config(tmp_path, fake)), "--duration", "0.1",
              "--no-view"], capsys, "cannot load ONNX model")
    one_line(["build", "--check-trt", str(fake)], capsys, "not an ONNX model")
    # a truncated ONNX file
    cut = tmp_path / "cut.onnx"
    cut.write_bytes((ROOT / "engines" / "driver-av.onnx").read_bytes()[:5000])
    shutil.copy(card, tmp_path / "cut.yaml")
    one_line(["run", "--config", str(model_config(tmp_path, cut)), "--duration", "0.1",
              "--no-view"], capsys, "cannot load ONNX model")
    # a model without its card
    lone = tmp_path / "lone.onnx"
    shutil.copy(ROOT / "engines" / "driver-av.onnx", lone)
    one_line(["run", "--config", str(model_config(tmp_path, lone)), "--duration", "0.1",
              "--no-view"], capsys, "lone.yaml")
    # a card for other shapes (home) beside the driver model
    mixed = tmp_path / "mixed.onnx"
    shutil.copy(ROOT / "engines" / "driver-av.onnx", mixed)
    shutil.copy(ROOT / "engines" / "home-av.yaml", tmp_path / "mixed.yaml")
    one_line(["run", "--config", str(model_config(tmp_path, mixed)), "--duration", "0.1",
              "--no-view"], capsys, "the card expects")
    # a plan without its manifest, and a plan whose manifest is garbage
    plan = tmp_path / "p.plan"
    plan.write_bytes(b"\x00\x01")
    shutil.copy(card, tmp_path / "p.yaml")
    one_line(["run", "--config", str(model_config(tmp_path, plan, "tensorrt")), "--duration",
              "0.1", "--no-view"], capsys, "no manifest beside the plan")
    (tmp_path / "p.plan.json").write_text("{not json")
    one_line(["run", "--config", str(model_config(tmp_path, plan, "tensorrt")), "--duration",
              "0.1", "--no-view"], capsys, "unreadable manifest")
    # an INT8 build from a calibration folder that is not one
    one_line(["build", "--model", str(ROOT / "engines" / "driver-av.onnx"), "--int8",
              "--calibration", str(tmp_path)], capsys, "not a calibration set")


@pytest.mark.parametrize(("source", "needle"), [
    ({"type": "camera", "device": "http://127.0.0.1:1/cam.mjpg", "open_timeout": 1.0}, "127.0.0.1:1"),
    ({"type": "media", "url": "rtsp://127.0.0.1:1/room", "open_timeout": 1.0}, "127.0.0.1:1"),
    ({"type": "camera", "device": "/dev/video99"}, "/dev/video99"),
    ({"type": "media", "url": "/nonexistent/clip.mkv"}, "/nonexistent/clip.mkv"),
])
def test_unreachable_urls_and_missing_devices(source: dict[str, Any], needle: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    cfg = {"sources": {"s": source}, "streams": {"x": {"video": "s"}},
           "window": {"seconds": 1.0, "frames": 4, "hop": 0.5}}
    f = tmp_path / "u.yaml"
    f.write_text(yaml.safe_dump(cfg))
    one_line(["sources", "--config", str(f), "--seconds", "1"], capsys, needle)


@pytest.mark.parametrize(("body", "needle"), [
    ("task: driver\nseconds: 10\nevents:\n  - {label: sneezing, start: 1, end: 2}\n", "sneezing"),
    ("task: driver\nseconds: 10\nevents:\n  - {label: talking, start: -1, end: 2}\n", "start"),
    ("task: driver\nseconds: 10\nevents:\n  - {label: talking, start: 3, end: 2}\n", "end"),
    ("task: driver\nseconds: 10\nevents:\n  - {label: talking, start: 1, end: 20}\n", "20"),
    ("task: driver\nseconds: 10\nevents:\n  - {label: yawning, start: 1, end: 5}\n"
     "  - {label: talking, start: 4, end: 6}\n", "overlaps"),
    ("task: kitchen\nseconds: 10\nevents: []\n", "task"),
    ("task: driver\nseconds: 10\nevents: [\n", "line"),
])
def test_bad_scenario_files(body: str, needle: str, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(body)
    one_line(["sim", "--scenario", str(f), "--out", str(tmp_path / "out")], capsys, needle)
    assert not (tmp_path / "out").exists()
