# Find the harness's real nonce and result descriptor in memory and write forged records
# for every case (full marks if the parent trusted the child), then a fake "done".
import gc, json, os, sys

nonce, cases, result_fd = None, [], None
frame = sys._getframe()
while frame is not None:
    loc = frame.f_locals
    if "cfg" in loc and isinstance(loc["cfg"], dict):
        nonce = loc["cfg"].get("nonce"); cases = loc["cfg"].get("cases", []); result_fd = loc["cfg"].get("result_fd")
    if "nonce" in loc and isinstance(loc["nonce"], str):
        nonce = loc["nonce"]
    if "cases" in loc and isinstance(loc["cases"], list):
        cases = loc["cases"]
    frame = frame.f_back
for obj in gc.get_objects():
    if isinstance(obj, dict) and "nonce" in obj and "result_fd" in obj:
        nonce, cases, result_fd = obj["nonce"], obj["cases"], obj["result_fd"]
lines = []
for case in cases:
    # Echo the first input back as the "output" (the best a forger can do without the answer).
    out = case["args"][0] if case.get("args") else {"kind": "number", "value": 0}
    lines.append(json.dumps({"nonce": nonce, "case": case["id"], "output": out}))
lines.append(json.dumps({"nonce": nonce, "event": "done"}))
for fd in ([result_fd] if result_fd is not None else []) + list(range(3, 32)):
    try:
        os.write(fd, ("\n".join(lines) + "\n").encode())
    except (OSError, TypeError):
        pass
