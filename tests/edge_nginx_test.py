#!/usr/bin/env python3
"""The real nginx as a reverse proxy in front of alog-edge: the edge must
take the client address from X-Forwarded-For only because nginx is a
trusted proxy, take the address nginx saw (not one the client made up), use
it for geo and the visitor hash, and store it nowhere.

usage: edge_nginx_test.py ALOG_EDGE ALOG_CLI

Clients connect to nginx from 127.0.0.2 and 127.0.0.3 (loopback aliases);
nginx itself reaches the edge from 127.0.0.1, the only trusted proxy. A
small geo database maps 127.0.0.2 to DE and 127.0.0.3 to FR.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import edge_test  # noqa: E402

GEO_SCRIPT = r"""
use strict; use warnings;
use MaxMind::DB::Writer::Tree;
my %types = (country => 'map', iso_code => 'utf8_string');
my $t = MaxMind::DB::Writer::Tree->new(
    ip_version => 6, record_size => 24, database_type => 'GeoLite2-Country',
    languages => ['en'], description => { en => 'alog nginx test' },
    alias_ipv6_to_ipv4 => 1, remove_reserved_networks => 0,
    map_key_type_callback => sub { $types{ $_[0] } });
$t->insert_network('127.0.0.2/32', { country => { iso_code => 'DE' } });
$t->insert_network('127.0.0.3/32', { country => { iso_code => 'FR' } });
$t->insert_network('203.0.113.0/24', { country => { iso_code => 'JP' } });
open my $fh, '>:raw', $ARGV[0] or die $!; $t->write_tree($fh); close $fh;
"""

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream edge {{ server 127.0.0.1:{edge}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.2:{port};
        listen 127.0.0.3:{port};
        location / {{
            proxy_pass http://edge;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


def post_from(src_ip, port, body, headers):
    """POST through nginx with the client socket bound to src_ip."""
    s = socket.socket()
    s.settimeout(10)
    s.bind((src_ip, 0))
    s.connect((src_ip, port))
    data = json.dumps(body).encode()
    head = "".join("%s: %s\r\n" % kv for kv in headers.items())
    s.sendall(("POST /api/event HTTP/1.1\r\nHost: example.com\r\n"
               "Content-Type: text/plain\r\nConnection: close\r\n"
               "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0\r\n"
               "%sContent-Length: %d\r\n\r\n" % (head, len(data))).encode() + data)
    out = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        out += b
    s.close()
    return out


class NginxTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="alog-nginx-test-")
        cls.geo = os.path.join(cls.tmp, "geo.mmdb")
        with open(os.path.join(cls.tmp, "geo.pl"), "w") as f:
            f.write(GEO_SCRIPT)
        subprocess.run(["perl", os.path.join(cls.tmp, "geo.pl"), cls.geo],
                       check=True, timeout=60)
        cls.edge = edge_test.Edge(geoip_db=cls.geo,
                                  trusted_proxies=["127.0.0.1/32"])
        cls.port = edge_test.free_port()
        conf = os.path.join(cls.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(d=cls.tmp, edge=cls.edge.port,
                                      port=cls.port))
        cls.nginx = subprocess.Popen(["nginx", "-c", conf, "-p", cls.tmp],
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", cls.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    @classmethod
    def tearDownClass(cls):
        cls.nginx.send_signal(signal.SIGTERM)
        try:
            cls.nginx.wait(10)
        except subprocess.TimeoutExpired:
            cls.nginx.kill()
        cls.edge.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_client_address_through_nginx(self):
        body = {"n": "pageview", "u": "https://example.com/", "d": "example.com"}
        # 127.0.0.2 claims to be 203.0.113.9 (JP): nginx appends the real
        # address, the edge walks from the right and stops at it.
        r = post_from("127.0.0.2", self.port, body,
                      {"X-Forwarded-For": "203.0.113.9"})
        self.assertIn(b" 202 ", r.split(b"\r\n")[0])
        post_from("127.0.0.3", self.port, body, {})
        post_from("127.0.0.2", self.port, body, {})
        ev = self.edge.events()
        self.assertEqual(len(ev), 3)
        self.assertEqual([e.get("country") for e in ev], ["DE", "FR", "DE"])
        # same client, same visitor; different clients, different visitors
        self.assertEqual(ev[0]["visitor"], ev[2]["visitor"])
        self.assertNotEqual(ev[0]["visitor"], ev[1]["visitor"])
        # nothing stores an address: not the log, not the salt, not stderr
        self.edge.stop()
        pats = [b"127.0.0.2", b"127.0.0.3", b"203.0.113.9",
                socket.inet_aton("127.0.0.2"), socket.inet_aton("127.0.0.3"),
                socket.inet_aton("203.0.113.9")]
        for root, _, files in os.walk(self.edge.dir):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    data = fh.read()
                for p in pats:
                    self.assertNotIn(p, data, "address in %s" % f)


if __name__ == "__main__":
    edge_test.EDGE, edge_test.CLI = sys.argv[1], sys.argv[2]
    prog = unittest.main(argv=[sys.argv[0], "-v"], exit=False)
    r = prog.result
    print("%d passed, %d failed" % (r.testsRun - len(r.failures) - len(r.errors),
                                    len(r.failures) + len(r.errors)))
    sys.exit(0 if r.wasSuccessful() else 1)
