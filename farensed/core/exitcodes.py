"""Named worker exit codes: the daemon classifies a worker's end by these alone."""

EXIT_OK = 0  # trained to the end, outputs written
EXIT_CRASH = 1  # unexpected exception (Python's default)
EXIT_BAD_JOB = 65  # job or data invalid: retrying cannot help (EX_DATAERR)
EXIT_OOM_EXHAUSTED = 71  # out of memory at micro-batch 1 with gradient checkpointing
EXIT_OOM_RESTART = 72  # out of memory the process cannot recover from: restart lower
EXIT_DIVERGED = 73  # loss or gradient non-finite several steps in a row
EXIT_NO_SPACE = 74  # not enough disk for a checkpoint; paused with a reason
EXIT_STOPPED = 75  # graceful stop on SIGTERM/SIGINT: checkpoint written (EX_TEMPFAIL)
EXIT_PEER_LOST = 76  # data-parallel: another rank went away; this one cannot go on alone

NAMES = {
    EXIT_OK: "ok",
    EXIT_CRASH: "crash",
    EXIT_BAD_JOB: "bad_job",
    EXIT_OOM_EXHAUSTED: "oom_exhausted",
    EXIT_OOM_RESTART: "oom_restart",
    EXIT_DIVERGED: "diverged",
    EXIT_NO_SPACE: "no_space",
    EXIT_STOPPED: "stopped",
    EXIT_PEER_LOST: "peer_lost",
}
