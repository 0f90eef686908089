"""Capture sources: thread shells that move device data into rings, stamped in pipeline time."""
