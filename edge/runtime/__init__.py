"""The model runtime: the model card, the contract between a model file and the pipeline that
serves it (:mod:`~edge.runtime.card`); inference backends behind one
:class:`~edge.runtime.base.Engine` interface (:mod:`~edge.runtime.onnx`,
:mod:`~edge.runtime.tensorrt`); and TensorRT plans (:mod:`~edge.runtime.trt`: the parser check,
the build and the manifest the backend checks before it deserializes a plan)."""
