# services.agentstead.tracing: OpenTelemetry traces of requests, runs, model and
# tool calls, sent over OTLP/HTTP (docs/monitoring.md, Tracing). Off unless an
# endpoint is set. The options become the app's tracing_* settings; the headers
# (a collector's credentials) are a file handed over as the credential
# `tracing_headers` (module.nix: appSecrets), never a value in the store.
# Imported by module.nix.
{
  config,
  lib,
  ...
}:

let
  inherit (lib) mkIf mkOption types;

  cfg = config.services.agentstead;
  tracing = cfg.tracing;
in
{
  options.services.agentstead.tracing = {
    endpoint = mkOption {
      type = types.nullOr (types.strMatching "https?://[^/?#]+(/[^?#]*)?");
      default = null;
      example = "http://127.0.0.1:4318/v1/traces";
      description = ''
        OTLP/HTTP traces URL, path included (AGENTSTEAD_TRACING_ENDPOINT): a
        local OpenTelemetry Collector, Jaeger or Tempo on port 4318, or
        Langfuse's `/api/public/otel/v1/traces`. null: tracing is off and
        nothing is sent.
      '';
    };

    headersFile = mkOption {
      type = types.nullOr (types.addCheck types.str (lib.hasPrefix "/"));
      default = null;
      example = "/run/secrets/agentstead-tracing-headers";
      description = ''
        A file outside the Nix store holding the headers sent with every
        export, as OTEL_EXPORTER_OTLP_HEADERS writes them
        (`Authorization=Basic%20...`): the collector's credentials. Handed to
        the app as the systemd credential `tracing_headers`.
      '';
    };

    serviceName = mkOption {
      type = types.str;
      default = "agentstead";
      description = "service.name of the spans: tells this host apart in the tracing backend.";
    };

    sampleRatio = mkOption {
      type = types.numbers.between 0 1;
      default = 1.0;
      example = 0.1;
      description = "Share of traces recorded (a caller's sampled traceparent is recorded whatever this says).";
    };
  };

  config = mkIf (cfg.enable && tracing.endpoint != null) {
    services.agentstead.settings = {
      tracing_endpoint = tracing.endpoint;
      tracing_service_name = tracing.serviceName;
      tracing_sample_ratio = tracing.sampleRatio;
    };
  };
}
