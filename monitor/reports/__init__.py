"""What comes out: digests (and, later, backlash reports) built from the store."""
