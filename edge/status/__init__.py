"""What the running pipeline says about itself: the health of each sensor
(:mod:`edge.status.health`), the ``/healthz`` and ``/metrics`` endpoint
(:mod:`edge.status.endpoint`), the live terminal view (:mod:`edge.status.view`), and the
``health:`` and ``http:`` config types (:mod:`edge.status.config`), kept apart so that
``edge.config`` loads neither OpenCV nor prometheus-client."""
