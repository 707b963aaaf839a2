"""Meta-learning for education (chapter 6): each student is a task.

Modules, one job each:

- ``swesat``: real multiple-choice responses (Swedish SAT sample shipped in the ``irtorch``
  wheel), scored to a 0/1 correctness matrix, loaded without importing ``irtorch``.
- ``assistments``: a loader for real student logs in the ASSISTments skill-builder CSV format.
- ``simulator``: a seeded student simulator (multi-skill 2PL + BKT-style learning).
- ``irt``: the 2PL model, grid posterior of ability, Fisher information, adaptive item choice.
- ``metrics``: rank AUC, accuracy, NLL and 95% confidence intervals.
- ``personalise``: few-shot personalisation ("a new student from K answers"): population
  baseline, 2PL, MAML on a small student model, an amortised set encoder.
- ``learning_paths``: next-exercise policies on the simulator.
"""
