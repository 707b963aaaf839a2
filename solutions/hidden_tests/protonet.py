"""Hidden tests of the prototypical-networks homework: ``hidden_cases(qid, seed)``.

Instructor material (see ``maml.py`` in this folder): inputs drawn from the term ``seed``.
Most episodes have shuffled support labels (Q2.1 warns about them), one is sorted.
"""
from metalearn_lite.grading.questions import _proto_args, case_seed

_WHICH = {"2.1": "prototypes", "2.2": "logits", "2.3": "loss"}
# (ways, shots, queries, dim, shuffled support labels)
_SETTINGS = [(5, 1, 3, 8, True), (4, 3, 2, 2, True), (2, 5, 4, 3, False), (6, 2, 3, 4, True)]


def hidden_cases(qid, seed):
    return [(f"hidden {i}", _proto_args(case_seed(seed, qid, i), ways, shots, queries, dim, shuffle,
                                        _WHICH[qid]))
            for i, (ways, shots, queries, dim, shuffle) in enumerate(_SETTINGS)]
