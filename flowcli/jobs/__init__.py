"""Jobs: the work behind the batch commands, as library functions with progress and failure callbacks.

* :mod:`flowcli.jobs.folder` - flow for the consecutive pairs of a folder (or a pairs file): plan, resume, run.
* :mod:`flowcli.jobs.video` - flow for the consecutive frames of a clip, streamed, with a color video.
* :mod:`flowcli.jobs.evaluation` - score methods on a dataset split the way its benchmark does.

No click or rich here: a command parses its options, calls one job and renders what it returns.
"""
