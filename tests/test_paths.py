"""Paths in a config file are resolved once and confined to its roots (edge/paths.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edge.cli import main
from edge.config import load_config
from edge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

BASE = """\
sources:
  sim: {type: scenario, scenario: SCENARIO}
streams:
  s: {video: sim, audio: sim}
"""


def write(folder: Path, text: str, scenario: str = "driver") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "edge.yaml"
    cfg.write_text(BASE.replace("SCENARIO", scenario) + text)
    return cfg


def test_relative_paths_resolve_against_the_config_folder_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write(tmp_path / "conf", "model: {path: m.onnx}\nsinks:\n  log: {type: jsonl, path: out/e.jsonl}\n"
                "recorder: {out_dir: rec}\n", scenario="scenes/a.yaml")
    monkeypatch.chdir(ROOT)  # a different working directory changes nothing
    c = load_config(cfg)
    here = (tmp_path / "conf").resolve()
    assert c.model is not None and c.model.path == str(here / "m.onnx")
    assert c.sinks["log"].path == str(here / "out" / "e.jsonl")  # type: ignore[union-attr]
    assert c.recorder is not None and c.recorder.out_dir == str(here / "rec")
    assert c.sources["sim"].scenario == str(here / "scenes" / "a.yaml")  # type: ignore[union-attr]
    assert c.paths.roots == [str(here)]


@pytest.mark.parametrize(
    "text, key",
    [
        ("model: {path: ../elsewhere/m.onnx}\n", "model.path"),
        ("model: {path: /etc/passwd}\n", "model.path"),
        ("model: {path: m.onnx, engine: {cache_dir: /tmp}}\n", "model.engine.cache_dir"),
        ("sinks:\n  log: {type: jsonl, path: /etc/cron.d/edge}\n", "sinks.log.path"),
        ("recorder: {out_dir: ~/recordings}\n", "recorder.out_dir"),
        ("http: {token_file: /root/token}\n", "http.token_file"),
        ("sinks:\n  m: {type: mqtt, host: h, username: u, password_file: ../pw}\n", "sinks.m.password_file"),
        ("sinks:\n  m: {type: mqtt, host: h, tls: {ca_file: /etc/ssl/ca.pem}}\n", "sinks.m.tls.ca_file"),
        ("sinks:\n  w: {type: webhook, url: 'https://h/x', ca_file: ../ca.pem}\n", "sinks.w.ca_file"),
    ],
)
def test_a_path_outside_the_roots_is_a_one_line_error_naming_the_key(
    tmp_path: Path, text: str, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write(tmp_path / "conf", text)
    with pytest.raises(ConfigError, match=rf"{key}: .* lies outside the allowed folders .*paths\.roots"):
        load_config(cfg)
    assert main(["validate-config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and key in err and "Traceback" not in err


@pytest.mark.parametrize("source", [
    "{type: media, url: ../clip.mp4}",
    "{type: camera, device: /srv/videos/clip.mp4}",
    "{type: scenario, scenario: ../../x.yaml}",
])
def test_source_files_are_confined_too(tmp_path: Path, source: str) -> None:
    cfg = tmp_path / "conf" / "edge.yaml"
    cfg.parent.mkdir()
    cfg.write_text(f"sources:\n  a: {source}\nstreams:\n  s: {{video: a}}\n")
    with pytest.raises(ConfigError, match=r"sources\.a\.\w+: .* lies outside"):
        load_config(cfg)


def test_devices_urls_and_pipelines_are_not_files(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.yaml"
    cfg.write_text(
        "sources:\n"
        "  a: {type: camera, device: /dev/video0}\n"
        "  b: {type: camera, device: 'rtsp://127.0.0.1:8554/x'}\n"
        "  c: {type: camera, device: 'videotestsrc ! appsink'}\n"
        "  d: {type: media, url: 'http://127.0.0.1:8090/cam.mjpg'}\n"
        "  e: {type: camera, device: 0}\n"
        "streams:\n  s: {video: a}\n"
    )
    c = load_config(cfg)
    assert [c.sources[k].device for k in "abce"] == [  # type: ignore[union-attr]
        "/dev/video0", "rtsp://127.0.0.1:8554/x", "videotestsrc ! appsink", 0]
    assert c.sources["d"].url == "http://127.0.0.1:8090/cam.mjpg"  # type: ignore[union-attr]


def test_a_symlink_inside_the_root_that_points_out_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "m.onnx").write_bytes(b"x")
    conf = tmp_path / "conf"
    conf.mkdir()
    os.symlink(outside / "m.onnx", conf / "m.onnx")
    cfg = write(conf, "model: {path: m.onnx}\n")
    with pytest.raises(ConfigError, match=r"model\.path: m\.onnx \(resolves to .*outside.*\) lies outside"):
        load_config(cfg)


def test_extra_roots_allow_more_folders_and_relative_paths_follow_the_first(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    cfg = write(tmp_path / "opt" / "configs", f"model: {{path: engines/m.onnx}}\n"
                f"recorder: {{out_dir: {tmp_path / 'var' / 'rec'}}}\n"
                f"paths: {{roots: [.., {tmp_path / 'var'}]}}\n")
    c = load_config(cfg)
    assert c.model is not None and c.model.path == str((tmp_path / "opt" / "engines" / "m.onnx").resolve())
    assert c.recorder is not None and c.recorder.out_dir == str((tmp_path / "var" / "rec").resolve())


def test_shipped_configs_load_with_their_own_roots() -> None:
    for name in ("demo", "driver", "home", "eval-home", "testpattern"):
        c = load_config(ROOT / "configs" / f"{name}.yaml")
        assert str(ROOT) in c.paths.roots
        if c.model is not None:
            assert Path(c.model.path).is_file(), name


def test_sighup_reload_keeps_the_old_config_when_a_new_sink_path_escapes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.service.daemon import reload_config

    class Runner:
        reloaded: list[object] = []

        def reload(self, cfg: object) -> list[str]:
            self.reloaded.append(cfg)
            return []

    class Notifier:
        sent: list[str] = []

        def send(self, msg: str) -> None:
            self.sent.append(msg)

    cfg = write(tmp_path / "conf", "sinks:\n  log: {type: jsonl, path: /etc/e.jsonl}\n")
    runner, notifier = Runner(), Notifier()
    reload_config(str(cfg), runner, notifier, None)
    assert runner.reloaded == [] and notifier.sent == ["RELOADING=1", "READY=1"]
    assert "reload rejected" in capsys.readouterr().err


def test_a_plan_manifest_naming_an_onnx_outside_its_folder_gets_no_fallback(tmp_path: Path) -> None:
    from edge.errors import EngineError
    from edge.runtime.base import open_engine
    from edge.runtime.card import card_path_for, load_card
    from edge.runtime.trt import manifest_path, sha256_file

    card = load_card(card_path_for(ROOT / "engines" / "driver-av.onnx"))
    plans = tmp_path / "plans"
    plans.mkdir()
    plan = plans / "driver-av.plan"
    plan.write_bytes(b"\x00plan bytes")
    manifest_path(plan).write_text(json.dumps({
        "onnx": str(ROOT / "engines" / "driver-av.onnx"), "onnx_sha256": "0" * 64,
        "plan_sha256": sha256_file(plan)}))
    with pytest.raises(EngineError, match="changed since the plan was built"):
        open_engine("tensorrt", plan, card, {"threads": 1})


def test_the_runner_loads_a_relative_model_path_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_config resolves the model against the first root once; nothing searches again
    (edge.service.run had a fallback search of the config's folder and its parent, never reached)."""
    from edge.timebase.clock import FakeClock
    from edge.service.run import Runner

    cfg = write(tmp_path / "conf", f"paths: {{roots: [{ROOT}]}}\n"
                "model: {path: engines/driver-av.int8.onnx}\n")
    monkeypatch.chdir(tmp_path)  # neither the config's folder nor the model's root
    c = load_config(cfg)
    assert c.model is not None and c.model.path == str(ROOT / "engines" / "driver-av.int8.onnx")
    assert Runner(c, FakeClock()).card.class_names


def test_eval_model_option_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import edge.evaluate.eval

    seen: list[str] = []

    def fake_evaluate(config: object, files: object, **kw: object) -> dict[str, object]:
        seen.append(config.model.path)  # type: ignore[attr-defined]
        return {}

    monkeypatch.setattr(edge.evaluate.eval, "evaluate", fake_evaluate)
    cfg = write(tmp_path / "conf", "model: {path: m.onnx}\n")
    monkeypatch.chdir(ROOT)
    code = main(["eval", "--config", str(cfg), "--scenario", "configs/scenarios/demo-driver.yaml",
                 "--model", "engines/driver-av.onnx", "--json"])
    assert code == 0 and seen == [str(ROOT / "engines" / "driver-av.onnx")]
    assert json.loads(capsys.readouterr().out) == {}
