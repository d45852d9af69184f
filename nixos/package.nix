# The Agentstead application as a Nix package, with what NixOS needs from
# the repository: the systemd units (systemd/) and the Caddyfile (caddy/).
#
#   pkgs.callPackage ./nixos/package.nix { }                  # from a checkout
#   pkgs.callPackage ./nixos/package.nix { commit = …; buildTime = …; }  # the flake
#
# `passthru.frontend` is the static SPA Caddy serves (see `frontend` below).
{
  lib,
  python3Packages,
  runCommandLocal,
  writeText,
  # What /healthz reports as the build; the flake passes its git revision
  # and last-modified date, a plain checkout has neither.
  commit ? "unknown",
  buildTime ? "unknown",
}:

let
  pyproject = lib.importTOML ../pyproject.toml;
  version = pyproject.project.version;

  # Runtime dependencies come from pyproject.toml, so a dependency added there
  # is packaged without editing this file: "name[extra]>=1.0; marker" ->
  # python3Packages.name (+ its optional-dependencies.extra). Names are
  # normalised like PyPI does (lower case, "_" and "." -> "-"), which is how
  # nixpkgs names Python packages. Environment markers are ignored: every
  # dependency listed applies on Linux.
  pythonDependency =
    spec:
    let
      parsed = builtins.match " *([A-Za-z0-9._-]+) *([[]([A-Za-z0-9,._ -]*)[]])?.*" spec;
      name = lib.toLower (builtins.replaceStrings [ "_" "." ] [ "-" "-" ] (builtins.elemAt parsed 0));
      extras = lib.optionals (builtins.elemAt parsed 2 != null) (
        map lib.trim (lib.splitString "," (builtins.elemAt parsed 2))
      );
      package =
        python3Packages.${name}
          or (throw "agentstead: pyproject.toml depends on '${name}', which python3Packages does not have");
    in
    assert lib.assertMsg (parsed != null) "agentstead: cannot read the dependency '${spec}' in pyproject.toml";
    [ package ]
    ++ lib.concatMap (
      extra:
      package.optional-dependencies.${extra}
        or (throw "agentstead: python3Packages.${name} has no optional dependencies '${extra}'")
    ) extras;

  # Only what the build reads, so editing tests or docs does not rebuild it
  # (and a developer's .egg-info or _buildinfo.json never leaks in).
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.difference (lib.fileset.unions [
      ../pyproject.toml
      ../README.md
      ../src
      ../systemd
      ../caddy
    ]) (lib.fileset.unions [
      (lib.fileset.maybeMissing ../src/agentstead.egg-info)
      (lib.fileset.maybeMissing ../src/agentstead/_buildinfo.json)
      (lib.fileset.fileFilter (file: file.hasExt "pyc") ../src)
    ]);
  };

  buildInfo = builtins.toJSON {
    inherit commit;
    build_time = buildTime;
  };

  # The SPA. Until frontend/ has its own Nix build this copies frontend/dist
  # when it is present in the source, else it is a one-page placeholder.
  # frontend/dist is git-ignored, so a flake build (which only sees tracked
  # files) always gets the placeholder; a plain-path build of a checkout
  # where the frontend was built picks the real one up.
  frontend =
    let
      dist = ../frontend/dist;
      placeholder = writeText "index.html" ''
        <!doctype html>
        <html lang="en">
        <head><meta charset="utf-8"><title>Agentstead</title></head>
        <body><h1>Agentstead</h1><p>The web interface is not part of this build yet.
        The API is at <a href="/api/openapi.json">/api/openapi.json</a>.</p></body>
        </html>
      '';
    in
    runCommandLocal "agentstead-frontend-${version}" { } (
      if builtins.pathExists dist then
        ''
          cp -r ${lib.cleanSource dist} $out
          chmod -R u+w $out
        ''
      else
        ''
          mkdir -p $out
          cp ${placeholder} $out/index.html
        ''
    );
in
python3Packages.buildPythonApplication {
  pname = "agentstead";
  inherit version src;
  pyproject = true;

  build-system = [ python3Packages.setuptools ];
  dependencies = lib.concatMap pythonDependency pyproject.project.dependencies;

  postInstall = ''
    # The units run this package: @agentstead@ becomes $out. The main unit
    # must have the placeholder (--replace-fail); others (timers, helpers)
    # may not need it.
    install -d "$out/lib/systemd/system"
    for unit in systemd/*.service systemd/*.timer; do
      [ -e "$unit" ] || continue
      name="''${unit##*/}"
      mode=--replace-quiet
      [ "$name" = agentstead.service ] && mode=--replace-fail
      substitute "$unit" "$out/lib/systemd/system/$name" "$mode" @agentstead@ "$out"
    done
    test -f "$out/lib/systemd/system/agentstead.service"

    # The Caddyfile the NixOS module points Caddy at.
    install -Dm644 caddy/Caddyfile "$out/share/agentstead/Caddyfile"

    # The build's identity, read by agentstead.buildinfo for /healthz.
    cp ${writeText "agentstead-buildinfo.json" buildInfo} \
      "$out/${python3Packages.python.sitePackages}/agentstead/_buildinfo.json"
  '';

  # The test suite starts real Caddy, Litestream and rclone binaries and a
  # browser; CI runs it (scripts/test), the Nix build only checks the
  # package imports. The NixOS VM test (nix flake check) runs the result.
  doCheck = false;
  pythonImportsCheck = [
    "agentstead"
    "agentstead.app"
    "agentstead.cli"
  ];

  passthru = { inherit frontend; };

  meta = {
    description = pyproject.project.description;
    license = lib.licenses.agpl3Plus;
    mainProgram = "agentstead";
    platforms = lib.platforms.linux;
  };
}
