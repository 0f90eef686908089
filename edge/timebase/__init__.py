"""Time and buffers: pipeline time and the device clocks mapped onto it
(:mod:`edge.timebase.clock`), and the preallocated rings between the capture threads and the
scheduler, which hold data by device time (:mod:`edge.timebase.buffers`)."""
