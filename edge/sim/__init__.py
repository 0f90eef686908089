"""Scenario simulator: labelled timelines rendered as camera frames and microphone samples.

No labelled audio-visual data can be downloaded for our tasks, so ``edge.sim`` renders them with
exact ground truth, deterministically from a seed: as a live source
(:class:`~edge.sim.render.Simulator`), as files (:func:`~edge.sim.render.write_files`) and as
training windows (:meth:`Simulator.window <edge.sim.render.Simulator.window>` over
:func:`~edge.sim.scenario.random_scenario` timelines). Frames are BGR uint8 like OpenCV's; audio
is float32 mono. The package itself imports nothing: scenarios (:mod:`edge.sim.scenario`) load
without the renderer; import each name from its module.
"""
