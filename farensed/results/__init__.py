"""Reading finished and running run folders: locating a job, plots, report, live view, comparisons.

No mlx here: inference and export run in worker subprocesses (farensed.worker.infer / .export).
"""
