"""Training: data, MindCV recipe, loop and distributed runs."""
