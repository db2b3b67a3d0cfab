"""What the window writes to disk: the scan PDF, the OU PDF and the results CSV."""
