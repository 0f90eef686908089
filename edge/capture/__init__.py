"""Capture sources: thread shells that move device data into rings, stamped in pipeline time,
one module per kind of device (:mod:`~edge.capture.camera`, :mod:`~edge.capture.microphone`,
:mod:`~edge.capture.media`, :mod:`~edge.capture.simulated`, :mod:`~edge.capture.scenario`) over
a shared lifecycle (:mod:`~edge.capture.base`, :mod:`~edge.capture.items`), and the discovery of
the cameras and microphones a machine has (:mod:`~edge.capture.devices`)."""
