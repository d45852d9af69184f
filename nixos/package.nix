# The Agentstead application as a Nix package, with what NixOS needs from
# the repository: the systemd units (systemd/) and the Caddy site (caddy/).
#
#   pkgs.callPackage ./nixos/package.nix { }                  # from a checkout
#   pkgs.callPackage ./nixos/package.nix { commit = …; buildTime = …; }  # the flake
#
# What ships is what CI tested: the Python closure is built from the exact
# wheels of the runtime lock (nixos/wheels.nix, nixos/python-lock.json written
# by scripts/lock-nix) on python311, the minor version CI runs, instead of the
# host's python3Packages (older releases, another Python). Evaluation stops,
# naming the package, when the lock holds a version below a floor of
# pyproject.toml or misses a dependency.
#
# passthru: `frontend` (the SPA Caddy serves, nixos/frontend.nix), `litestream`
# (0.5.x, the version the backup tests ran), `python`, `pythonLock`.
{
  lib,
  stdenv,
  callPackage,
  python311,
  writeText,
  # What /healthz reports as the build; the flake passes its git revision
  # and last-modified date, a plain checkout has neither.
  commit ? "unknown",
  buildTime ? "unknown",
  # The lock to build from; tests pass another one to see the checks fail.
  pythonLock ? lib.importJSON ./python-lock.json,
}:

let
  pyproject = lib.importTOML ../pyproject.toml;
  version = pyproject.project.version;
  python = python311;

  locked = callPackage ./wheels.nix { inherit python pythonLock; };

  # "name[extra]>=1.0,<2; marker" -> the locked package, after checking each
  # comparison against the locked version. Names are normalised as PyPI does
  # (lower case, runs of "_", "." and "-" -> "-"). Markers are ignored: every
  # dependency applies on Linux.
  normalise = name: lib.toLower (lib.concatStringsSep "-" (lib.filter (part: builtins.isString part && part != "") (builtins.split "[-_.]+" name)));
  comparisons = {
    ">=" = lib.versionAtLeast;
    ">" = a: b: builtins.compareVersions a b > 0;
    "<" = lib.versionOlder;
    "<=" = a: b: builtins.compareVersions a b <= 0;
    "==" = a: b: a == b;
    "!=" = a: b: a != b;
  };
  lockedDependency =
    spec:
    let
      parsed = builtins.match " *([A-Za-z0-9._-]+) *(\\[[^]]*])? *([^;]*)(;.*)?" spec;
      name = normalise (builtins.elemAt parsed 0);
      constraints = lib.filter (c: c != "") (map lib.trim (lib.splitString "," (builtins.elemAt parsed 2)));
      entry =
        pythonLock.packages.${name}
          or (throw "agentstead: pyproject.toml depends on ${name}, which nixos/python-lock.json does not hold; add it to requirements.txt (uv pip compile, see README) and run scripts/lock-nix");
      check =
        constraint:
        let
          op = builtins.match "(>=|<=|==|!=|>|<) *([0-9][0-9A-Za-z.+!-]*)" constraint;
          holds = comparisons.${builtins.elemAt op 0} entry.version (builtins.elemAt op 1);
        in
        if op == null then
          throw "agentstead: cannot check `${constraint}` of ${name} in pyproject.toml (only >=, >, <, <=, ==, != are)"
        else
          lib.assertMsg holds "agentstead: nixos/python-lock.json has ${name} ${entry.version}, which does not meet `${constraint}` in pyproject.toml; update requirements.txt (uv pip compile --upgrade-package ${name}) and run scripts/lock-nix";
    in
    assert lib.assertMsg (parsed != null) "agentstead: cannot read the dependency '${spec}' in pyproject.toml";
    assert lib.all check constraints;
    name;

  checkedDependencies = map lockedDependency pyproject.project.dependencies;

  frontend = callPackage ./frontend.nix {
    inherit python version;
    inherit (locked) brotli;
  };

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
in
assert lib.assertMsg (python.pythonVersion == pythonLock.python)
  "agentstead: nixos/python-lock.json holds wheels for Python ${pythonLock.python} (what CI runs), not ${python.pythonVersion}";
# Forces every check above (each entry is a name the lock holds).
assert lib.all (name: pythonLock.packages ? ${name}) checkedDependencies;
python.pkgs.buildPythonApplication {
  pname = "agentstead";
  inherit version src;
  pyproject = true;

  # setuptools builds the app's own wheel only; nothing of it is installed.
  build-system = [ python.pkgs.setuptools ];
  # The whole lock: the declared dependencies and everything they need, each at
  # the version CI ran.
  dependencies = lib.attrValues locked.packages;

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

    # The Caddy site the NixOS module imports into the host's Caddy.
    install -Dm644 -t "$out/share/agentstead/caddy" caddy/*

    # The build's identity, read by agentstead.buildinfo for /healthz.
    cp ${writeText "agentstead-buildinfo.json" buildInfo} \
      "$out/${python.sitePackages}/agentstead/_buildinfo.json"
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

  passthru = {
    inherit frontend python pythonLock;
    inherit (locked) litestream;
  };

  meta = {
    description = pyproject.project.description;
    license = lib.licenses.agpl3Plus;
    mainProgram = "agentstead";
    # The wheels CI installed are x86_64 Linux ones.
    platforms = [ pythonLock.system ];
  };
}
