"""The window join: the spine that builds a config's sources and rings and ticks every hop
(:mod:`edge.join.spine`), and the aligner that cuts each tick's timestamp-aligned audio+video
windows from the rings (:mod:`edge.join.align`)."""
