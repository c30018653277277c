"""Small helpers every layer uses: atomic file writes, bounded threads."""
