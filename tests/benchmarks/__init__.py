"""Performance benchmark of the panel (``make bench``); not collected by pytest."""
