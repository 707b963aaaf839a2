"""Homework: self-checks for students, a sandboxed grader for instructors.

Student side (imported in notebooks): ``selfcheck.check`` with the visible tests in
``questions``. Instructor side: ``authoring`` (solutions/ -> exercises/), ``grader``
(``grade_folder``), which runs each submission through ``sandbox``/``harness`` in a
confined child process and compares results in the parent (``compare``), against
expected outputs computed from the instructor's private assignment folder (``private``
writes it; ``assignment`` reads it): no reference code or hidden input ships here.
Security model: ``metalearn_lite/grading/README.md``.

Nothing is imported here, so ``import metalearn_lite.grading.selfcheck`` never loads
the grader or the hidden tests.
"""
