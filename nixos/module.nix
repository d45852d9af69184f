# services.agentstead: the whole Agentstead appliance on one NixOS host.
#
# The app's unit comes from the package (systemd/agentstead.service, installed
# with systemd.packages) and Caddy runs the package's own caddy/Caddyfile: the
# same files serve NixOS, scripts/run and the tests. This module only wires
# options into them:
#   - settings become AGENTSTEAD_* environment variables of the unit;
#   - secrets are file paths handed over with LoadCredential= (the app reads
#     $CREDENTIALS_DIRECTORY/<name>), never values, never in the Nix store;
#   - Caddy gets the site, the upstream and the SPA through the Caddyfile's
#     environment placeholders.
# It never redefines ExecStart or the unit's hardening.
#
# Outside the flake, `package` defaults to building this checkout
# (./package.nix with the host's nixpkgs); the flake's nixosModules.default
# sets the same build with its git revision, which /healthz reports.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    literalExpression
    mkEnableOption
    mkIf
    mkOption
    types
    ;

  cfg = config.services.agentstead;

  # Caddy's site address when there is no domain: plain HTTP on loopback,
  # the same address scripts/run uses.
  localAddress = "http://localhost:47294";

  # Secret options and their systemd credential names. The names are the
  # setting names in src/agentstead/settings.py.
  secrets = [
    {
      option = "secretKeyFile";
      credential = "secret_key";
    }
    {
      option = "openaiApiKeyFile";
      credential = "openai_api_key";
    }
    {
      option = "oidcClientSecretFile";
      credential = "oidc_client_secret";
    }
  ];
  givenSecrets = lib.filter (secret: cfg.${secret.option} != null) secrets;

  # A secret is named by its path on the host, as a string. A Nix path
  # (./secret) is refused by the type: using it would copy the secret into the
  # world-readable Nix store. A string naming a store path is refused by an
  # assertion below, with a message saying why.
  secretFile =
    types.addCheck types.str (path: lib.hasPrefix "/" path)
    // {
      description = "absolute path of a file outside the Nix store, as a string (not a Nix path like ./secret)";
    };

  isStorePath = path: lib.hasPrefix "${builtins.storeDir}/" path || builtins.hasContext path;

  # Values of the environment: lists are comma-separated (the app's list
  # settings split on commas), booleans are true/false, floats are written
  # without the trailing zeros of toString.
  toEnvValue =
    value:
    if builtins.isBool value then
      lib.boolToString value
    else if builtins.isList value then
      lib.concatMapStringsSep "," toString value
    else if builtins.isFloat value then
      builtins.toJSON value
    else
      toString value;

  environment = lib.mapAttrs' (
    name: value: lib.nameValuePair "AGENTSTEAD_${lib.toUpper name}" (toEnvValue value)
  ) (lib.filterAttrs (_: value: value != null) cfg.settings);

  # IPv6 addresses need brackets in host:port.
  upstream =
    if lib.hasInfix ":" cfg.listenAddress then
      "[${cfg.listenAddress}]:${toString cfg.port}"
    else
      "${cfg.listenAddress}:${toString cfg.port}";

  secretNames = map (secret: secret.credential) secrets;
in
{
  options.services.agentstead = {
    enable = mkEnableOption "Agentstead, a self-hosted AI agents platform, behind Caddy";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = literalExpression "pkgs.callPackage ./package.nix { } # this checkout; the flake's module sets its own build";
      description = ''
        The Agentstead package. Its systemd units and Caddyfile are used as
        they are; this module only adds to them.
      '';
    };

    frontendPackage = mkOption {
      type = types.package;
      default = cfg.package.frontend;
      defaultText = literalExpression "config.services.agentstead.package.frontend";
      description = "The built single-page app (a directory with index.html) that Caddy serves at /.";
    };

    domain = mkOption {
      type = types.nullOr (types.strMatching "[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?");
      default = null;
      example = "agents.example.org";
      description = ''
        The public host name. Caddy gets a certificate for it (ACME) and
        redirects HTTP to HTTPS. `null` serves plain HTTP on
        ${localAddress} only, for trying Agentstead out on one machine.
      '';
    };

    acmeEmail = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "admin@example.org";
      description = "Contact address for the ACME account (certificate expiry notices). Needs `domain`.";
    };

    listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = "Address the app binds to. Caddy is the only client it needs; keep it on loopback.";
    };

    port = mkOption {
      type = types.port;
      default = 47293;
      description = "TCP port the app binds to.";
    };

    settings = mkOption {
      type = types.submodule {
        freeformType =
          with types;
          attrsOf (oneOf [
            str
            int
            bool
            float
            (listOf str)
          ]);
        options = {
          env = mkOption {
            type = types.enum [
              "development"
              "production"
            ];
            default = if cfg.domain != null then "production" else "development";
            defaultText = literalExpression ''if domain != null then "production" else "development"'';
            description = ''
              `production` refuses unsafe settings (a short secret key, a
              non-https public URL), so it needs `domain`.
            '';
          };
          public_url = mkOption {
            type = types.str;
            default = if cfg.domain != null then "https://${cfg.domain}" else localAddress;
            defaultText = literalExpression ''if domain != null then "https://''${domain}" else "${localAddress}"'';
            description = "The origin people use to reach Agentstead (through Caddy).";
          };
          state_dir = mkOption {
            type = types.str;
            default = "/var/lib/agentstead";
            description = ''
              Directory of the database and its pre-migration snapshots. The
              unit's StateDirectory= is /var/lib/agentstead; another directory
              must be made writable for the `agentstead` user by you.
            '';
          };
          log_format = mkOption {
            type = types.enum [
              "json"
              "text"
            ];
            default = "json";
            description = "json: one object per line in the journal.";
          };
        };
      };
      default = { };
      example = literalExpression ''
        {
          max_body_size = "2MiB";
          log_level = "debug";
          cors_origins = [ "https://other.example.org" ];
        }
      '';
      description = ''
        Agentstead settings, each passed to the unit as the environment
        variable `AGENTSTEAD_<NAME>` (`max_body_size` -> `AGENTSTEAD_MAX_BODY_SIZE`);
        lists are joined with commas, booleans are `true`/`false`. See the
        configuration reference in README.md or `agentstead config show`.
        The app refuses names it does not know, naming them.
        `host` and `port` come from `listenAddress` and `port`. Secrets
        never go here (they would be in the Nix store): use the `*File`
        options.
      '';
    };

    secretKeyFile = mkOption {
      type = types.nullOr secretFile;
      default = null;
      example = "/var/lib/secrets/agentstead/secret_key";
      description = ''
        File holding the key that signs sessions and tokens (at least 32
        bytes), e.g. made with `openssl rand -base64 48`. Required. Read by
        systemd as root (LoadCredential=), so it may be mode 0400 root.
      '';
    };

    openaiApiKeyFile = mkOption {
      type = types.nullOr secretFile;
      default = null;
      example = "/run/secrets/openai_api_key";
      description = "File holding the API key of the OpenAI-compatible LLM endpoint.";
    };

    oidcClientSecretFile = mkOption {
      type = types.nullOr secretFile;
      default = null;
      example = "/run/secrets/oidc_client_secret";
      description = "File holding the OIDC client secret for sign-in.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open TCP ports 80 and 443 (and UDP 443 for HTTP/3) for Caddy. Needs `domain`.";
    };

    # services.agentstead.backup: continuous Litestream replication of the
    # database (S3-compatible bucket or a local replica) and the restore
    # drill timer. Another issue; its options go here, its units come from
    # the package like agentstead.service and run as the agentstead user.
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.secretKeyFile != null;
        message = ''
          services.agentstead.secretKeyFile must name a file holding at least 32 random
          bytes, e.g.: install -d -m 700 /var/lib/secrets/agentstead &&
          openssl rand -base64 48 > /var/lib/secrets/agentstead/secret_key
        '';
      }
      {
        assertion = cfg.acmeEmail != null -> cfg.domain != null;
        message = "services.agentstead.acmeEmail needs services.agentstead.domain: without a domain there is no certificate.";
      }
      {
        assertion = cfg.openFirewall -> cfg.domain != null;
        message = "services.agentstead.openFirewall needs services.agentstead.domain: without a domain Caddy serves ${localAddress} only.";
      }
      {
        assertion = cfg.settings.env == "production" -> lib.hasPrefix "https://" cfg.settings.public_url;
        message = "services.agentstead.settings.public_url must be https in production (set services.agentstead.domain).";
      }
      {
        assertion = !lib.any (name: cfg.settings ? ${name}) secretNames;
        message = "services.agentstead.settings must not hold secrets (${lib.concatStringsSep ", " secretNames}): they would be in the Nix store; use the *File options.";
      }
    ]
    ++ map (secret: {
      assertion = !isStorePath cfg.${secret.option};
      message = "services.agentstead.${secret.option} is in the Nix store (${cfg.${secret.option}}), which every user can read; give the path of a file outside it as a string, e.g. \"/run/secrets/${secret.credential}\".";
    }) givenSecrets;

    services.agentstead.settings = {
      host = cfg.listenAddress;
      inherit (cfg) port;
    };

    users.users.agentstead = {
      isSystemUser = true;
      group = "agentstead";
      home = cfg.settings.state_dir;
      description = "Agentstead";
    };
    users.groups.agentstead = { };

    # agentstead.service comes from the package; this extends it.
    systemd.packages = [ cfg.package ];
    systemd.services.agentstead = {
      wantedBy = [ "multi-user.target" ];
      inherit environment;
      serviceConfig.LoadCredential = map (
        secret: "${secret.credential}:${cfg.${secret.option}}"
      ) givenSecrets;
    };

    services.caddy = {
      enable = true;
      # Our Caddyfile, whole; its site comes from the environment below. This
      # makes the host's Caddy Agentstead's: services.caddy.virtualHosts and
      # extraConfig are not used with a configFile.
      configFile = "${cfg.package}/share/agentstead/Caddyfile";
    };
    systemd.services.caddy.environment = {
      CADDY_SITE_ADDRESS = if cfg.domain != null then cfg.domain else localAddress;
      CADDY_ACME_EMAIL = if cfg.acmeEmail != null then cfg.acmeEmail else "";
      CADDY_FRONTEND_ROOT = "${cfg.frontendPackage}";
      CADDY_UPSTREAM = upstream;
    }
    // lib.optionalAttrs (cfg.domain == null) {
      # Local only: not reachable from other machines.
      CADDY_BIND = "127.0.0.1 [::1]";
    }
    // lib.optionalAttrs (cfg.settings ? max_body_size) {
      # Caddy must not refuse bodies the app accepts.
      CADDY_MAX_BODY_SIZE = toString cfg.settings.max_body_size;
    };

    networking.firewall = mkIf cfg.openFirewall {
      allowedTCPPorts = [
        80
        443
      ];
      # HTTP/3 (QUIC), which Caddy serves by default.
      allowedUDPPorts = [ 443 ];
    };
  };
}
