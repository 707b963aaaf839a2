"""The adaptive tutor service (``metalearn serve``, issue 20): answers, bad input, concurrency, shutdown.

The server runs on a free loopback port (in a thread for most tests, as the real command in a
subprocess for one), and every test checks that nothing listens on that port afterwards.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from metalearn_lite.education.personalise import MAMLStudent  # noqa: E402
from metalearn_lite.education.service import bind_socket, create_app  # noqa: E402
from metalearn_lite.education.tutor import (  # noqa: E402
    TutorInputError, TutorModel, default_tutor_model_path, load_default_tutor,
)

REPO = Path(__file__).resolve().parents[1]
NUM_ITEMS = 30
LIMIT = 8192


def make_tutor(seed: int = 0, num_items: int = NUM_ITEMS, dim: int = 4) -> TutorModel:
    rng = np.random.default_rng(seed)
    return TutorModel(
        item_embedding=rng.normal(0, 0.7, (num_items, dim)),
        item_bias=rng.normal(0, 1.0, num_items),
        student_init=rng.normal(0, 0.3, dim),
        inner_lr=np.full(dim, 0.08),
        num_inner_steps=5,
        item_names=tuple(f"item_{i:02d}" for i in range(num_items)),
        groups=tuple("algebra" if i % 3 else "geometry" for i in range(num_items)),
        metadata={"source": "test"},
    )


def port_is_closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) != 0


class ThreadedServer:
    """uvicorn serving ``create_app(tutor)`` in a background thread on a free loopback port."""

    def __init__(self, tutor: TutorModel, max_body_bytes: int = LIMIT, fast_path: bool = True):
        import uvicorn

        self.sock = bind_socket("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        app = create_app(tutor, max_body_bytes=max_body_bytes, fast_path=fast_path)
        config = uvicorn.Config(app, log_level="error", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "ThreadedServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
        assert not self.thread.is_alive(), "server thread still running"
        assert port_is_closed(self.port), f"something still listens on port {self.port}"


def request(port: int, method: str, path: str, body: bytes | str | dict | list | None = None,
            headers: dict | None = None) -> tuple[int, dict | str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read().decode()
        try:
            return resp.status, json.loads(raw)
        except json.JSONDecodeError:
            return resp.status, raw
    finally:
        conn.close()


@pytest.fixture(scope="module")
def tutor() -> TutorModel:
    return make_tutor()


@pytest.fixture(scope="module", params=[True, False], ids=["fast path", "through FastAPI"])
def server(tutor, request):
    with ThreadedServer(tutor, fast_path=request.param) as srv:
        yield srv


def in_process(tutor: TutorModel, answers: list[dict], group: str | None = None) -> tuple[dict, dict]:
    items = tutor.item_indices([a["item"] for a in answers])
    y = [1.0 if a["correct"] else 0.0 for a in answers]
    nxt = tutor.next_item(items, y, group)
    mastery = tutor.mastery(items, y)
    return ({"item": nxt.name, "index": nxt.index, "p_correct": nxt.p_correct, "information": nxt.information,
             "num_answers": len(answers)},
            {"num_answers": len(answers), "mastery": {k: {"mean": v.mean, "sd": v.sd} for k, v in mastery.items()}})


def random_answers(rng: np.random.Generator, tutor: TutorModel, k: int, by_index: bool = False) -> list[dict]:
    items = rng.choice(tutor.num_items, size=k, replace=False)
    return [{"item": int(i) if by_index else tutor.item_names[i], "correct": bool(rng.random() < 0.5)} for i in items]


# --- the model ---------------------------------------------------------------------------
def test_tutor_model_equals_the_torch_maml_student():
    """The numpy inner loop gives the same predictions as MAMLStudent.predict (vmap + torch.func.grad)."""
    torch.manual_seed(0)
    maml = MAMLStudent(NUM_ITEMS, dim=4, num_inner_steps=5, seed=0)
    with torch.no_grad():  # a non-trivial model without training: random E, c, w0 and rates
        maml.model.item_embedding.normal_(0, 0.7)
        maml.model.item_bias.normal_(0, 1.0)
        maml.model.student.normal_(0, 0.3)
        maml.log_inner_lr.copy_(torch.tensor([0.05, 0.1, 0.02, 0.08]).log())
    tutor = TutorModel.from_maml(maml, [f"i{j}" for j in range(NUM_ITEMS)], ["g"] * NUM_ITEMS)
    g = torch.Generator().manual_seed(1)
    items = torch.stack([torch.randperm(NUM_ITEMS, generator=g)[:7] for _ in range(12)])
    answers = (torch.rand(items.shape, generator=g) < 0.5).float()
    expected = maml.predict(items, answers).double().numpy()
    got = np.stack([tutor.predict_proba(i.numpy(), a.numpy()) for i, a in zip(items, answers)])
    np.testing.assert_allclose(got, expected, atol=2e-6)
    w_batch = tutor.adapt_batch(items.numpy(), answers.numpy())
    w_one = np.stack([tutor.adapt(i.numpy(), a.numpy()) for i, a in zip(items, answers)])
    np.testing.assert_allclose(w_batch, w_one, atol=1e-12)


def test_save_load_round_trip_and_bad_files(tmp_path, tutor):
    path = tutor.save(tmp_path / "tutor.npz")
    loaded = TutorModel.load(path)
    for name in ("item_embedding", "item_bias", "student_init", "inner_lr"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(tutor, name))
    assert (loaded.item_names, loaded.groups, loaded.metadata) == (tutor.item_names, tutor.groups, tutor.metadata)
    assert not list(tmp_path.glob(".*.part"))  # atomic write left no temporary file
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a tutor model"):
        TutorModel.load(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError, match="not found"):
        TutorModel.load(tmp_path / "missing.npz")


def test_uncertainty_shrinks_and_next_item_skips_answered_items(tutor):
    rng = np.random.default_rng(3)
    order = rng.permutation(NUM_ITEMS)
    y = (rng.random(NUM_ITEMS) < 0.5).astype(float)
    sds = [tutor.mastery(order[:k], y[:k])["all"].sd for k in (0, 3, 10, 25)]
    # the posterior covariance shrinks with every answer; the delta-method SD also moves with the
    # slope p (1 - p) at the new estimate, so compare few answers with many
    assert sds[3] < sds[2] < sds[0] and sds[3] < 0.9 * sds[0], sds
    asked: list[int] = []
    for _ in range(NUM_ITEMS):
        nxt = tutor.next_item(np.array(asked, dtype=np.int64), y[asked])
        assert nxt.index not in asked
        asked.append(nxt.index)
    assert sorted(asked) == list(range(NUM_ITEMS))
    with pytest.raises(TutorInputError, match="no item left"):
        tutor.next_item(np.array(asked), y[asked])
    geometry = tutor.next_item(np.array([], dtype=np.int64), np.array([]), group="geometry")
    assert tutor.groups[geometry.index] == "geometry"


def test_item_ids_are_checked(tutor):
    np.testing.assert_array_equal(tutor.item_indices(["item_03", 5]), [3, 5])
    with pytest.raises(TutorInputError, match="unknown item id.*'nope'.*expected one of the model's 30 item names"):
        tutor.item_indices(["nope"])
    with pytest.raises(TutorInputError, match="unknown item id"):
        tutor.item_indices([NUM_ITEMS])
    with pytest.raises(TutorInputError, match="repeated: \\['item_03'\\]"):
        tutor.item_indices(["item_03", 3])


def test_shipped_tutor_model_loads_with_its_recorded_hash():
    assert default_tutor_model_path().is_file()
    shipped = load_default_tutor()
    assert shipped.num_items == 160 and shipped.group_names == ("quant", "verbal")
    assert shipped.item_names[0] == "quant_01" and shipped.metadata["meta_steps"] >= 1000
    from metalearn_lite.checkpoints import entry
    record = entry("tutor_maml_swesat")  # the registry of shipped models
    assert record["file"] == default_tutor_model_path().name
    assert record["command"].startswith("python -m metalearn_lite.education.train_tutor ")
    assert record["metrics"]["auc_5_random"][0] > 0.65  # personalises: population AUC is 0.646


# --- the service -------------------------------------------------------------------------
def test_openapi_documents_the_endpoints(server):
    status, spec = request(server.port, "GET", "/openapi.json")
    assert status == 200 and {"/health", "/items", "/next-item", "/mastery"} <= set(spec["paths"])
    schema = spec["paths"]["/next-item"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "$ref" not in json.dumps(schema)
    assert set(schema["properties"]["answers"]["items"]["properties"]) == {"item", "correct"}


def test_health_and_items(server, tutor):
    status, body = request(server.port, "GET", "/health")
    assert status == 200 and body["status"] == "ok" and body["num_items"] == NUM_ITEMS
    assert body["groups"] == ["geometry", "algebra"]
    status, body = request(server.port, "GET", "/items")
    assert status == 200 and body["items"] == list(tutor.item_names) and body["groups"] == list(tutor.groups)


@pytest.mark.parametrize("k", [0, 1, 5, 29])
def test_service_answers_equal_in_process_answers(server, tutor, k):
    rng = np.random.default_rng(k)
    for by_index in (False, True):
        answers = random_answers(rng, tutor, k, by_index)
        want_next, want_mastery = in_process(tutor, answers)
        assert request(server.port, "POST", "/next-item", {"answers": answers}) == (200, want_next)
        assert request(server.port, "POST", "/mastery", {"answers": answers}) == (200, want_mastery)
    want_next, _ = in_process(tutor, answers, group="algebra")
    assert request(server.port, "POST", "/next-item", {"answers": answers, "group": "algebra"}) == (200, want_next)


def _deep(n: int) -> str:
    return '{"answers": ' + "[" * n + "]" * n + "}"


BAD = {
    "not json": ("{answers: [", 422, "JSON"),
    "empty body": ("", 422, "Invalid JSON"),
    "not UTF-8": (b"\xff\xfe{}", 422, "Invalid JSON"),
    "NaN for correct": ('{"answers": [{"item": "item_01", "correct": NaN}]}', 422, "answers.0.correct"),
    "a list, not an object": ([], 422, "should be an object"),
    "no answers field": ({}, 422, "answers"),
    "answers not a list": ({"answers": {"item": "item_01"}}, 422, "valid array"),
    "answer not an object": ({"answers": ["item_01"]}, 422, "answers.0"),
    "missing correct": ({"answers": [{"item": "item_01"}]}, 422, "answers.0.correct"),
    "correct as a string": ({"answers": [{"item": "item_01", "correct": "yes"}]}, 422, "answers.0.correct"),
    "correct as 1": ({"answers": [{"item": "item_01", "correct": 1}]}, 422, "answers.0.correct"),
    "item as a float": ({"answers": [{"item": 1.0, "correct": True}]}, 422, "answers.0.item"),
    "item as a bool": ({"answers": [{"item": True, "correct": True}]}, 422, "answers.0.item"),
    "item null": ({"answers": [{"item": None, "correct": True}]}, 422, "answers.0.item"),
    "unknown field": ({"answers": [], "student": 7}, 422, "student"),
    "unknown item name": ({"answers": [{"item": "item_99", "correct": True}]}, 422, "unknown item id(s) 'item_99'"),
    "index out of range": ({"answers": [{"item": NUM_ITEMS, "correct": True}]}, 422, "unknown item id"),
    "negative index": ({"answers": [{"item": -1, "correct": True}]}, 422, "unknown item id"),
    "huge integer": ({"answers": [{"item": 10 ** 30, "correct": True}]}, 422, "unknown item id"),
    "repeated item": ({"answers": [{"item": "item_01", "correct": True}, {"item": 1, "correct": False}]},
                      422, "repeated"),
    "too many answers": ({"answers": [{"item": f"item_{i % NUM_ITEMS:02d}", "correct": True}
                                      for i in range(NUM_ITEMS + 1)]}, 422, f"at most {NUM_ITEMS}"),
    "unknown group": ({"answers": [], "group": "history"}, 422, "unknown group 'history'"),
    "deeply nested json": (_deep(3000), 422, "recursion limit"),
    "body over the limit": ({"answers": [{"item": "x" * LIMIT, "correct": True}]}, 413, f"at most {LIMIT} bytes"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_gives_a_clear_4xx(server, case):
    body, status, needle = BAD[case]
    got_status, got = request(server.port, "POST", "/next-item", body)
    assert got_status == status, (got_status, got)
    text = json.dumps(got["detail"])
    assert needle in text, text
    assert '"answers": [{"item"' in got["expected"]  # every error shows the expected body


def test_no_item_left_and_other_methods(server, tutor):
    everything = [{"item": name, "correct": True} for name in tutor.item_names]
    status, body = request(server.port, "POST", "/next-item", {"answers": everything})
    assert status == 422 and "no item left" in json.dumps(body)
    assert request(server.port, "POST", "/mastery", {"answers": everything})[0] == 200
    assert request(server.port, "GET", "/next-item")[0] == 405
    assert request(server.port, "POST", "/nowhere", {"answers": []})[0] == 404


def test_chunked_body_over_the_limit_is_rejected(server):
    # The whole request goes to the kernel in one sendall, and the reply is read even when
    # the server closes before reading the rest: with http.client writing chunk by chunk, a
    # server that answered 413 early made the client's next write fail (BrokenPipeError)
    # on a loaded machine, so the test saw no reply at all.
    chunk = b'{"answers": [' + b" " * 1024
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(LIMIT // 1024 + 2)) + b"0\r\n\r\n"
    head = (b"POST /mastery HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    reply = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        try:
            sock.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before taking the whole body
        try:
            while chunk_in := sock.recv(65536):
                reply += chunk_in
        except ConnectionResetError:
            pass  # a reset after the reply: what arrived before it is kept
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"too large" in reply


def test_concurrent_clients_get_their_own_answers(server, tutor):
    rng = np.random.default_rng(7)
    cases = [random_answers(rng, tutor, int(rng.integers(0, 12))) for _ in range(120)]
    expected = [in_process(tutor, answers) for answers in cases]

    def call(i: int):
        path = "/next-item" if i % 2 == 0 else "/mastery"
        return request(server.port, "POST", path, {"answers": cases[i]})

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(call, range(len(cases))))
    for i, (status, body) in enumerate(results):
        assert status == 200
        assert body == expected[i][i % 2]


# --- the command -------------------------------------------------------------------------
def test_metalearn_serve_command_starts_answers_and_stops(tmp_path, tutor):
    model = tutor.save(tmp_path / "tutor.npz")
    port_file = tmp_path / "port"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "metalearn_lite", "serve", "--port", "0", "--model", str(model),
         "--port-file", str(port_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "metalearn serve did not start within 60 s"
            time.sleep(0.05)
        port = int(port_file.read_text())
        status, body = request(port, "GET", "/health")
        assert status == 200 and body["model"] == {"source": "test"}
        answers = [{"item": "item_02", "correct": False}]
        assert request(port, "POST", "/next-item", {"answers": answers}) == (200, in_process(tutor, answers)[0])
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, out
    assert f"listening on http://127.0.0.1:{port}" in out
    assert port_is_closed(port)


def test_serve_reports_a_bad_model_file(tmp_path, capsys):
    from metalearn_lite.cli import main

    assert main(["serve", "--model", str(tmp_path / "missing.npz"), "--port", "0"]) == 2
    assert "tutor model file not found" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be 0..65535" in capsys.readouterr().err
