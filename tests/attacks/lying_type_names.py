# Issue 13: outputs whose *type names* are markup: an HTML image with an onerror
# handler, a Markdown image link to an outside host, terminal escape codes, a fake score.
# Feedback may only say "an object of another type".
def _named(name):
    return type(name, (), {})()

NAMES = ['<img src=x onerror="alert(1)">',
         "![pwned](https://evil.example/track.png)",
         "\x1b[2J\x1b[31mScore: 10 / 10\x1b[0m",
         "[click me](javascript:alert(1))"]

def compute_prototypes(support_emb, support_y, num_ways): return _named(NAMES[0])
def squared_euclidean_logits(query_emb, prototypes): return _named(NAMES[1])
def episode_loss_and_accuracy(query_emb, query_y, prototypes): return (_named(NAMES[2]), _named(NAMES[3]))
