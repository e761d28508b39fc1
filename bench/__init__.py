"""hutch's benchmark suite (issue 9): `make bench` / `python -m bench`.

Each row times hutch against an anchor doing the same work in the same run (A B A B ...,
medians of at least 10 runs, with min and max) and reports the ratio. Rows whose feature is
not in hutch yet are skipped with the reason; anchors that cannot run here (no Docker
daemon, no podman) are reported as missing. Results: a table on stdout,
bench/results/<date>.json and a chart bench/results/<date>.png (SVG when matplotlib is
not installable).
"""
