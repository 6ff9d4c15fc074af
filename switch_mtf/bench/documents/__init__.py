"""Generated documents: the measured parts of README.md and docs/*.md.

`tools/write_docs.py` fills every marked section (markers.py) from the
committed result files: speed_text.py from results/speed/, claims_text.py
from results/claims/, headline_text.py from results/headline/,
checkpoints_text.py from results/checkpoints/ and results/upcycle/,
runs_text.py from the demo and distillation records in results/demo/
(records.py copies those out of a run folder).
sections.py says which section each marker names. A test fails when a
committed document differs from what the tool writes.

May import: switch_mtf.cli, switch_mtf.bench.common, switch_mtf.bench.speed,
switch_mtf.bench.claims, switch_mtf.bench.checkpoints.
"""
