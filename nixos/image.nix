# The container image, for hosts that are not NixOS: `nix build .#image`, then
# `docker load < result` (or `podman load`). nixos/examples/compose.yaml runs it
# with Litestream replicating to S3.
#
# - The app, Litestream and (withCaddy) Caddy with the package's Caddyfile and
#   the SPA (/etc/caddy/Caddyfile); Python and CA certificates come with them. No shell, no package
#   manager.
# - Runs as uid/gid 10001 ("agentstead"), never root. The state (the SQLite
#   database, Litestream's files) is the volume /data, owned by that user.
# - The default command migrates the database, then serves on 0.0.0.0:47293
#   (inside the container's network namespace; publish the port or put Caddy
#   in front). Any other arguments run that agentstead command, e.g.
#   `backup replicate` for the Litestream container, `backup restore
#   --if-missing`, `backup drill`, `admin create-user --email ...`.
# - A health check asks /readyz (200: the database answers, the schema is the
#   code's, the disk has room).
#
# Checked by tests/unit/test_image_nix.py: the definition evaluates with
# nixpkgs' lib and a stand-in for dockerTools that records what it is given
# (a real build needs a Nix store: `nix build .#image`).
{
  lib,
  dockerTools,
  runCommand,
  writeShellScript,
  writeTextDir,
  cacert,
  litestream,
  caddy,
  python3Packages,
  agentstead,
  withCaddy ? true,
}:

let
  uid = 10001;
  port = 47293;
  python = python3Packages.python.interpreter;

  # migrate then serve; anything else is an agentstead command.
  entrypoint = writeShellScript "agentstead-entrypoint" ''
    set -eu
    if [ "$#" -eq 0 ] || [ "$1" = serve ]; then
      ${agentstead}/bin/agentstead migrate
      exec ${agentstead}/bin/agentstead serve
    fi
    exec ${agentstead}/bin/agentstead "$@"
  '';

  # /readyz answers 503 (urlopen raises) when a check fails.
  healthcheck = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${toString port}/readyz', timeout=5)";

  # The user the image runs as, for tools that look names up.
  users = [
    (writeTextDir "etc/passwd" ''
      root:x:0:0:root:/root:/noshell
      agentstead:x:${toString uid}:${toString uid}:Agentstead:/data:/noshell
    '')
    (writeTextDir "etc/group" ''
      root:x:0:
      agentstead:x:${toString uid}:
    '')
  ];

  # Caddy's configuration at a path a compose file can name: the package's whole caddy/
  # directory, since the Caddyfile imports site.caddy and its snippets relative to itself.
  caddyfile = runCommand "agentstead-caddyfile" { } ''
    mkdir -p $out/etc
    ln -s ${agentstead}/share/agentstead/caddy $out/etc/caddy
  '';
in
dockerTools.buildLayeredImage {
  name = "agentstead";
  tag = agentstead.version;

  contents = [
    agentstead
    litestream
    cacert
  ]
  ++ users
  ++ lib.optionals withCaddy [
    caddy
    caddyfile
  ];

  # The volume's mount point and a writable /tmp, owned as the app needs them.
  fakeRootCommands = ''
    mkdir -p ./data ./tmp
    chown ${toString uid}:${toString uid} ./data
    chmod 0750 ./data
    chmod 1777 ./tmp
  '';

  config = {
    User = "${toString uid}:${toString uid}";
    WorkingDir = "/data";
    Entrypoint = [ "${entrypoint}" ];
    Cmd = [ "serve" ];
    Volumes."/data" = { };
    ExposedPorts = {
      "${toString port}/tcp" = { };
    }
    // lib.optionalAttrs withCaddy {
      "80/tcp" = { };
      "443/tcp" = { };
    };
    Env = [
      "AGENTSTEAD_STATE_DIR=/data"
      "AGENTSTEAD_HOST=0.0.0.0"
      "AGENTSTEAD_PORT=${toString port}"
      "AGENTSTEAD_BACKUP_LITESTREAM=${litestream}/bin/litestream"
      "SSL_CERT_FILE=${cacert}/etc/ssl/certs/ca-bundle.crt"
      "PATH=${
        lib.makeBinPath ([ agentstead litestream ] ++ lib.optional withCaddy caddy)
      }"
    ]
    ++ lib.optionals withCaddy [
      # For `caddy run --config /etc/caddy/Caddyfile` (the compose example's caddy
      # service): the SPA it serves, and its certificates under the volume.
      "CADDY_FRONTEND_ROOT=${agentstead.frontend}"
      # The app draws each page's first view into that SPA's index.html.
      "AGENTSTEAD_FRONTEND_DIR=${agentstead.frontend}"
      "XDG_DATA_HOME=/data/caddy"
      "XDG_CONFIG_HOME=/data/caddy"
    ];
    # Docker's health check (nanoseconds); podman reads it with --format docker.
    Healthcheck = {
      Test = [
        "CMD"
        python
        "-c"
        healthcheck
      ];
      Interval = 30 * 1000000000;
      Timeout = 10 * 1000000000;
      StartPeriod = 60 * 1000000000;
      Retries = 3;
    };
    Labels = {
      "org.opencontainers.image.title" = "Agentstead";
      "org.opencontainers.image.version" = agentstead.version;
      "org.opencontainers.image.source" = "https://github.com/agentstead/agentstead";
      "org.opencontainers.image.licenses" = "AGPL-3.0-or-later";
    };
  };
}
