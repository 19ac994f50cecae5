"""`patronpay sandbox` on a machine where its SMTP port is taken says so in one line."""

import socket
import subprocess
import sys


def test_a_busy_smtp_port_is_one_clear_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "patronpay", "sandbox", "--port", "0", "--smtp-port",
             str(port)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"patronpay: the sandbox's SMTP server cannot listen on port {port} (Address already "
        "in use): choose another with --smtp-port (0: any free port)"]
