import http.client
import threading

import pytest

from disentune.reports.serve import make_server, safe_relative


@pytest.mark.parametrize("raw", ["/../secret", "/%2e%2e/secret", "/a/%2E%2E/%2e%2e/secret",
                                 "/..%2fsecret", "/a\\..\\secret", "/%2e%2e%5csecret", "/x%00"])
def test_traversal_attempts_are_refused(raw):
    assert safe_relative(raw) is None


def test_paths_inside_the_run():
    assert safe_relative("/") == "index.html"
    assert safe_relative("/figures/pareto.png?x=1") == "figures/pareto.png"
    assert safe_relative("/./index.html") == "index.html"


def test_server_serves_the_run_and_nothing_else(tmp_path):
    run = tmp_path / "run"
    (run / "figures").mkdir(parents=True)
    (run / "index.html").write_text("<html>report</html>")
    (run / "figures" / "a.png").write_bytes(b"\x89PNG")
    (tmp_path / "secret.txt").write_text("do not serve")
    server = make_server(str(run), 0)
    assert server.server_address[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        def get(path):
            conn = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read(), response.getheader("Content-Type")

        assert get("/") == (200, b"<html>report</html>", "text/html")
        assert get("/figures/a.png")[:2] == (200, b"\x89PNG")
        for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/figures/%2e%2e/%2e%2e/secret.txt",
                     "/..%2fsecret.txt", "/missing.html"):
            status, body, _ = get(path)
            assert status == 404 and b"do not serve" not in body
    finally:
        server.shutdown()
        server.server_close()
