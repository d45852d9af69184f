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
    # The first administrator, created at the first start; they sign in with
    # Google below or a link from `agentstead admin login-link --email ...`.
    initialAdminEmail = "admin@example.org"; # CHANGE

    # Secrets are paths, as strings: the files stay on the host, outside the
    # Nix store. Create the key once:
    #   install -d -m 700 /var/lib/secrets/agentstead
    #   openssl rand -base64 48 > /var/lib/secrets/agentstead/secret_key
    secretKeyFile = "/var/lib/secrets/agentstead/secret_key";
    # The others are written by sops-nix or agenix, for example (docs/operations.md,
    # "Deploying from zero"). Each is named after its provider in `settings`
    # below. (Secrets kept in one KEY=value file: `environmentFile`.)
    oidcClientSecretFiles.google = "/run/secrets/agentstead-google-oidc";
    llmApiKeyFiles.openai = "/run/secrets/agentstead-openai-api-key";

    settings = {
      max_body_size = "2MiB";
      log_level = "info";

      # Sign-in. The redirect URI to register with Google is
      # https://agents.example.org/auth/callback/google.
      oidc_providers = [
        {
          name = "google";
          issuer = "https://accounts.google.com";
          client_id = "123456789012-abcdefghijklmnop.apps.googleusercontent.com"; # CHANGE
          display_name = "Google";
        }
      ];
      # Who may create an account by signing in (the rest need an admin:
      # `agentstead admin create-user`).
      signup_policy = "domains";
      signup_domains = [ "example.org" ]; # CHANGE

      # The models agents may use; any OpenAI-compatible endpoint works.
      llm_providers = [
        {
          name = "openai";
          base_url = "https://api.openai.com/v1";
          models = [
            "gpt-4o-mini"
            "gpt-4o"
          ];
        }
      ];
    };

    # Continuous backups of the database to an S3-compatible bucket (here
    # Backblaze B2), a restore on a fresh machine before the app starts, and
    # a daily restore drill. The credentials file holds two lines:
    #   AWS_ACCESS_KEY_ID=...
    #   AWS_SECRET_ACCESS_KEY=...
    backup = {
      enable = true;
      s3 = {
        endpoint = "https://s3.eu-central-003.backblazeb2.com"; # CHANGE
        bucket = "agentstead-backups"; # CHANGE
        region = "eu-central-003"; # CHANGE
      };
      credentialsFile = "/run/secrets/agentstead-s3";
    };
  };

  # Other sites keep their own virtual hosts on the same Caddy.
  services.caddy.virtualHosts."www.example.org".extraConfig = ''
    root * /srv/www
    file_server
  ''; # CHANGE or remove

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
