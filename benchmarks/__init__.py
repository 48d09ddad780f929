"""asv suites for bnnbench's kernels (see asv.conf.json and the README)."""
