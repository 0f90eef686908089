"""Commands that make and score models: simulate, train (or fine-tune), evaluate."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from edge.cli.common import Parser, class_values
from edge.errors import ConfigError, EdgeError
from edge.jsonout import dumps


def _cmd_sim(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from edge.sim.render import write_files
    from edge.sim.scenario import load_scenario, random_scenario

    if args.scenario in ("driver", "home"):
        sc = random_scenario(args.scenario, args.seconds, np.random.default_rng(args.seed))
    else:
        sc = load_scenario(args.scenario)
    if args.yaml:
        import yaml

        Path(args.yaml).parent.mkdir(parents=True, exist_ok=True)
        Path(args.yaml).write_text(yaml.safe_dump(sc.model_dump(mode="json"), sort_keys=False))
        print(f"wrote {args.yaml} ({sc.task}, {sc.seconds:g} s, {len(sc.events)} events)")
        if args.out is None:
            return 0
    if args.out is None:
        raise EdgeError("edge sim needs --out DIR (media files) or --yaml FILE (the timeline)")
    out = Path(args.out)
    write_files(sc, out, args.width, args.height, args.fps, args.sample_rate)
    print(f"wrote {out} ({sc.task}, {sc.seconds:g} s, {len(sc.events)} events)")
    return 0


def _extra_events(items: list[str]) -> dict[str, float]:
    """``CLASS=PER_MIN`` items of ``--extra-events``."""
    return class_values(items, "--extra-events", "CLASS=PER_MIN (a positive rate)",
                        lambda rate: math.isfinite(rate) and rate > 0)


def _cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise EdgeError("edge train needs PyTorch: pip install -e '.[train]'")
    if args.init is not None:
        return _finetune(args)
    if args.task is None:
        raise EdgeError("edge train needs --task (or --init MODEL with --recordings to fine-tune)")
    from edge.train.train import TrainSettings, train

    settings = TrainSettings(
        task=args.task,
        scenarios=args.scenarios,
        val_scenarios=args.val_scenarios,
        seconds=args.seconds,
        epochs=args.epochs or 12,
        lr=args.lr or 2e-3,
        seed=args.seed,
        threads=args.threads,
        recordings=args.recordings,
        front=args.front,
        sounds=tuple(args.sounds),
        bank_kinds=None if args.bank_kinds is None else tuple(args.bank_kinds),
        heldout_scenarios=args.heldout_scenarios,
        window_stride=args.window_stride,
        frames=args.frames,
        audio_pool=args.audio_pool,
        extra_events=_extra_events(args.extra_events),
        members=args.members,
        unread=tuple(args.unread),
        fps=tuple(args.fps),
        gaze=args.gaze,
        eye_glances=args.eye_glances,
        max_threshold=args.max_threshold,
    )
    train(settings, Path(args.out), args.name or f"{args.task}-{'front' if args.front else 'av'}")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.config import load_config
    from edge.train.finetune import FineTuneSettings, finetune

    if args.recordings is None:
        raise EdgeError("edge train --init MODEL fine-tunes on --recordings DIR; give it")
    if args.front:
        raise EdgeError("edge train --init: the starting model's card says what it reads; "
                        "leave out --front")
    init = Path(args.init)
    settings = FineTuneSettings(
        recordings=args.recordings, init=str(init), epochs=args.epochs or 6,
        lr=args.lr or 3e-4, seed=args.seed, threads=args.threads,
    )
    cfg = load_config(args.config) if args.config else None
    name = args.name or init.name.removesuffix(".onnx") + "-tuned"
    finetune(settings, cfg, Path(args.out), name)
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.config import load_config
    from edge.evaluate.eval import evaluate, format_report, scenario_files

    cfg = load_config(args.config)
    if args.model is not None:
        if cfg.model is None:
            raise EdgeError("the config has no `model:` section to override")
        # A path on the command line is relative to the working directory, like any other.
        model = str(Path(args.model).resolve())
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"path": model})})
    if args.phases != 1 and args.recordings is None:
        raise EdgeError("--phases: with --recordings only")
    if args.perturb and args.recordings is None and args.front_sim is None:
        raise EdgeError("--perturb: with --recordings or --front-sim only")
    if args.front_sim is not None:
        from edge.evaluate.frontsim import HELDOUT_SEED, evaluate_front_sim

        if args.write_card:
            raise EdgeError("--write-card records rendered held-out scenarios; edge train --front "
                            "records its own held-out scores")
        from edge.evaluate.frontsim import draw_seeds, format_draws, summarize_draws

        if args.only and args.draws != 1:
            raise EdgeError("--only: one set of scenarios (--draws 1): an index names a "
                            "scenario of one set")
        if args.sweep and args.draws != 1:
            raise EdgeError("--sweep: one set of scenarios (--draws 1); settle thresholds on one "
                            "seed, score them on another")
        if args.sweep and args.seed is None:
            print(f"edge eval: --sweep on the scenarios from {HELDOUT_SEED}, where the card's "
                  "held-out scores come from; settle thresholds on others (--seed 29000) and "
                  "score them here", file=sys.stderr)
        seeds = draw_seeds(HELDOUT_SEED if args.seed is None else args.seed, args.draws)
        reps = []
        for k, seed in enumerate(seeds):
            if len(seeds) > 1:
                print(f"edge eval: draw {k + 1}/{len(seeds)}, scenarios from seed {seed}",
                      file=sys.stderr, flush=True)
            reps.append(evaluate_front_sim(cfg, args.front_sim, seed=seed, seconds=args.seconds,
                                           sounds=tuple(args.sounds),
                                           extra_rates=_extra_events(args.extra_events),
                                           bank_kinds=args.bank_kinds,
                                           perturb=tuple(args.perturb),
                                           fps=tuple(args.fps), sweep=tuple(args.sweep),
                                           only=tuple(args.only),
                                           eye_glances=args.eye_glances))
        rep = reps[0]
        if len(seeds) > 1:
            rep = {"draws": summarize_draws(seeds, reps), "reports": reps}
        if args.json:
            print(dumps(rep, indent=2))
        else:
            from edge.evaluate.rulescore import format_rules

            print(format_report(reps[0]))
            if "rule_events" in reps[0]:
                print("\n" + format_rules(reps[0]["rule_events"]))
            if "sweep" in reps[0]:
                from edge.evaluate.sweep import format_sweep

                print("\n" + format_sweep(reps[0]["sweep"]))
            if len(seeds) > 1:
                print(f"\nthe first draw above; all {len(seeds)} draws "
                      f"({args.front_sim} x {args.seconds:g} s each), frame F1:")
                print(format_draws(rep["draws"]))
        return 0
    if (args.extra_events or args.seconds != 24.0 or args.seed is not None or args.draws != 1
            or args.fps or args.sweep or args.only or args.eye_glances):
        raise EdgeError("--extra-events, --seconds, --seed, --draws, --fps, --sweep, --only and "
                        "--eye-glances: with --front-sim only")
    if args.recordings is not None:
        from edge.evaluate.evalrec import evaluate_recordings, format_recordings

        if args.write_card:
            raise EdgeError("--write-card records held-out scenario scores; not with --recordings")
        rec = evaluate_recordings(cfg, args.recordings, phases=args.phases, perturb=args.perturb)
        print(dumps(rec, indent=2) if args.json else format_recordings(rec))
        return 0
    files = scenario_files(args.scenario)
    report = evaluate(cfg, files)
    if args.write_card:
        from edge.runtime.card import card_path_for, load_card, save_card
        from edge.evaluate.eval import card_metrics

        assert cfg.model is not None
        path = card_path_for(Path(cfg.model.path))
        card = load_card(path)
        kind = cfg.model.engine.type + ("_int8" if cfg.model.path.endswith(".int8.onnx") else "")
        card.metrics[f"heldout_{kind}"] = card_metrics(report, args.scenario)
        save_card(card, path)
    if args.json:
        print(dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


def _cmd_sounds_fetch(args: argparse.Namespace) -> int:
    from edge.sim.debsounds import fetch

    def progress(line: str) -> None:
        print(f"edge sounds: {line}", file=sys.stderr, flush=True)

    print(fetch(args.out, args.deb, download=not args.no_download, progress=progress))
    return 0


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("sim", help="render a scenario to a video file, a WAV and labels.json")
    s.add_argument("--scenario", required=True, help="driver, home (random) or a scenario YAML")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--seconds", type=float, default=30.0, help="length of a random scenario")
    s.add_argument("--out", default=None, help="output folder: video.mkv, audio.wav, labels.json")
    s.add_argument("--yaml", default=None, help="also (or only) write the scenario timeline here")
    s.add_argument("--width", type=int, default=320)
    s.add_argument("--height", type=int, default=240)
    s.add_argument("--fps", type=int, default=15)
    s.add_argument("--sample-rate", type=int, default=16000)
    s.set_defaults(func=_cmd_sim)

    s = sub.add_parser("train", help="train a reference model on simulator data, or fine-tune one "
                       "on your recordings (torch extra)")
    s.add_argument("--task", default=None, choices=["driver", "home"])
    s.add_argument("--scenarios", type=int, default=120, help="training scenarios")
    s.add_argument("--val-scenarios", type=int, default=16, help="validation scenarios")
    s.add_argument("--seconds", type=float, default=24.0, help="length of each scenario")
    s.add_argument("--epochs", type=int, default=None, help="default 12; fine-tuning 6")
    s.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default 2e-3; fine-tuning 3e-4)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument(
        "--recordings",
        default=None,
        help="train on your recordings instead: a folder of folders, each a video file with "
        "its audio track and labels.json",
    )
    s.add_argument(
        "--front", action="store_true",
        help="a fusion model over the front ends' features (face/person, VAD) and log-mel, "
        "trained on feature-level simulation (edge.sim.frontsim) instead of pixels",
    )
    s.add_argument(
        "--sounds", nargs="+", default=[], metavar="FOLDER",
        help="--front: folders of real 16 kHz sounds to mix in: ../shared/realworld/sounds "
        "(edge.sim.frontaudio.SOUND_PIECES names its files) and banks from edge sounds fetch",
    )
    s.add_argument(
        "--bank-kinds", nargs="+", default=None, metavar="KIND",
        help="--front: take only these kinds of sound from the banks among --sounds (folders "
        "with bank.json; default every kind), e.g. music",
    )
    s.add_argument("--heldout-scenarios", type=int, default=24,
                   help="--front: unseen scenarios the exported model is scored on (card metrics)")
    s.add_argument("--window-stride", type=int, default=1,
                   help="--front: keep every Nth training window (neighbours overlap)")
    s.add_argument("--frames", type=int, default=8,
                   help="--front: frame targets per 2 s window; the serving config's "
                   "window.frames must match (default 8)")
    s.add_argument("--audio-pool", type=int, default=2,
                   help="--front: average the log-mel over N mels and N 10 ms columns before "
                   "the audio branch: 1 keeps full resolution (about 3x the training time; "
                   "home glass and dog are told apart from speech better), 2 halves both "
                   "(default)")
    s.add_argument("--extra-events", nargs="+", action="extend", default=[],
                   metavar="CLASS=PER_MIN",
                   help="--front: add events of a short, rare class to the training scenarios "
                   "(e.g. glass_break=1.5 a minute); every window labelled with one is kept "
                   "whatever --window-stride; validation and held-out scenarios stay as drawn")
    s.add_argument("--unread", nargs="+", action="extend", default=[], metavar="FEATURE",
                   help="--front: picture features the network does not read (e.g. face.roll "
                   "for a network that only answers eyes_closed: a change in how the head's "
                   "roll is measured cannot move it); the card records them")
    s.add_argument("--fps", type=float, nargs="+", action="extend", default=[], metavar="RATE",
                   help="--front: the camera frame rates the simulated drives draw from "
                   "(default: driver 15 30, home 10 15 25); a slow camera's blink is one frame "
                   "shut, held longer")
    s.add_argument("--gaze", action="store_true",
                   help="--front, driver: read gaze as well (face.gaze_x, face.gaze_y: where "
                   "the irises sit; serving then runs the iris model on both eyes, about as "
                   "much again as the face mesh)")
    s.add_argument("--eye-glances", type=float, default=0.0, metavar="SHARE",
                   help="--front, driver: the share of the simulated glances away that the "
                   "eyes lead, the head turning less (default 0: the head turns; a model "
                   "without --gaze cannot see such a glance)")
    s.add_argument("--max-threshold", type=float, default=0.8, metavar="P",
                   help="the highest class threshold validation may pick, in steps of 0.05 "
                   "from 0.2 (default 0.8; the driver's validation F1 still rose there for "
                   "four of its five classes, so its parts take 0.95)")
    s.add_argument("--members", type=int, default=1,
                   help="train N networks from seeds SEED..SEED+N-1, each on its own simulated "
                   "data (on --recordings, its own initial weights and batch order), and "
                   "export one model answering with the mean of their logits: steadier scores "
                   "than one seed's luck, N times the training time and the model's cost "
                   "(default 1)")
    s.add_argument(
        "--init", default=None,
        help="fine-tune this FP32 model (engines/NAME.onnx with its card) on --recordings "
        "instead of training from scratch; held-out recordings are scored before and after",
    )
    s.add_argument("--config", default=None,
                   help="--init: the config whose front ends and rules replay the recordings "
                   "(default: the front ends the model's card reads, no rules)")
    s.add_argument("--out", default="engines")
    s.add_argument("--name", default=None,
                   help="model name (default TASK-av, TASK-front; fine-tuned: NAME-tuned)")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("eval", help="replay scenarios or recordings through the pipeline, score it")
    s.add_argument("--config", required=True)
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--scenario", help="a scenario YAML or a folder of them")
    what.add_argument("--recordings", help="a recording folder (a video file with its audio "
                      "track + labels.json) or a folder of them")
    what.add_argument("--front-sim", type=int, metavar="N",
                      help="a model over front-end features: N unseen feature-level simulated "
                      "scenarios (seeds from 9000, as edge train --front scores its export)")
    s.add_argument("--sounds", nargs="+", default=[], metavar="FOLDER",
                   help="--front-sim: mix the held-out real sounds of these folders in")
    s.add_argument("--bank-kinds", nargs="+", default=None, metavar="KIND",
                   help="--front-sim: only these kinds from the banks among --sounds "
                   "(default all)")
    s.add_argument("--seconds", type=float, default=24.0,
                   help="--front-sim: length of each scenario (default 24)")
    s.add_argument("--seed", type=int, default=None,
                   help="--front-sim: draw the scenarios from this seed (default 9000, as the "
                   "card's held-out scores; another, e.g. 19000, draws another unseen set; the "
                   "model's training and validation seeds are refused)")
    s.add_argument("--draws", type=int, default=1, metavar="K",
                   help="--front-sim: score K independent sets of N scenarios (seeds SEED, "
                   "SEED+10000, ...) and report each one's F1 and the spread of the macro F1: "
                   "one set of 24 can flatter a model by several points (default 1)")
    s.add_argument("--sweep", nargs="+", action="extend", default=[], metavar="CLASS=P,P",
                   help="--front-sim: serve the config's rules again with these class "
                   "thresholds (every combination), each with its frame F1: the threshold "
                   "validation picked tick by tick need not serve a rule best (e.g. "
                   "eyes_closed=0.6,0.7,0.8 distracted=0.6,0.9); ON/OFF tries an off "
                   "threshold too (distracted=0.6/0.3,0.6/0.5)")
    s.add_argument("--only", nargs="+", type=int, action="extend", default=[], metavar="I",
                   help="--front-sim: score these scenarios of the set alone, by index (0 is the "
                   "first; the false rule events name theirs): each is the very scenario the "
                   "whole set of N holds, the others drawn and skipped")
    s.add_argument("--fps", nargs="+", type=float, action="extend", default=[], metavar="RATE",
                   help="--front-sim: the camera rates the scenarios draw from (e.g. 6: a slow "
                   "camera, whose blink is one frame shut; default the task's own, as edge "
                   "train)")
    s.add_argument("--eye-glances", type=float, default=0.0, metavar="SHARE",
                   help="--front-sim, driver: the share of the glances away that the eyes "
                   "lead, the head turning less (as edge train --eye-glances; default 0)")
    s.add_argument("--extra-events", nargs="+", action="extend", default=[],
                   metavar="CLASS=PER_MIN",
                   help="--front-sim: add events of a rare class to the scenarios (e.g. "
                   "glass_break=3), so that its rule's events are counted on enough of them; "
                   "the frame scores then differ from the card's")
    s.add_argument("--json", action="store_true")
    s.add_argument("--write-card", action="store_true", help="record the scores in the model card")
    s.add_argument("--phases", type=int, default=1, metavar="N",
                   help="--recordings: replay each recording N times, the tick grid moved by "
                   "hop/N each time; frame scores pool every grid, rule events are listed per "
                   "grid (default 1)")
    s.add_argument("--perturb", nargs="+", action="extend", default=[],
                   metavar="FEATURE*X|FEATURE+X",
                   help="--recordings, --front-sim: change a front-end feature the model reads "
                   "before it reads it, where the stage found something (e.g. face.yaw+15: a "
                   "camera mounted 15 degrees aside; face.eye_open_left*0.75 "
                   "face.eye_open_right*0.75: narrower eyes); what-if replays of real footage, "
                   "or simulated drives seen so")
    s.add_argument("--model", default=None, help="evaluate this model file instead of the config's")
    s.set_defaults(func=_cmd_eval)

    s = sub.add_parser("sounds", help="real recorded sounds for training, from pinned packages")
    ssub = s.add_subparsers(dest="sounds_command", required=True, parser_class=Parser)
    f = ssub.add_parser("fetch", help="unpack the pinned Debian packages' sounds "
                        "(edge.sim.debsounds.SOUNDS) into a bank folder (16 kHz FLAC, bank.json, "
                        "licences/) for edge train --sounds")
    f.add_argument("--out", default="data/sounds", help="bank folder (default data/sounds)")
    f.add_argument("--deb", action="append", default=[], metavar="FILE",
                   help="a pinned package already on disk (repeatable); others come from the "
                   "cache ($XDG_CACHE_HOME/edge/debs) or apt-get download")
    f.add_argument("--no-download", action="store_true",
                   help="fail instead of running apt-get download")
    f.set_defaults(func=_cmd_sounds_fetch)
