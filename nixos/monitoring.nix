# services.agentstead.monitoring: the host's Prometheus watches Agentstead.
#
# Adds to services.prometheus the scrape jobs monitoring/agentstead.rules.yml
# expects (the app's /metrics, Caddy's admin endpoint, and blackbox probes of
# /readyz and of the public site over HTTPS) and those rules, runs the blackbox
# exporter on loopback with monitoring/blackbox.yml, and optionally provisions
# monitoring/grafana/agentstead.json and a datasource into services.grafana.
# The same files serve this module, monitoring/prometheus.yml and the tests
# (tests/system/test_prometheus.py). Where alerts go is the host's choice:
# services.prometheus.alertmanagers (docs/monitoring.md has an example).
# Imported by module.nix.
{
  config,
  lib,
  ...
}:

let
  inherit (lib)
    mkDefault
    mkEnableOption
    mkIf
    mkOption
    optional
    types
    ;

  cfg = config.services.agentstead;
  mon = cfg.monitoring;
  blackbox = config.services.prometheus.exporters.blackbox;

  # IPv6 addresses need brackets in host:port.
  host = address: if lib.hasInfix ":" address then "[${address}]" else address;
  app = "${host cfg.listenAddress}:${toString cfg.port}";

  # The blackbox exporter's multi-target pattern: the target becomes the
  # ?target= parameter and the instance label; the exporter is scraped.
  probe = job: module: target: {
    job_name = job;
    scrape_interval = mon.scrapeInterval;
    metrics_path = "/probe";
    params.module = [ module ];
    static_configs = [ { targets = [ target ]; } ];
    relabel_configs = [
      {
        source_labels = [ "__address__" ];
        target_label = "__param_target";
      }
      {
        source_labels = [ "__param_target" ];
        target_label = "instance";
      }
      {
        target_label = "__address__";
        replacement = "${host blackbox.listenAddress}:${toString blackbox.port}";
      }
    ];
  };

  scrape = job: target: {
    job_name = job;
    scrape_interval = mon.scrapeInterval;
    static_configs = [ { targets = [ target ]; } ];
  };
in
{
  options.services.agentstead.monitoring = {
    enable = mkEnableOption ''
      Prometheus monitoring of Agentstead: the host's services.prometheus
      scrapes the app, Caddy and two blackbox probes (/readyz, and the site
      over HTTPS with its certificate's expiry) and evaluates the alert rules
      of monitoring/agentstead.rules.yml (runbook: docs/monitoring.md)'';

    scrapeInterval = mkOption {
      type = types.strMatching "[0-9]+(ms|s|m|h)";
      default = "15s";
      example = "30s";
      description = "How often Prometheus scrapes the app and Caddy, and runs the probes.";
    };

    siteUrl = mkOption {
      type = types.nullOr (types.strMatching "https://.+");
      default = if cfg.domain != null then "https://${cfg.domain}/healthz" else null;
      defaultText = lib.literalExpression ''if domain != null then "https://''${domain}/healthz" else null'';
      description = ''
        What the HTTPS probe fetches through Caddy: the site answers, and its
        certificate's expiry (AgentsteadSiteDown, AgentsteadCertificateExpiring).
        null: no site probe (a host without a domain serves plain HTTP).
      '';
    };

    caddyAdmin = mkOption {
      type = types.str;
      default = "127.0.0.1:2019";
      description = "Caddy's admin endpoint (the Caddyfile's CADDY_ADMIN), where Prometheus reads Caddy's metrics.";
    };

    grafana.enable = mkEnableOption ''
      Grafana with the Agentstead dashboard (monitoring/grafana/agentstead.json)
      and a datasource for this host's Prometheus, provisioned into
      services.grafana (which keeps its own settings: address, users, ...)'';
  };

  config = mkIf (cfg.enable && mon.enable) {
    services.prometheus = {
      enable = true;
      # The UI and API answer on loopback only unless the host says otherwise.
      listenAddress = mkDefault "127.0.0.1";
      # NixOS evaluates rules every minute by default: alerts would start up to a
      # minute late on top of their `for`.
      globalConfig.evaluation_interval = mkDefault mon.scrapeInterval;
      ruleFiles = [ ../monitoring/agentstead.rules.yml ];
      scrapeConfigs = [
        # /metrics answers loopback clients only: Prometheus runs on this host.
        (scrape "agentstead" app)
        (scrape "caddy" mon.caddyAdmin)
        (probe "agentstead-readyz" "agentstead_readyz" "http://${app}/readyz")
      ]
      ++ optional (mon.siteUrl != null) (probe "agentstead-site" "agentstead_site" mon.siteUrl);

      exporters.blackbox = {
        enable = true;
        listenAddress = "127.0.0.1";
        configFile = ../monitoring/blackbox.yml;
      };
    };

    services.grafana = mkIf mon.grafana.enable {
      enable = mkDefault true;
      provision = {
        enable = true;
        dashboards.settings.providers = [
          {
            name = "agentstead";
            folder = "Agentstead";
            options.path = ../monitoring/grafana;
          }
        ];
        datasources.settings.datasources = [
          {
            name = "Prometheus (Agentstead)";
            uid = "agentstead-prometheus";
            type = "prometheus";
            url = "http://${host config.services.prometheus.listenAddress}:${toString config.services.prometheus.port}";
          }
        ];
      };
    };
  };
}
