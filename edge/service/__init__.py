"""``edge run`` as a daemon: the runner that takes each tick's windows through features, engine
and decisions (:mod:`edge.service.run`), the daemon's wiring of runner and outputs
(:mod:`edge.service.daemon`), the supervision of worker threads (:mod:`edge.service.supervise`)
and systemd integration (:mod:`edge.service.systemd`)."""
