{
  description = "Agentstead: a self-hosted AI agents platform for one VPS";

  # Pinned in flake.lock (nixos-25.11); `nix flake update` moves it.
  inputs.nixpkgs.url = "github:nixos/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};

      # What /healthz reports: the commit (or "<rev>-dirty" / "dirty" for a
      # tree with uncommitted changes) and the commit's date, as ISO 8601.
      date = self.lastModifiedDate; # "20260421012628"
      part = start: len: builtins.substring start len date;
      buildInfo = {
        commit = self.rev or self.dirtyRev or "dirty";
        buildTime = "${part 0 4}-${part 4 2}-${part 6 2}T${part 8 2}:${part 10 2}:${part 12 2}Z";
      };

      agentstead = pkgs.callPackage ./nixos/package.nix buildInfo;
    in
    {
      packages.${system} = {
        inherit agentstead;
        # The SPA (nixos/frontend.nix) and Litestream 0.5 (from the lock), as the module uses them.
        inherit (agentstead) frontend litestream;
        default = agentstead;
        image = pkgs.callPackage ./nixos/image.nix { inherit agentstead; }; # docker load < result
      };

      # The module, with this flake's build as the default package, built with
      # the host's nixpkgs: its python311 and fetchPypi, with the exact wheels
      # of nixos/python-lock.json (x86_64-linux). Set services.agentstead.package
      # to pin another build.
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nixos/module.nix ];
          services.agentstead.package = lib.mkDefault (pkgs.callPackage ./nixos/package.nix buildInfo);
        };

      # The example host, so that `nix flake check` evaluates it against the
      # real NixOS options.
      nixosConfigurations.example-vps = lib.nixosSystem {
        modules = [
          { nixpkgs.hostPlatform = system; }
          self.nixosModules.default
          ./nixos/examples/vps.nix
        ];
      };

      checks.${system} = {
        # The package (its import check runs the lock's wheels), the SPA and
        # Litestream (its install check compares the version), then the VMs.
        inherit agentstead;
        inherit (agentstead) frontend litestream;
        appliance = pkgs.testers.runNixOSTest (
          import ./nixos/tests/appliance.nix { agentsteadModule = self.nixosModules.default; }
        );
        monitoring = pkgs.testers.runNixOSTest (
          import ./nixos/tests/monitoring.nix { agentsteadModule = self.nixosModules.default; }
        );
      };

      devShells.${system}.default = pkgs.mkShell {
        # scripts/setup makes .venv from requirements-dev.txt with this Python
        # (the minor version CI runs; the venv brings Caddy, Litestream and
        # rclone as the tests' real parts); Node runs the SPA's own tests.
        packages = [
          pkgs.python311
          pkgs.nodejs
        ];
      };

      apps.${system}.default = {
        type = "app";
        program = lib.getExe agentstead;
        meta.description = "Run the agentstead command (serve, migrate, config, version)";
      };
    };
}
