"""From a trained model to the engines a device serves, offline: calibration sets of real windows
(:mod:`edge.export.calib`), INT8 QDQ builds behind an accuracy gate (:mod:`edge.export.quant`)
and two engines compared on the same windows (:mod:`edge.export.compare`). These read training
data and evaluation metrics, which serving never needs, so they are kept out of
:mod:`edge.runtime`; TensorRT plans are built there (:mod:`edge.runtime.trt`) because the
backend checks a plan's manifest before it loads the plan."""
