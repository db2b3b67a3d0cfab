"""The viewer proper: the state of what is on screen, its controller, and the B-scan, en-face,
curve and results views that draw it."""
