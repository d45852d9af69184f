# The appliance in a VM: services.agentstead with a domain, Caddy in front
# with TLS from its own local CA, the app's health, readiness and schema, a
# restart of the app under load that no request may notice, and backups to a
# local replica: a passing restore drill, then a wiped state directory that
# agentstead-restore brings back before the app starts.
#
#   pkgs.testers.runNixOSTest (import ./appliance.nix { agentsteadModule = …; })
#
# `nix flake check` runs it as checks.x86_64-linux.appliance (needs KVM).
{ agentsteadModule }:

let
  domain = "agentstead.test";
  base = "https://${domain}";
  # Caddy's local CA root, copied here once Caddy has made it (under its
  # data directory, /var/lib/caddy/.local/share/caddy with HOME=/var/lib/caddy).
  caddyRoot = "/run/caddy-local-root.crt";
  keyFile = "/var/lib/secrets/agentstead-secret-key";
  # Outside the state directory, which the test wipes (on a real host: another disk).
  replica = "/var/backup/agentstead";
in
{
  name = "agentstead-appliance";

  nodes.machine =
    {
      config,
      lib,
      pkgs,
      ...
    }:
    let
      # The app's own settings, as its unit gets them.
      appEnvironment = lib.filterAttrs (
        name: value: lib.hasPrefix "AGENTSTEAD_" name && value != null
      ) config.systemd.services.agentstead.environment;
    in
    {
      imports = [ agentsteadModule ];

      services.agentstead = {
        enable = true;
        inherit domain;
        acmeEmail = "admin@example.org";
        secretKeyFile = keyFile;
        settings.log_level = "debug";
        backup = {
          enable = true;
          localPath = replica;
          # Not the packaged "daily": the drop-in must replace it, not add to it.
          drill.schedule = "*-*-* 03:00:00";
        };
      };

      # Test only: a fixed key, written at boot. A real host never puts a
      # secret in its configuration: it would be in the Nix store.
      systemd.tmpfiles.rules = [
        "d /var/lib/secrets 0700 root root -"
        "f ${keyFile} 0400 root root - test-only-key-not-secret-0123456789abcdefghijklmnopqrstuvwxyz"
      ];

      # agentstead.test is not a public name: the Caddyfile's CADDY_TLS
      # placeholder makes Caddy sign it with its own CA instead of ACME.
      systemd.services.caddy.environment.CADDY_TLS = "tls internal";
      networking.hosts."127.0.0.1" = [ domain ];
      networking.hosts."::1" = [ domain ];

      environment.systemPackages = [
        pkgs.curl
        (pkgs.writeShellApplication {
          name = "agentstead-as-app";
          runtimeInputs = [ pkgs.systemd ];
          # The agentstead command as agentstead.service runs it: its user, its
          # environment, its key as a credential (for `admin` on the live database).
          text = ''
            exec systemd-run --quiet --wait --pipe --collect \
              --uid=agentstead --gid=agentstead \
              --property=StateDirectory=agentstead \
              --property=LoadCredential=secret_key:${keyFile} \
              ${
                lib.concatStringsSep " " (
                  lib.mapAttrsToList (name: value: lib.escapeShellArg "--setenv=${name}=${value}") appEnvironment
                )
              } \
              ${config.services.agentstead.package}/bin/agentstead "$@"
          '';
        })
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

  testScript = ''
    import json

    # Through Caddy, trusting its local CA. `status` prints the HTTP code only.
    curl = "curl --fail --silent --show-error --max-time 20 --cacert ${caddyRoot}"
    status = "curl --silent --output /dev/null --write-out '%{http_code}' --max-time 20 --cacert ${caddyRoot}"

    def readyz():
        return json.loads(machine.succeed("curl --fail --silent --show-error http://127.0.0.1:47293/readyz"))

    machine.wait_for_unit("agentstead.service")
    machine.wait_for_unit("agentstead-litestream.service")
    machine.wait_for_unit("caddy.service")
    machine.wait_for_open_port(47293)
    machine.wait_for_open_port(443)
    # Caddy makes its local CA and signs the site's certificate just after
    # it starts listening.
    machine.wait_until_succeeds(
        "cp \"$(find /var/lib/caddy -path '*/pki/authorities/local/root.crt' | head -n 1)\" ${caddyRoot}",
        timeout=60,
    )
    machine.wait_until_succeeds(f"{curl} ${base}/healthz", timeout=60)

    with subtest("the unit runs as its own user with the module's drop-in"):
        pid = machine.succeed("systemctl show --property MainPID --value agentstead.service").strip()
        assert machine.succeed(f"ps -o user:32= -p {pid}").strip() == "agentstead"
        unit = machine.succeed("systemctl cat agentstead.service")
        assert "LoadCredential=secret_key:${keyFile}" in unit, unit
        assert "AGENTSTEAD_PUBLIC_URL=${base}" in unit, unit
        # The key travels as a credential, never in the environment.
        env = machine.succeed("systemctl show --property Environment agentstead.service")
        assert "SECRET_KEY" not in env, env

    with subtest("liveness through Caddy, with the build the package recorded"):
        health = json.loads(machine.succeed(f"{curl} ${base}/healthz"))
        assert health["status"] == "ok", health
        assert health["commit"] != "unknown", health  # _buildinfo.json is installed

    with subtest("readiness on loopback; Caddy does not expose it"):
        # The backup check is "degraded" until Litestream has opened the database.
        retry(lambda _: readyz()["status"] == "ok", timeout=60)
        ready = readyz()
        assert ready["checks"]["backup"]["litestream"] == "replicating", ready
        code = machine.succeed(f"{status} ${base}/readyz")
        assert code == "404", code

    with subtest("the schema is migrated"):
        schema = json.loads(machine.succeed(f"{curl} ${base}/api/system/schema"))
        assert schema["version"] >= 1 and schema["version"] == schema["latest"], schema

    with subtest("Caddy serves the SPA and redirects HTTP to HTTPS"):
        page = machine.succeed(f"{curl} ${base}/")
        assert "Agentstead" in page, page
        code = machine.succeed(f"{status} http://${domain}/")
        assert code in ("301", "308"), code

    with subtest("restarting the app drops no request"):
        print(machine.succeed("restart-under-load ${base}/healthz"))
        machine.wait_for_unit("agentstead.service")

    with subtest("the backup units get the module's drop-ins"):
        unit = machine.succeed("systemctl cat agentstead-litestream.service")
        assert "AGENTSTEAD_BACKUP_LOCAL_PATH=${replica}" in unit, unit
        assert "ReadWritePaths=${replica}" in unit, unit
        assert "SECRET_KEY" not in unit and "LoadCredential" not in unit, unit
        assert machine.succeed("stat -c %U ${replica}").strip() == "agentstead"
        # Started at boot: no database yet, no replica yet, so an empty start.
        machine.succeed("systemctl is-active agentstead-restore.service")
        machine.succeed("systemctl is-active agentstead-backup-drill.timer")
        calendar = machine.succeed("systemctl show --property TimersCalendar --value agentstead-backup-drill.timer")
        assert calendar.count("OnCalendar=") == 1 and "03:00:00" in calendar, calendar

    with subtest("a restore drill passes once data is written"):
        print(machine.succeed("agentstead-as-app admin create-user --email restored@example.org"))
        # The drill pins the current position through Litestream, restores exactly that
        # from the replica and compares row counts: passing proves the replica holds the user.
        machine.wait_until_succeeds("systemctl start agentstead-backup-drill.service", timeout=120)
        drill = json.loads(machine.succeed("cat /var/lib/agentstead/backup/last-drill.json"))
        assert drill["ok"], drill
        retry(lambda _: readyz()["checks"]["backup"]["ok"], timeout=30)
        assert readyz()["checks"]["backup"]["last_drill"]["ok"], readyz()

    with subtest("a wiped state directory is restored from the replica before the app starts"):
        # Stop everything that holds the database (Litestream first: it ships what it has
        # left on SIGTERM). agentstead-restore stays active after its boot run; stopping it
        # makes the next start of the app (Requires=) run it again.
        machine.succeed(
            "systemctl stop agentstead-backup-drill.timer agentstead-litestream.service"
            " agentstead.service agentstead-restore.service"
        )
        machine.succeed("find /var/lib/agentstead -mindepth 1 -delete")
        machine.fail("test -e /var/lib/agentstead/agentstead.db")
        machine.succeed("systemctl start agentstead.service")
        machine.wait_for_unit("agentstead.service")
        log = machine.succeed("journalctl --boot --no-pager --output cat --unit agentstead-restore.service")
        assert "restored /var/lib/agentstead/agentstead.db from ${replica}" in log, log
        # The user written before the wipe is back.
        link = machine.succeed("agentstead-as-app admin login-link --email restored@example.org")
        assert "${base}" in link, link
        machine.fail("agentstead-as-app admin create-user --email restored@example.org")
        # Replication resumes on the restored database.
        machine.succeed("systemctl start agentstead-litestream.service agentstead-backup-drill.timer")
        machine.wait_for_unit("agentstead-litestream.service")
        retry(lambda _: readyz()["status"] == "ok", timeout=60)
        machine.succeed("systemctl start agentstead-backup-drill.service")

    # TODO: WebSocket check once /ws exists: a client subscribed through
    # Caddy across this restart reconnects and resumes after its last seq.
  '';
}
