"""proc_util.py - what the integration tests share: a free loopback port,
and a process whose output goes to its own log file, stopped by PID.

Used by ship_test.py and pipeline_test.py.
"""
import os
import signal
import socket
import subprocess


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Proc:
    """argv running with stdout and stderr appended to LOGDIR/NAME.log;
    registered in procs (a list the test stops and reports at its end)."""

    def __init__(self, name, argv, logdir, procs, env=None):
        self.name = name
        self.logpath = os.path.join(logdir, f"{name}.log")
        self.logf = open(self.logpath, "ab")
        self.p = subprocess.Popen(argv, stdout=self.logf, stderr=self.logf,
                                  env=env)
        procs.append(self)

    def kill9(self):
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait(timeout=10)

    def stop(self, timeout=15):
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait(timeout=10)
        if not self.logf.closed:
            self.logf.close()
        return self.p.returncode

    def text(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")
