"""The README's first command, run.sh, really serves the demo study."""

import os
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.factories import ROOT

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_run_script_migrates_seeds_and_serves(tmp_path):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")},
        "PIPAL_VAR_DIR": str(tmp_path / "var"),
        "PIPAL_ADDRESS": f"127.0.0.1:{port}",
    }
    log = open(tmp_path / "run.log", "w")  # noqa: SIM115
    process = subprocess.Popen(["./run.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/study/demo/", timeout=5).read().decode()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "run.log").read_text()
                assert time.monotonic() < deadline, "run.sh did not serve in time"
                time.sleep(1)
        assert "Demo study" in page
        log_text = (tmp_path / "run.log").read_text()
        assert "4 reference(s) and 48 image(s) added" in log_text
        assert f"http://127.0.0.1:{port}/study/demo/" in log_text
        schema = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/schema/", timeout=10).read().decode()
        assert "/api/studies/{slug}/votes/" in schema
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert (tmp_path / "var" / "pipal.sqlite3").exists()
