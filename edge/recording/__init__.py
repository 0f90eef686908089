"""``edge record``: a config's live sources into a recording folder that ``edge train/eval
--recordings`` read (``video.mkv`` with its audio track, ``labels.json``), plus the device
timestamps behind the file's (``timestamps.npz``) and a contact sheet to label by (``sheet.png``).

Modules: :mod:`~edge.recording.core` (rings onto one file timeline), :mod:`~edge.recording.writer`
(the Matroska file), :mod:`~edge.recording.folder` (the folder and its other files),
:mod:`~edge.recording.sheet` (the contact sheet), :mod:`~edge.recording.keys`
(label keys while recording), :mod:`~edge.recording.session` (the shell: sources, loop, signals)
and :mod:`~edge.recording.label` (``edge label``: a recording's labelled spans, edited afterwards).

The package itself imports nothing; import each name from its module.
"""
