"""The host's Caddy as NixOS configures it, shared with another site. The module is evaluated
(nixpkgs lib, tests/support/nix.py) for a host with Agentstead and a blog; the Caddyfile is
written the way nixpkgs' caddy module writes it from services.caddy (global options, then one
block per virtual host: bind, tls, log, extraConfig), with the package's store paths pointing
at this checkout; the real Caddy serves both sites, with Agentstead in front of the real app."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import time

import pytest

from ..support.caddy import CADDY_BIN, build_spa, caddy_env, run_caddy
from ..support.nix import REPO, _nix_in_ci, enabled, evaluate_module, needs_lib  # noqa: F401
from ..support.procs import Server, free_port

HOST = enabled('''
  domain = "agents.test";
  acmeEmail = "agents@example.org";
  settings.max_body_size = "2MiB";
''')[:-1] + '''
  services.caddy.virtualHosts."blog.test".extraConfig = "respond \\"the blog\\"";
  # nixpkgs' default writes /var/log/caddy/access-blog.test.log; nothing outside the test's directory here.
  services.caddy.virtualHosts."blog.test".logFormat = "output discard";
}'''


def nixos_caddyfile(out: dict, *, fake_paths: dict[str, str], http_port: int, https_port: int, admin: str) -> str:
    """As nixpkgs' caddy module (nixos/modules/services/web-servers/caddy/default.nix, mkVHostConf)."""
    caddy = out["caddy"]
    globals_ = [f"email {caddy['email']}" if caddy["email"] else "",
                # The test's own: loopback ports, Caddy's local CA instead of ACME.
                f"http_port {http_port}", f"https_port {https_port}", f"admin {admin}",
                "default_bind 127.0.0.1", "local_certs", "skip_install_trust"]
    text = "{\n" + "\n".join(g for g in globals_ if g) + "\n}\n"
    for vhost in caddy["virtualHosts"].values():
        text += f"{vhost['hostName']} {' '.join(vhost['serverAliases'])} {{\n"
        if vhost["listenAddresses"]:
            text += f"bind {' '.join(vhost['listenAddresses'])}\n"
        if vhost["logFormat"] is not None:
            text += f"log {{\n{vhost['logFormat']}}}\n"
        text += vhost["extraConfig"] + "\n}\n"
    for fake, real in fake_paths.items():
        text = text.replace(fake, real)
    return text


def get(port: int, host: str, path: str, cafile) -> tuple[int, dict, bytes]:
    context = ssl.create_default_context(cafile=str(cafile))
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10)
    conn.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=host)
    conn.request("GET", path, headers={"Host": host})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


@needs_lib
def test_agentstead_and_another_site_share_the_hosts_caddy(tmp_path):
    done = evaluate_module(tmp_path, HOST)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["failedAssertions"] == []
    spa = tmp_path / "spa"
    build_spa(spa)
    with Server(tmp_path / "state") as app:
        http_port, https_port, admin = free_port(), free_port(), f"127.0.0.1:{free_port()}"
        caddyfile = tmp_path / "Caddyfile"
        caddyfile.write_text(nixos_caddyfile(out, http_port=http_port, https_port=https_port, admin=admin,
                                             fake_paths={out["packageOut"] + "/share/agentstead/caddy":
                                                         str(REPO / "caddy"), out["frontend"]: str(spa),
                                                         "127.0.0.1:47293": f"127.0.0.1:{app.port}"}))
        fmt = run_caddy(["fmt", "--overwrite", str(caddyfile)], tmp_path)  # as nixpkgs does
        assert fmt.returncode == 0, fmt.stderr
        log = open(tmp_path / "caddy.log", "wb")
        caddy = subprocess.Popen([str(CADDY_BIN), "run", "--adapter", "caddyfile", "--config", str(caddyfile)],
                                 env=caddy_env(tmp_path), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        try:
            ca = tmp_path / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
            status, headers, body = _until_ok(lambda: get(https_port, "blog.test", "/", ca), caddy)
            assert (status, body) == (200, b"the blog")
            assert "content-security-policy" not in headers  # Agentstead's headers stay in its site
            status, headers, body = get(https_port, "agents.test", "/", ca)
            assert status == 200 and b"<title>Agentstead</title>" in body
            assert "wasm-unsafe-eval" in headers["content-security-policy"]
            status, _, body = get(https_port, "agents.test", "/healthz", ca)
            assert status == 200 and json.loads(body)["status"] == "ok"
            assert get(https_port, "agents.test", "/readyz", ca)[0] == 404  # never public
        finally:
            caddy.terminate()
            caddy.wait(15)


def _until_ok(request, caddy: subprocess.Popen, attempts: int = 100):
    """Caddy signs the sites' certificates (and writes its CA) just after it starts listening."""
    for _ in range(attempts):
        assert caddy.poll() is None, "Caddy exited"
        try:
            return request()
        except (ssl.SSLError, ConnectionError, OSError):
            time.sleep(0.2)
    pytest.fail("Caddy did not serve the sites over TLS")
