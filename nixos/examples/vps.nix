# A whole VPS running Agentstead. Use it as /etc/nixos/configuration.nix (it
# imports the module from this checkout), or in a flake next to
# agentstead.nixosModules.default (this flake's nixosConfigurations.example-vps).
# Lines marked CHANGE are yours to adapt.
{ lib, ... }:

{
  imports = [
    ../module.nix
    # ./hardware-configuration.nix  # CHANGE: the one nixos-generate-config wrote
  ];

  services.agentstead = {
    enable = true;
    domain = "agents.example.org"; # CHANGE: a DNS name whose A/AAAA records point here
    acmeEmail = "admin@example.org"; # CHANGE: certificate expiry notices go here
    openFirewall = true; # 80 and 443 for Caddy (HTTP-01 challenges, redirects, HTTPS)

    # Secrets are paths, as strings: the files stay on the host, outside the
    # Nix store. Create the key once:
    #   install -d -m 700 /var/lib/secrets/agentstead
    #   openssl rand -base64 48 > /var/lib/secrets/agentstead/secret_key
    secretKeyFile = "/var/lib/secrets/agentstead/secret_key";
    # Written by sops-nix or agenix, for example:
    openaiApiKeyFile = "/run/secrets/openai_api_key";

    settings = {
      max_body_size = "2MiB";
      log_level = "info";
    };
  };

  # --- The machine. Stubs for a typical KVM VPS: replace them with your
  # --- hardware-configuration.nix and your provider's disk layout.
  boot.loader.grub.enable = true;
  boot.loader.grub.device = "/dev/vda"; # CHANGE: the boot disk
  boot.initrd.availableKernelModules = [
    "virtio_pci"
    "virtio_scsi"
    "virtio_blk"
    "ahci"
    "sd_mod"
  ];
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos"; # CHANGE
    fsType = "ext4";
  };
  swapDevices = [ ];

  networking.hostName = "agents"; # CHANGE
  networking.useDHCP = lib.mkDefault true;
  networking.firewall.enable = true;
  time.timeZone = "UTC";

  # Administration over SSH with keys only.
  services.openssh = {
    enable = true;
    settings.PasswordAuthentication = false;
    settings.PermitRootLogin = "prohibit-password";
  };
  users.users.root.openssh.authorizedKeys.keys = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExample you@laptop" # CHANGE
  ];

  system.stateVersion = "25.11"; # the release first installed; do not change later
}
