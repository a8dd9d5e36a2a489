"""The stages of one gate run, each with one job, composed by ``editguard.session``.

``examples`` (tasks, data, the sample) -> ``scoring`` (per-example results, output cache) and ``edits``
(the edited models as weight deltas) -> ``baselines`` (record and check stored scores) -> ``verdicts``
(paired verdicts, early stopping, the edit-count curve).  Each stage gets the stages it needs in its
constructor, so a test can hand it a real model or a fake one.
"""
