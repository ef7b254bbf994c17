"""The explorer's server without a browser: loopback only, no path traversal, bad input and
oversized bodies refused with a message, clean stop on Ctrl-C (issue 15, item 3)."""

import http.client
import json
import signal
import subprocess
import sys
import threading

import pytest

from siliconsim.explorer import server as srv


@pytest.fixture(scope="module")
def port():
    s = srv.make_server(0)
    t = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield s.server_address[1]
    s.shutdown()
    s.server_close()


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    hdrs = {"Content-Type": "application/json"} | (headers or {})
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def estimate(port, query):
    status, data = request(port, "POST", "/api/estimate", json.dumps(query).encode())
    return status, json.loads(data)


def test_it_binds_to_loopback_only(port):
    s = srv.make_server(0)
    try:
        assert s.server_address[0] == "127.0.0.1"
    finally:
        s.server_close()


@pytest.mark.parametrize("path", ["/../../etc/passwd", "/assets/../server.py", "/assets/%2e%2e/service.py",
                                  "/assets/..%2f..%2fetc%2fpasswd", "/assets/a\\b"])
def test_path_traversal_is_refused(port, path):
    status, data = request(port, "GET", path)
    assert status == 400 and b"root:" not in data and b"import" not in data


@pytest.mark.parametrize("path", ["/etc/passwd", "/assets/service.py", "/assets/", "/assets/__init__.py", "/api/nope"])
def test_only_its_own_assets_are_served(port, path):
    assert request(port, "GET", path)[0] == 404


def test_the_page_and_its_assets_load(port):
    for path, marker in (("/", b"siliconsim explorer"), ("/assets/app.js", b"/api/estimate"), ("/assets/style.css", b"body")):
        status, data = request(port, "GET", path)
        assert status == 200 and marker in data


def test_another_host_name_is_refused(port):
    assert request(port, "GET", "/", headers={"Host": "evil.example"})[0] == 421


def test_an_estimate_with_a_what_if_and_a_curve(port):
    status, ans = estimate(port, {"model": "llama-3.1-8b", "hardware": "h100-sxm", "batch": 1,
                                  "what_if": ["memory.hbm.bandwidth=6.7 TB/s"], "slo_tpot_ms": 5})
    assert status == 200 and ans["record"]["hardware"] == "h100-sxm*"
    assert ans["slo"]["tpot_ok"] is True and len(ans["curve"]) > 5
    assert ans["figures"]["breakdown"].startswith("<svg") and ans["figures"]["curve"].startswith("<svg")


def test_an_uploaded_config_is_a_model(port):
    from siliconsim.models.catalog import DATA

    config = json.loads((DATA / "llama-3.1-8b.json").read_text())
    status, ans = estimate(port, {"model_config": config, "hardware": "h100-sxm"})
    assert status == 200 and ans["record"]["model"] == "uploaded-model"


@pytest.mark.parametrize("query, message", [
    ({"model": "llama-3.1-8b", "hardware": "h100-sxm", "batch": "x"}, "batch: expected a whole number"),
    ({"model": "llama-3.1-8b", "hardware": "h100-sxm", "batch": -3}, "batch"),
    ({"model": "nope", "hardware": "h100-sxm"}, "unknown model id 'nope'"),
    ({"model": "/etc/passwd", "hardware": "h100-sxm"}, "pick a catalog model id"),
    ({"model": "llama-3.1-8b", "hardware": "../../etc/passwd"}, "pick a catalog hardware id"),
    ({"model": "llama-3.1-8b", "hardware": "h100-sxm", "what_if": ["memory.hbm.bandwith=1 TB/s"]}, "did you mean"),
    ({"model": "llama-3.1-8b", "hardware": "h100-sxm", "chip_toml": "[meta\n"}, "malformed TOML"),
    ({"model_config": {"model_type": "nope"}, "hardware": "h100-sxm"}, "model_type 'nope' is not supported"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_input_gets_a_one_line_message(port, query, message):
    status, ans = estimate(port, query)
    assert status == 400 and message in ans["error"] and "\n" not in ans["error"] and "Traceback" not in ans["error"]


def test_malformed_json_and_wrong_content_type_are_refused(port):
    status, data = request(port, "POST", "/api/estimate", b"{not json")
    assert status == 400 and "not valid JSON" in json.loads(data)["error"]
    status, _ = request(port, "POST", "/api/estimate", b"model=x", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415


def test_an_oversized_body_is_refused_before_it_is_read(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", "/api/estimate")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(srv.MAX_BODY_BYTES + 1))
    conn.endheaders()  # no body sent: the server must answer from the header alone
    resp = conn.getresponse()
    assert resp.status == 413 and "KiB" in json.loads(resp.read())["error"]
    conn.close()


def test_ctrl_c_stops_the_server_cleanly():
    proc = subprocess.Popen([sys.executable, "-m", "siliconsim.cli.main", "explore", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert "http://127.0.0.1:" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "explorer stopped" in out and "Traceback" not in err


def test_an_uploaded_chip_file_equals_the_same_what_if(port):
    from siliconsim.hardware.catalog import DATA

    text = (DATA / "chips" / "h100-sxm.toml").read_text().replace('value = "3.35 TB/s"', 'value = "6.7 TB/s"')
    _, by_file = estimate(port, {"model": "llama-3.1-8b", "hardware": "h100-sxm", "chip_toml": text})
    _, by_set = estimate(port, {"model": "llama-3.1-8b", "hardware": "h100-sxm", "what_if": ["memory.hbm.bandwidth=6.7 TB/s"]})
    assert by_file["record"]["hardware"] == "h100-sxm*" and by_file["record"]["what_if"] == ["chip file uploaded-chip.toml"]
    assert by_file["record"]["tpot_s"] == by_set["record"]["tpot_s"]
