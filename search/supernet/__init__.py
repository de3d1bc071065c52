"""Weight-sharing accuracy: training a supernet of a search space, and scoring genomes with its weights."""
