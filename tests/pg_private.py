"""pg_private.py - a private PostgreSQL 15 for tests, the demo and benchmarks.

initdb + pg_ctl in a directory of the caller's, Unix socket only (no TCP),
trust authentication, run as the postgres user when we are root (initdb
refuses root). Stopped by pg_ctl, and by the PID in postmaster.pid if that
fails: nothing is left running.
"""
import os
import pwd
import random
import signal
import subprocess
import time

PGBIN = "/usr/lib/postgresql/15/bin"


def wait_for(pred, timeout, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


class Postgres:
    """A private server: socket in its own directory, no TCP."""

    def __init__(self, root, settings=""):
        self.root = root
        self.data = os.path.join(root, "data")
        self.sock = os.path.join(root, "sock")
        self.port = str(random.randint(20000, 60000))
        self.as_user = []
        self.settings = settings
        os.makedirs(self.sock)
        if os.geteuid() == 0:
            # initdb refuses to run as root.
            pw = pwd.getpwnam("postgres")
            for d in (root, self.sock):
                os.chown(d, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def run(self, *argv, check_rc=True):
        p = subprocess.run(self.as_user + list(argv), capture_output=True,
                           text=True, timeout=120)
        if check_rc and p.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {p.stdout}{p.stderr}")
        return p

    def init(self):
        self.run(f"{PGBIN}/initdb", "-D", self.data, "-U", "postgres",
                 "-A", "trust", "--no-sync", "-E", "UTF8")
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as f:
            f.write(f"listen_addresses = ''\nunix_socket_directories = "
                    f"'{self.sock}'\nport = {self.port}\n"
                    "max_connections = 50\nshared_buffers = 128MB\n"
                    + self.settings)

    def start(self):
        self.run(f"{PGBIN}/pg_ctl", "-D", self.data, "-l",
                 os.path.join(self.root, "server.log"), "-w", "-t", "60",
                 "start")

    def stop(self, mode="fast"):
        self.run(f"{PGBIN}/pg_ctl", "-D", self.data, "-m", mode, "-w",
                 "-t", "60", "stop", check_rc=False)

    def kill(self):
        """Stop by the PID in postmaster.pid (the test's own server)."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline())
            os.kill(pid, signal.SIGQUIT)
            wait_for(lambda: not os.path.exists(
                os.path.join(self.data, "postmaster.pid")), 30)
        except (OSError, ValueError):
            pass

    def conninfo(self, db, user="postgres"):
        return f"host={self.sock} port={self.port} dbname={db} user={user}"

    def sql(self, db, query, user="postgres", check_rc=True):
        p = subprocess.run(
            [f"{PGBIN}/psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
             "-d", self.conninfo(db, user), "-c", query],
            capture_output=True, text=True, timeout=300)
        if check_rc and p.returncode != 0:
            raise RuntimeError(f"psql: {query[:80]}: {p.stderr}")
        return p.stdout.strip() if p.returncode == 0 else None, p

    def val(self, db, query):
        return self.sql(db, query)[0]

    def createdb(self, name):
        self.sql("postgres", f"CREATE DATABASE {name}")
