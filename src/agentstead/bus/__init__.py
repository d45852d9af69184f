"""The event bus: typed events on topics, appended to the log, fanned out live."""
