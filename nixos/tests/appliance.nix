# The appliance in VMs, as a user sees it. `machine`: services.agentstead with a
# domain (Caddy signs it with its own CA here), the tests' OpenAI-compatible
# server, backups to the S3 server on `s3` (rclone serve s3, as in the system
# tests). Checked through Caddy: the real SPA (a hashed asset, application/wasm,
# precompressed), health, a sign-in link from the `agentstead` command, a chat
# run streamed over a WebSocket (nixos/tests/chat_check.py), a restart no request
# notices, Litestream replicating, a passing restore drill. Then `fresh`, the
# same configuration on an empty disk, restores the database from the bucket on
# its first boot: the user made on `machine` signs in there.
#
#   pkgs.testers.runNixOSTest (import ./appliance.nix { agentsteadModule = …; })
#
# `nix flake check` runs it as checks.x86_64-linux.appliance (needs KVM).
# tests/unit/test_nix_vm.py evaluates both Agentstead nodes against the module
# and parses this test script here.
{ agentsteadModule }:

let
  domain = "agentstead.test";
  base = "https://${domain}";
  admin = "admin@example.org";
  # Caddy's local CA root, copied here once Caddy has made it (under its
  # data directory, /var/lib/caddy/.local/share/caddy with HOME=/var/lib/caddy).
  caddyRoot = "/run/caddy-local-root.crt";
  keyFile = "/var/lib/secrets/agentstead-secret-key";
  s3Keys = "/var/lib/secrets/agentstead-s3";
  # As tests/support/s3.py (rclone refuses very short keys).
  accessKey = "AKIAAGENTSTEADTEST01";
  secretKey = "agentstead/test/secret/key/0123456789abcd";
  llmPort = 8000;

  # Both Agentstead nodes: one configuration, one bucket.
  agentsteadNode =
    {
      config,
      lib,
      pkgs,
      ...
    }:
    {
      imports = [ agentsteadModule ];

      services.agentstead = {
        enable = true;
        inherit domain;
        acmeEmail = "admin@example.org";
        secretKeyFile = keyFile;
        initialAdminEmail = admin;
        settings = {
          log_level = "debug";
          llm_providers = [
            {
              name = "local";
              base_url = "http://127.0.0.1:${toString llmPort}/v1";
              models = [ "gpt-test" ];
            }
          ];
        };
        backup = {
          enable = true;
          s3 = {
            endpoint = "http://s3:9000";
            bucket = "agentstead";
          };
          credentialsFile = s3Keys;
          # Not the packaged "daily": the drop-in must replace it, not add to it.
          drill.schedule = "*-*-* 03:00:00";
        };
      };

      # agentstead.test is not a public name: Caddy signs it with its own CA.
      services.caddy.virtualHosts.${domain}.extraConfig = lib.mkAfter "tls internal";
      networking.hosts."127.0.0.1" = [ domain ];
      networking.hosts."::1" = [ domain ];

      # Test only: fixed secrets, written at boot. A real host never puts a
      # secret in its configuration: it would be in the Nix store.
      systemd.tmpfiles.rules = [
        "d /var/lib/secrets 0700 root root -"
        "f ${keyFile} 0400 root root - test-only-key-not-secret-0123456789abcdefghijklmnopqrstuvwxyz"
        "f ${s3Keys} 0400 root root - AWS_ACCESS_KEY_ID=${accessKey}\\nAWS_SECRET_ACCESS_KEY=${secretKey}\\n"
      ];

      # The tests' OpenAI-compatible server (tests/support/llm_server.py): it
      # streams an echo of the last message.
      systemd.services.llm-server = {
        wantedBy = [ "multi-user.target" ];
        before = [ "agentstead.service" ];
        serviceConfig = {
          ExecStart = "${
            pkgs.python3.withPackages (ps: [ ps.aiohttp ])
          }/bin/python ${../../tests/support/llm_server.py} ${toString llmPort}";
          DynamicUser = true;
        };
      };

      environment.systemPackages = [
        pkgs.curl
        (pkgs.writers.writePython3Bin "agentstead-chat-check" {
          libraries = [ pkgs.python3Packages.aiohttp ];
          flakeIgnore = [
            "E501"
            "W503"
          ];
        } (builtins.readFile ./chat_check.py))
        (pkgs.writeShellApplication {
          name = "restart-under-load";
          runtimeInputs = [
            pkgs.coreutils
            pkgs.curl
            pkgs.gnugrep
            pkgs.systemd
          ];
          # Requests the URL in a loop while agentstead.service restarts;
          # prints the counts and fails unless every answer was 200.
          text = ''
            url=$1
            log=$(mktemp)
            stop=$(mktemp -u)
            (
              while [ ! -e "$stop" ]; do
                curl --silent --output /dev/null --write-out '%{http_code}\n' \
                  --max-time 20 --cacert ${caddyRoot} "$url" >>"$log" || true
              done
            ) &
            loop=$!
            sleep 2
            # Type=notify: returns once the new process is ready.
            systemctl restart agentstead.service
            sleep 2
            touch "$stop"
            wait "$loop"
            total=$(wc -l <"$log")
            ok=$(grep -c '^200$' "$log" || true)
            echo "requests=$total ok=$ok others: $(grep -v '^200$' "$log" | sort | uniq -c | tr '\n' ' ')"
            [ "$total" -ge 10 ] && [ "$ok" -eq "$total" ]
          '';
        })
      ];
    };
in
{
  name = "agentstead-appliance";

  nodes = {
    s3 =
      { pkgs, ... }:
      {
        networking.firewall.allowedTCPPorts = [ 9000 ];
        systemd.services.s3 = {
          wantedBy = [ "multi-user.target" ];
          serviceConfig = {
            DynamicUser = true;
            StateDirectory = "s3";
            # A bucket is a directory of the root.
            ExecStartPre = "${pkgs.coreutils}/bin/mkdir -p /var/lib/s3/agentstead";
            ExecStart = "${pkgs.rclone}/bin/rclone serve s3 --config '' --addr :9000 --auth-key ${accessKey},${secretKey} /var/lib/s3";
          };
        };
      };
    machine = agentsteadNode;
    fresh = agentsteadNode;
  };

  testScript = ''
    import json

    # Through Caddy, trusting its local CA. `status` prints the HTTP code only.
    curl = "curl --fail --silent --show-error --max-time 20 --cacert ${caddyRoot}"
    status = "curl --silent --output /dev/null --write-out '%{http_code}' --max-time 20 --cacert ${caddyRoot}"


    def ready(node):
        node.wait_for_unit("agentstead.service")
        node.wait_for_unit("caddy.service")
        node.wait_for_open_port(443)
        # Caddy makes its local CA and signs the site's certificate just after it listens.
        node.wait_until_succeeds(
            "cp \"$(find /var/lib/caddy -path '*/pki/authorities/local/root.crt' | head -n 1)\" ${caddyRoot}",
            timeout=60,
        )
        node.wait_until_succeeds(f"{curl} ${base}/healthz", timeout=60)


    def readyz(node):
        return json.loads(node.succeed("curl --fail --silent --show-error http://127.0.0.1:47293/readyz"))


    def login_link(node, email):
        # The `agentstead` command on root's PATH runs as the service does.
        return node.succeed(f"agentstead admin login-link --email {email}").split()[0]


    s3.start()
    s3.wait_for_open_port(9000)
    ready(machine)

    with subtest("the unit runs as its own user; secrets are credentials, not environment"):
        pid = machine.succeed("systemctl show --property MainPID --value agentstead.service").strip()
        assert machine.succeed(f"ps -o user:32= -p {pid}").strip() == "agentstead"
        unit = machine.succeed("systemctl cat agentstead.service")
        assert "LoadCredential=secret_key:${keyFile}" in unit, unit
        assert "AGENTSTEAD_PUBLIC_URL=${base}" in unit, unit
        env = machine.succeed("systemctl show --property Environment agentstead.service")
        assert "SECRET_KEY" not in env, env
        # The check of the secret files ran first, and passed.
        result = machine.succeed("systemctl show --property Result --value agentstead-secrets.service").strip()
        assert result == "success", result

    with subtest("health through Caddy, with the build the package recorded; readiness stays internal"):
        health = json.loads(machine.succeed(f"{curl} ${base}/healthz"))
        assert health["status"] == "ok" and health["commit"] != "unknown", health
        retry(lambda _: readyz(machine)["status"] == "ok", timeout=90)
        assert readyz(machine)["checks"]["backup"]["litestream"] == "replicating", readyz(machine)
        assert machine.succeed(f"{status} ${base}/readyz") == "404"

    with subtest("the real SPA: index.html names hashed assets; the runtime is application/wasm, brotli"):
        page = machine.succeed(f"{curl} ${base}/")
        assert "/assets/boot." in page and "The web interface is not part of this build" not in page, page
        manifest = json.loads(machine.succeed(f"{curl} ${base}/manifest.json"))
        wasm = manifest["MICROPYTHON_WASM"]
        headers = machine.succeed(f"{curl} --head --header 'Accept-Encoding: br' ${base}/assets/{wasm}").lower()
        assert "content-type: application/wasm" in headers, headers
        assert "content-encoding: br" in headers and "immutable" in headers, headers
        bundle = machine.succeed(f"{curl} --head ${base}/assets/{manifest['APP_BUNDLE']}")
        assert bundle.startswith("HTTP/"), bundle
        code = machine.succeed(f"{status} http://${domain}/")
        assert code in ("301", "308"), code

    with subtest("the first administrator, a sign-in link, a chat run streamed over the WebSocket"):
        # `agentstead doctor` as the service: the database and the model provider are fine (the
        # public URL check fails here: the host does not trust Caddy's test CA).
        _, report = machine.execute("agentstead doctor")
        print(report)
        assert "ok    database:" in report and "ok    local:" in report, report
        link = login_link(machine, "${admin}")
        assert link.startswith("${base}/auth/link/"), link
        result = json.loads(machine.succeed(f"agentstead-chat-check ${base} {link} ${caddyRoot}"))
        assert result["reply"] == "echo: hello from the appliance", result
        assert result["user"] == "${admin}", result
        # The command refuses anyone but root, saying why.
        out = machine.fail("su -s /bin/sh nobody -c '/run/current-system/sw/bin/agentstead version' 2>&1")
        assert "run it as root" in out, out

    with subtest("restarting the app drops no request"):
        print(machine.succeed("restart-under-load ${base}/healthz"))
        machine.wait_for_unit("agentstead.service")

    with subtest("backups: Litestream to the bucket, the drill's drop-in, a passing drill"):
        unit = machine.succeed("systemctl cat agentstead-litestream.service")
        assert "AGENTSTEAD_BACKUP_S3_ENDPOINT=http://s3:9000" in unit, unit
        assert "LoadCredential=backup_s3_access_key_id:${s3Keys}" in unit, unit
        assert "SECRET_KEY" not in unit, unit
        calendar = machine.succeed("systemctl show --property TimersCalendar --value agentstead-backup-drill.timer")
        assert calendar.count("OnCalendar=") == 1 and "03:00:00" in calendar, calendar
        print(machine.succeed("agentstead admin create-user --email restored@example.org"))
        machine.succeed("systemctl start agentstead-backup-drill.service")
        drill = json.loads(machine.succeed("cat /var/lib/agentstead/backup/last-drill.json"))
        assert drill["ok"], drill
        retry(lambda _: readyz(machine)["checks"]["backup"]["ok"], timeout=30)
        print(machine.succeed("agentstead backup status"))
        # Litestream ships what it has on SIGTERM; the bucket now holds the user.
        machine.succeed("systemctl stop agentstead-litestream.service")

    with subtest("a new machine restores the database from the bucket on its first boot"):
        ready(fresh)
        log = fresh.succeed("journalctl --boot --no-pager --output cat --unit agentstead-restore.service")
        assert "restored /var/lib/agentstead/agentstead.db" in log, log
        link = login_link(fresh, "restored@example.org")
        assert link.startswith("${base}/auth/link/"), link
        fresh.fail("agentstead admin create-user --email restored@example.org")
        retry(lambda _: readyz(fresh)["status"] == "ok", timeout=90)
  '';
}
