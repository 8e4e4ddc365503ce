"""``cnnkit serve`` as a real process on loopback: health, a prediction, metrics, and a
clean exit 0 on SIGTERM with a request in flight answered; start-up errors as one line."""

import base64
import json
import signal
import socket
import time
import urllib.error
import urllib.request

import pytest

from cnnkit.serve.settings import ServeSettings, exposure_warning
from tests.helpers import assert_one_line_error, python_output, run_cli
from tests.helpers.serving import claiming_jpeg, free_port, serving

BOUNDARY = "cnnkit-test-boundary"


def multipart(png: bytes) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="d.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def request_head(port: int, length: int) -> bytes:
    return (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def read_answer(sock: socket.socket) -> tuple[int, dict]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def post_images(url: str, images: list[bytes]) -> tuple[int, dict]:
    body = json.dumps({"images": [base64.b64encode(image).decode() for image in images]})
    request = urllib.request.Request(
        url + "/v1/predict", body.encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow  # starts a server
def test_the_request_limits_are_set_on_the_command_line(serve_extra, digit_checkpoint, digits):
    digit = digits[0].png  # 28 x 28: 784 pixels
    limits = ("--max-images", "2", "--max-request-pixels", "2000", "--threads", "2")
    with serving(digit_checkpoint, *limits) as served:
        status, answer = post_images(served.url, [digit] * 2)
        assert status == 200 and len(answer["predictions"]) == 2
        status, answer = post_images(served.url, [digit] * 3)
        assert status == 400 and "more than 2 images" in answer["error"]
        status, answer = post_images(served.url, [claiming_jpeg(50, 50)])
        assert status == 413 and "2,500 pixels" in answer["error"] and "2,000" in answer["error"]


@pytest.mark.slow  # trains, or starts a server or a browser: seconds
def test_a_served_run_answers_and_drains_on_sigterm(serve_extra, digit_checkpoint, digits):
    digit = digits[0]
    with serving(digit_checkpoint) as served:
        assert served.get("/healthz") == (200, b'{"status":"ok"}')
        port = int(served.url.rsplit(":", 1)[1])
        body = multipart(digit.png)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request_head(port, len(body)) + body)
            status, answer = read_answer(sock)
        assert status == 200 and answer["predictions"][0]["top"][0]["class"] == str(digit.label)
        status, metrics = served.get("/metrics")
        assert status == 200
        assert b'cnnkit_requests_total{route="/v1/predict",method="POST",status="200"} 1' in (
            metrics
        )

        # A request in flight: its head and half its body sent, then SIGTERM.
        in_flight = socket.create_connection(("127.0.0.1", port))
        in_flight.sendall(request_head(port, len(body)) + body[:100])
        time.sleep(0.3)
        served.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert served.process.poll() is None  # still draining
        assert served.refuses_connections()  # no new connections while draining
        in_flight.sendall(body[100:])
        status, answer = read_answer(in_flight)
        in_flight.close()
        assert status == 200 and answer["predictions"][0]["top"][0]["class"] == str(digit.label)
        returncode, stderr = served.stop()
    assert returncode == 0, stderr
    assert "server stopped" in stderr and "Traceback" not in stderr
    assert "--resume" not in stderr  # a server has no run to resume


def raw_answer(port: int, request: bytes) -> tuple[int, dict, str]:
    """Send ``request`` on a new connection; the answer's status, JSON body and type."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    kind = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-type"))
    return int(head.split()[1]), json.loads(body), kind.decode()


@pytest.mark.slow  # starts a server: seconds
def test_request_headers_are_bounded_and_bad_http_is_a_json_400(serve_extra, digit_checkpoint):
    limit = ServeSettings.max_header_bytes

    def request_with_headers(size: int) -> bytes:
        start = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        padding = b"X-Padding: " + b"a" * (size - len(start) - 15) + b"\r\n"
        return start + padding + b"\r\n"

    with serving(digit_checkpoint) as served:
        port = int(served.url.rsplit(":", 1)[1])
        under = raw_answer(port, request_with_headers(limit - 100))
        over = raw_answer(port, request_with_headers(limit + 1000))
        garbled = raw_answer(port, b"NOT HTTP AT ALL\r\n\r\n")
        assert served.get("/healthz")[0] == 200  # the server went on
    assert under == (200, {"status": "ok"}, "content-type: application/json")
    status, answer, kind = over
    assert status == 431 and kind == "content-type: application/json"
    assert answer == {
        "error": f"request line and headers over the server's limit of {limit:,} bytes"
    }
    status, answer, kind = garbled
    assert status == 400 and kind == "content-type: application/json"
    assert "not an HTTP request" in answer["error"]


def test_a_bad_checkpoint_is_one_line(serve_extra, tmp_path):
    missing = tmp_path / "nothing.pt"
    assert_one_line_error(run_cli("serve", str(missing), "--port", str(free_port())), str(missing))


def test_a_port_in_use_is_one_line(serve_extra, digit_checkpoint):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", str(digit_checkpoint), "--port", str(port))
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}")


def test_the_http_process_imports_no_torch(serve_extra):
    """Only the model process holds torch (0.5 GB of memory, 200,000 objects)."""
    code = "import sys, cnnkit.serve.server\nprint('torch' in sys.modules)"
    stdout = python_output(code)
    assert stdout.strip() == "False"


def test_binding_beyond_loopback_without_a_token_is_warned_about():
    assert exposure_warning(ServeSettings()) is None
    assert exposure_warning(ServeSettings(host="::1")) is None
    assert exposure_warning(ServeSettings(host="0.0.0.0", token="t")) is None
    for host in ("0.0.0.0", "192.168.1.7", "myhost.example"):
        assert "WITHOUT A TOKEN" in exposure_warning(ServeSettings(host=host))
