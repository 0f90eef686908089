"""``edge eval``: scenarios (:mod:`edge.evaluate.eval`) and recordings
(:mod:`edge.evaluate.evalrec`) replayed through the serving pipeline and scored per class, at
frame and event level, with detection latency (:mod:`edge.evaluate.metrics`)."""
