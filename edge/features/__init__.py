"""Features: the one definition of the numbers a model sees, shared by training, calibration and
serving. Frames become input tensors (:mod:`edge.features.frames`), audio a log-mel spectrogram
(:mod:`edge.features.logmel`); :mod:`edge.features.serve` turns each window into model inputs,
and :mod:`edge.features.beeps` finds alarm beeps in the same log-mel columns."""
