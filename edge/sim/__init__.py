"""Scenario simulator: labelled timelines rendered as camera frames and microphone samples.

No labelled audio-visual data can be downloaded for our tasks, so ``edge.sim`` renders them with
exact ground truth, deterministically from a seed: as a live source (:class:`Simulator`), as
files (:func:`write_files`) and as training windows (:meth:`Simulator.window` over
:func:`random_scenario` timelines). Frames are BGR uint8 like OpenCV's; audio is float32 mono.
"""

from edge.sim.render import SimFiles, Simulator, SimWindow, write_files
from edge.sim.scenario import (CLASSES, EXCLUSIVE, VARIANTS, Conditions, Event, Scenario,
                               ScenarioError, label_fraction, label_matrix, labels_at,
                               load_scenario, parse_scenario, random_scenario)

__all__ = [
    "CLASSES", "EXCLUSIVE", "VARIANTS", "Conditions", "Event", "Scenario", "ScenarioError",
    "SimFiles", "SimWindow", "Simulator", "label_fraction", "label_matrix", "labels_at",
    "load_scenario", "parse_scenario", "random_scenario", "write_files",
]
