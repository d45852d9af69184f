# services.agentstead.monitoring in a VM: Prometheus scrapes the app, Caddy
# and the /readyz probe, loads the alert rules, and sees AgentsteadDown go
# pending when the app stops; Grafana has the dashboard provisioned.
#
#   pkgs.testers.runNixOSTest (import ./monitoring.nix { agentsteadModule = …; })
#
# `nix flake check` runs it as checks.x86_64-linux.monitoring (needs KVM).
{ agentsteadModule }:

let
  keyFile = "/var/lib/secrets/agentstead-secret-key";
in
{
  name = "agentstead-monitoring";

  nodes.machine =
    { pkgs, ... }:
    {
      imports = [ agentsteadModule ];
      services.agentstead = {
        enable = true;
        secretKeyFile = keyFile;
        monitoring = {
          enable = true;
          scrapeInterval = "2s";
          grafana.enable = true;
        };
      };
      # Test only: fixed secrets written at boot (a real host keeps them out of its configuration).
      systemd.tmpfiles.rules = [
        "d /var/lib/secrets 0755 root root -"
        "f ${keyFile} 0400 root root - test-only-key-not-secret-0123456789abcdefghijklmnopqrstuvwxyz"
        "f /var/lib/secrets/grafana-key 0444 root root - test-only-grafana-key-0123456789"
      ];
      services.grafana.settings.security.secret_key = "$__file{/var/lib/secrets/grafana-key}";
      environment.systemPackages = [ pkgs.curl ];
      virtualisation.memorySize = 2048;
    };

  testScript = ''
    import json

    def get(url):
        return json.loads(machine.succeed(f"curl --fail --silent --show-error --max-time 10 {url}"))

    def targets_up(_):
        targets = get("http://127.0.0.1:9090/api/v1/targets")["data"]["activeTargets"]
        return sorted(t["labels"]["job"] for t in targets if t["health"] == "up") == [
            "agentstead", "agentstead-readyz", "caddy"]

    def alert(name):
        alerts = get("http://127.0.0.1:9090/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == name]

    machine.wait_for_unit("agentstead.service")
    machine.wait_for_unit("prometheus.service")
    machine.wait_for_unit("prometheus-blackbox-exporter.service")
    machine.wait_for_open_port(9090)

    with subtest("Prometheus scrapes the app, Caddy and the /readyz probe"):
        retry(targets_up, timeout=120)
        probe = get("http://127.0.0.1:9090/api/v1/query?query=probe_success")["data"]["result"]
        assert [r["value"][1] for r in probe] == ["1"], probe

    with subtest("the alert rules are loaded, and none fires on a healthy host"):
        rules = get("http://127.0.0.1:9090/api/v1/rules")["data"]["groups"][0]["rules"]
        assert len(rules) == 17 and all(r["health"] in ("ok", "unknown") for r in rules), rules
        assert not alert("AgentsteadDown") and not alert("AgentsteadNotReady")

    with subtest("a stopped app makes AgentsteadDown pending"):
        machine.succeed("systemctl stop agentstead.service")
        retry(lambda _: bool(alert("AgentsteadDown")), timeout=60)
        machine.succeed("systemctl start agentstead.service")

    with subtest("Grafana has the dashboard and the datasource"):
        machine.wait_for_unit("grafana.service")
        machine.wait_for_open_port(3000)
        grafana = "curl --fail --silent --show-error --max-time 10 -u admin:admin http://127.0.0.1:3000"
        retry(lambda _: machine.execute(f"{grafana}/api/dashboards/uid/agentstead")[0] == 0, timeout=60)
        board = json.loads(machine.succeed(f"{grafana}/api/dashboards/uid/agentstead"))
        assert board["dashboard"]["title"] == "Agentstead", board["meta"]
        source = json.loads(machine.succeed(f"{grafana}/api/datasources/uid/agentstead-prometheus"))
        assert source["url"] == "http://127.0.0.1:9090", source
  '';
}
