"""`drivesim preview` as a user starts it: a server on localhost that serves the page with the limits
given on the command line, stopped with Ctrl-C; bad flags and catalogs exit 2 with a message."""

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import REPO

pytest.importorskip("gradio")


def preview(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "drivesim.cli", "preview", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_preview_serves_the_page_on_localhost_and_stops_on_ctrl_c(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = preview("--port", str(port), "--catalog", str(tmp_path / "catalog"), "--max-steps", "7")
    try:
        deadline, config = time.monotonic() + 120, None
        while config is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as response:
                    config = json.loads(response.read())
            except OSError:
                time.sleep(0.5)
        assert config is not None, server.stderr.read() if server.poll() is not None else "no page in 120 s"
        text = json.dumps(config)
        assert "7 denoising steps" in text and str(tmp_path / "catalog") in text
        assert (tmp_path / "catalog" / "meta" / "info.json").exists()  # checked writable at start
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err


@pytest.mark.slow
def test_bad_limits_and_catalogs_exit_2_with_a_message(tmp_path):
    bad = preview("--max-steps", "0")
    assert bad.wait(timeout=120) == 2 and "max_steps=0: each limit must be 1 or more" in bad.stderr.read()
    (tmp_path / "file").write_text("x")
    bad = preview("--catalog", str(tmp_path / "file" / "catalog"))
    assert bad.wait(timeout=120) == 2 and "cannot write the catalog there" in bad.stderr.read()


def test_preview_flags_default_to_the_limits_dataclass():
    from dataclasses import fields

    from drivesim.cli.main import build_parser
    from drivesim.preview.limits import PreviewLimits

    args = build_parser().parse_args(["preview"])
    assert (args.host, args.port, args.catalog) == ("127.0.0.1", None, None)  # this machine only
    assert {f.name: getattr(args, f.name) for f in fields(PreviewLimits)} == vars(PreviewLimits())
