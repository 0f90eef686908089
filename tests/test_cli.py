"""The edge command: good runs print statistics; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


def edge(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("edge: error: ")
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("name", ["demo.yaml", "testpattern.yaml", "driver.yaml", "home.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    proc = edge("validate-config", f"configs/{name}")
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout


def test_malformed_config_names_key_path_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sources:\n"
        "  cam0:\n"
        "    type: camera\n"
        "    device: 0\n"
        "    width: 640\n"
        "    height: 480\n"
        "    fps: -5\n"
        "streams:\n"
        "  s: {video: cam0}\n"
    )
    assert_one_line_error(edge("validate-config", str(bad)), "sources.cam0.fps: must be > 0 (line 7)")
    assert_one_line_error(edge("sources", "--config", str(bad)), "sources.cam0.fps")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("sources: {}\nstreams: {}\nwindow: {sekonds: 2}\n", "window.sekonds: unknown key (line 3)"),
        ("sources:\n  a: {type: lidar}\nstreams: {}\n", "sources.a: unknown type 'lidar'"),
        ("sources:\n  a: {type: synthetic}\nstreams:\n  s: {video: b}\n", "streams.s.video: no source named 'b' (line 4)"),
        ("sources: [\n", "not valid YAML"),
        ("- 1\n- 2\n", "expected a mapping"),
    ],
)
def test_more_malformed_configs(tmp_path: Path, text: str, needle: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert_one_line_error(edge("validate-config", str(bad)), needle)


def test_missing_config_file() -> None:
    assert_one_line_error(edge("validate-config", "no/such.yaml"), "no such config file")


def config_with(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"sources:\n  x: {source}\nstreams:\n  s: {{video: x}}\n")
    return path


def test_missing_camera_device(tmp_path: Path) -> None:
    cfg = config_with(tmp_path, "{type: camera, device: /dev/video99}")
    assert_one_line_error(edge("sources", "--config", str(cfg), "--seconds", "1"), "/dev/video99", "no such device")


def test_missing_video_file(tmp_path: Path) -> None:
    cfg = config_with(tmp_path, "{type: camera, device: no-such-file.mp4}")
    assert_one_line_error(edge("sources", "--config", str(cfg), "--seconds", "1"), "no such file")


def test_unreachable_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/cam.mjpg"
    cfg = config_with(tmp_path, f'{{type: camera, device: "{url}", open_timeout: 1}}')
    proc = edge("sources", "--config", str(cfg), "--seconds", "1")
    assert_one_line_error(proc, url, "cannot open")


def test_missing_microphone(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "sources:\n  m: {type: microphone, device: no-such-microphone}\nstreams:\n  s: {audio: m}\n"
    )
    proc = edge("sources", "--config", str(path), "--seconds", "1")
    assert_one_line_error(proc, "microphone 'm'")


def test_demo_sources_report_as_json() -> None:
    proc = edge("sources", "--config", "configs/testpattern.yaml", "--seconds", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    src = report["sources"]["test"]
    assert src["state"] == "running"
    assert src["fps"] == pytest.approx(30, rel=0.15)
    assert src["samples"] > 16000
    assert src["drops"] == 0 and src["reconnects"] == 0
    stream = report["streams"]["demo"]
    assert stream["windows"] == 6
    assert stream["audio_age_ms"]["p99"] < 250
    assert abs(stream["av_offset_ms"]["p50"]) <= 17


def test_demo_sources_text_report() -> None:
    proc = edge("sources", "--config", "configs/testpattern.yaml", "--seconds", "1.5")
    assert proc.returncode == 0, proc.stderr
    for word in ("sources:", "skew ppm", "A/V offset", "data age"):
        assert word in proc.stdout


def test_devices_lists_without_failing() -> None:
    proc = edge("devices", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert "cameras" in report and "microphones" in report


def test_demo_run_prints_rolling_predictions_as_jsonl() -> None:
    proc = edge("run", "--config", "configs/demo.yaml", "--duration", "3", "--jsonl", "-", "--no-view")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    rows = [r for r in records if r["type"] == "prediction"]
    assert len(rows) == 6  # one per 0.5 s hop
    # a healthy simulated source reports no health change while it starts
    assert [r for r in records if r["type"] == "health"] == []
    classes = {"eyes_closed", "yawning", "distracted", "phone", "talking"}
    for row in rows:
        assert set(row["probs"]) == classes
        assert all(0.0 <= p <= 1.0 for p in row["probs"].values())
        assert row["stream"] == "cabin" and "truth" in row
    assert rows[-1]["audio_valid"] > 0.99
    assert "engine p50" in proc.stderr
    # the demo serves INT8 on ONNX Runtime's CPU provider: said on any CPU, with the reason
    from edge.runtime.onnx import cpu_int8_dot

    said = ("driver-av.int8.onnx is INT8 on a CPU without an int8 dot-product instruction"
            if cpu_int8_dot() is False else
            "driver-av.int8.onnx is INT8 on ONNX Runtime's CPU provider")
    assert said in proc.stderr, proc.stderr


def test_run_without_a_model_or_with_a_missing_one_is_a_one_line_error(tmp_path: Path) -> None:
    base = (ROOT / "configs/demo.yaml").read_text().split("model:")[0]
    base = base.replace("configs/scenarios/", f"{ROOT}/configs/scenarios/")
    base += f"paths: {{roots: [{ROOT}]}}\n"
    no_model = tmp_path / "a.yaml"
    no_model.write_text(base)
    assert_one_line_error(edge("run", "--config", str(no_model), "--duration", "1"), "no `model:` section")
    missing = tmp_path / "b.yaml"
    missing.write_text(base + "model: {path: engines/nope.onnx}\n")
    assert_one_line_error(edge("run", "--config", str(missing), "--duration", "1"), "nope")


def test_sim_writes_a_timeline_that_loads_back(tmp_path: Path) -> None:
    from edge.sim.scenario import load_scenario

    out = tmp_path / "s.yaml"
    proc = edge("sim", "--scenario", "home", "--seed", "3", "--seconds", "20", "--yaml", str(out))
    assert proc.returncode == 0, proc.stderr
    sc = load_scenario(out)
    assert sc.task == "home" and sc.seconds == 20


def test_bad_scenario_file_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: driver\nseconds: 10\nevents:\n  - {label: sneezing, start: 1, end: 2}\n")
    assert_one_line_error(edge("sim", "--scenario", str(bad), "--yaml", str(tmp_path / "o.yaml")), "sneezing")


def test_sim_writes_media_wav_and_labels(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    proc = edge("sim", "--scenario", "driver", "--seed", "1", "--seconds", "3", "--width", "160",
                "--height", "120", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} == {"video.mkv", "audio.wav", "labels.json"}
    assert json.loads((out / "labels.json").read_text())["task"] == "driver"
