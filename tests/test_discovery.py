"""Home Assistant sees everything from the start: ``edge run`` publishes the retained discovery
config of every class and rule of every stream before anything happens, again after a broker
restart, and as a SIGHUP adds or removes rules (a real mosquitto on loopback)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.runtime.card import card_path_for, load_card
from tests.conftest import demo_config, need, wait_for
from tests.test_sinks import Broker, Watcher, broker, mqtt_sinks  # noqa: F401 - `broker`: fixture

ROOT = Path(__file__).resolve().parent.parent
DEMO_RULES = ["sleep", "microsleep", "long_distraction", "unresponsive",
              "visual_attention_time_sharing"]
ALWAYS = """    - name: always
      any_of:
        - {class: talking, at_least: 0.0}
"""


def retained(port: int) -> dict[str, str]:
    """What a client connecting now gets as retained, topic -> payload."""
    sub = subprocess.run(
        [need("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(port), "-v", "--retained-only",
         "-W", "1", "-t", "homeassistant/#", "-t", "edge/#"],
        capture_output=True, text=True, timeout=10,
    )
    return {ln.partition(" ")[0]: ln.partition(" ")[2] for ln in sub.stdout.splitlines()}


def config_topic(kind: str, name: str) -> str:
    return f"homeassistant/binary_sensor/edge/cabin_{kind}_{name}/config"


def configs_in(msgs: dict[str, str]) -> set[str]:
    return {t for t in msgs if t.startswith("homeassistant/") and msgs[t]}


@pytest.mark.system
@pytest.mark.slow
def test_every_class_and_rule_is_discoverable_before_any_event_after_a_broker_restart_and_a_sighup(
    tmp_path: Path, broker: Broker  # noqa: F811 - the fixture
) -> None:
    classes = load_card(card_path_for(ROOT / "engines" / "driver-av.int8.onnx")).class_names
    demo = demo_config().replace("roots: [..]", f"roots: [{ROOT}]")
    # The sink takes health records only: no prediction or event ever reaches it, so whatever
    # discovery it publishes comes from the config, not from something having happened.
    sinks = f"""sinks:
  ha: {{type: mqtt, host: 127.0.0.1, port: {broker.port}, records: [health],
        reconnect_min: 1, reconnect_max: 1, keepalive: 5}}
"""
    cfg = tmp_path / "run.yaml"
    cfg.write_text(sinks + demo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(cfg), "--no-view",
         "--no-jsonl"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    everything = {config_topic("class", c) for c in classes} | {
        config_topic("rule", r) for r in DEMO_RULES}
    try:
        assert wait_for(lambda: retained(broker.port).get("edge/edge/availability") == "online",
                        30.0)
        got = retained(broker.port)
        assert configs_in(got) == everything
        rule = json.loads(got[config_topic("rule", "long_distraction")])
        assert rule["state_topic"] == "edge/edge/cabin/state"
        assert '"long_distraction" in value_json.rules' in rule["value_template"]
        assert not any(t.endswith("/event") for t in got)  # nothing has happened

        # A broker restarted without persistence has forgotten them: published again.
        broker.kill()
        broker.start()
        assert wait_for(lambda: configs_in(retained(broker.port)) == everything, 15.0)

        # SIGHUP with a rule added: its config is retained without it ever firing.
        cfg.write_text(sinks + demo + ALWAYS)
        proc.send_signal(signal.SIGHUP)
        added = everything | {config_topic("rule", "always")}
        assert wait_for(lambda: configs_in(retained(broker.port)) == added, 15.0)

        # ... and a SIGHUP that removes it again removes it from Home Assistant.
        cfg.write_text(sinks + demo)
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: configs_in(retained(broker.port)) == everything, 15.0)

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=5)
        assert proc.returncode == 0, err
        assert out == ""  # --no-jsonl: the sinks are the only output
        assert err.count("reloaded decisions, health and sinks") == 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.system
def test_a_rule_removed_while_the_broker_is_away_is_removed_when_it_is_back(
    broker: Broker  # noqa: F811 - the fixture
) -> None:
    watcher = Watcher(broker.port)
    assert wait_for(lambda: watcher.subscribed >= 1, 5)
    sinks = mqtt_sinks(broker.port, rules=[])
    sinks.announce(["s1"], ["eyes_closed"], ["sleep", "gone"])
    sinks.start()
    topic = "homeassistant/binary_sensor/cab/s1_rule_gone/config"
    try:
        assert wait_for(lambda: len(watcher.on(topic)) == 1 and watcher.on(topic)[0] != b"", 5)
        broker.kill()
        assert wait_for(lambda: not sinks.stats()["mqtt"]["detail"]["connected"], 5)
        sinks.announce(["s1"], ["eyes_closed"], ["sleep"])  # a reload while it is away
        subscribed = watcher.subscribed
        broker.start(gated=True)  # the watcher is back first (a broker with persistence
        assert wait_for(lambda: watcher.subscribed > subscribed, 5)  # would still hold it)
        broker.open_gate()
        assert wait_for(lambda: watcher.on(topic)[-1:] == [b""], 10)
        sleep = "homeassistant/binary_sensor/cab/s1_rule_sleep/config"
        assert wait_for(lambda: len(watcher.on(sleep)) == 2, 5)  # the rest announced again
        assert sinks.stats()["mqtt"]["detail"]["discovery_removed"] == 1
    finally:
        sinks.stop(2.0)
        watcher.close()
