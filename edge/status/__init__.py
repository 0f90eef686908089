"""What the running pipeline says about itself: the health of each sensor
(:mod:`edge.status.health`), the ``/healthz`` and ``/metrics`` endpoint
(:mod:`edge.status.endpoint`) and the live terminal view (:mod:`edge.status.view`)."""
