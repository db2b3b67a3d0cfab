"""Structure measurement in the window: the Structure panel, its printable page, and the controller
that runs the quality gate and the measurement for the scan on screen."""
