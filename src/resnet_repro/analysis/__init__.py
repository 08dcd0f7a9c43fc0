"""Analysis: reads the files that runs write, and writes results/<experiment>/<profile>/."""
