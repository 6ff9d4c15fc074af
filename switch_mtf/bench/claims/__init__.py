"""Claims: the paper's quality claims at small scale, through the real CLI.

plan.py says which runs each claim needs, runs.py and execute.py train them
resumably, analysis.py and report.py compare them with the paper (paper.py).

May import: switch_mtf.cli, switch_mtf.workflows, switch_mtf.bench.common,
switch_mtf.bench.speed (the headline's wall-clock axis names the models it
times).
"""
