# Result lines the parent's decoder must survive: 100,000 nested lists, a 5,000-digit
# integer, a 20 MiB line, duplicate case ids (written with the real nonce).
import json, os, sys
nonce, cases, result_fd = None, [], None
frame = sys._getframe()
while frame is not None:
    loc = frame.f_locals
    if "cfg" in loc and isinstance(loc["cfg"], dict):
        nonce = loc["cfg"].get("nonce"); cases = loc["cfg"].get("cases", []); result_fd = loc["cfg"].get("result_fd")
    frame = frame.f_back
if result_fd is not None:
    case = cases[0]["id"] if cases else "x"
    prefix = '{"nonce": "%s", "case": "%s", "output": ' % (nonce, case)
    os.write(result_fd, (prefix + "[" * 100000 + "]" * 100000 + "}\n").encode())
    os.write(result_fd, (prefix + '{"kind": "number", "value": ' + "9" * 5000 + "}}\n").encode())
    os.write(result_fd, (prefix + '{"kind": "tensor", "dtype": "float64", "shape": [1], "data": ["'
                         + "A" * (20 << 20) + '"]}}\n').encode())
