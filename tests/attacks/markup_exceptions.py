# Issue 13: exceptions and failing cells whose class names are markup; feedback shows
# only names that look like Python identifiers, escaped.
Bad = type('<img src=x onerror=alert(1)>', (Exception,), {})
Worse = type("Error![x](https://evil.example/x.png)", (Exception,), {})
Escape = type("E\x1b[31mRED", (Exception,), {})
raise Bad("cell error")
# %%
def compute_prototypes(support_emb, support_y, num_ways): raise Worse("x")
def squared_euclidean_logits(query_emb, prototypes): raise Escape("y")
def episode_loss_and_accuracy(query_emb, query_y, prototypes): raise Bad("<b>hidden: 1.234</b>")
