"""A real S3-compatible server for tests: `rclone serve s3` over a temp directory.

Buckets are top-level directories of the root; objects are files below them,
so a test can read the replica with plain file operations. Change objects
through the S3 API (delete()): rclone caches directory listings for 5 minutes,
so a file removed behind its back would still be listed. (--dir-cache-time 0
avoids that but makes every request re-read the directories: Litestream's lag
went from 1 s to 15 s and restores 30x slower.) The server signs requests with
an access key pair (SigV4), like any S3 provider.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import time

from .procs import VENV_BIN, free_port

# rclone refuses very short access keys (403 InvalidAccessKeyId); these are S3-shaped.
ACCESS_KEY_ID = "AKIAAGENTSTEADTEST01"
SECRET_ACCESS_KEY = "agentstead/test/secret/key/0123456789abcd"


class S3Server:
    """rclone serve s3 on 127.0.0.1; stop() and start() again keep the port and the data."""

    def __init__(self, root: pathlib.Path, bucket: str = "backups", port: int | None = None,
                 dir_cache_time: str | None = None):
        self.root = pathlib.Path(root)
        self.dir_cache_time = dir_cache_time
        self.bucket = bucket
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.root.parent / f"rclone-{self.port}.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def bucket_dir(self) -> pathlib.Path:
        return self.root / self.bucket

    def start(self, timeout: float = 20.0) -> "S3Server":
        self.bucket_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "rclone"), "serve", "s3", "--config", "",
             *(["--dir-cache-time", self.dir_cache_time] if self.dir_cache_time else []),
             "--auth-key", f"{ACCESS_KEY_ID},{SECRET_ACCESS_KEY}",
             "--addr", f"127.0.0.1:{self.port}", str(self.root)],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rclone exited with {self.proc.returncode}: {self.logs()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"rclone serve s3 did not listen on {self.port} within {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client_env(self) -> dict[str, str]:
        """Environment for rclone as an S3 *client* of this server (remote name `s3test:`)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
        env.update(RCLONE_CONFIG_S3TEST_TYPE="s3", RCLONE_CONFIG_S3TEST_PROVIDER="Rclone",
                   RCLONE_CONFIG_S3TEST_ENDPOINT=self.endpoint, RCLONE_CONFIG_S3TEST_REGION="us-east-1",
                   RCLONE_CONFIG_S3TEST_ACCESS_KEY_ID=ACCESS_KEY_ID,
                   RCLONE_CONFIG_S3TEST_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY)
        return env

    def delete(self, key: str) -> None:
        """Delete one object through the S3 API (DeleteObject), as a person or a bug would."""
        subprocess.run([str(VENV_BIN / "rclone"), "deletefile", "--config", "", f"s3test:{self.bucket}/{key}"],
                       env=self.client_env(), check=True, capture_output=True, timeout=30)

    def write_credentials(self, directory: pathlib.Path) -> dict[str, str]:
        """Key files, and the AGENTSTEAD_* variables that point at them (secrets never in the env)."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "access_key_id").write_text(ACCESS_KEY_ID + "\n")
        (directory / "secret_access_key").write_text(SECRET_ACCESS_KEY + "\n")
        return {"AGENTSTEAD_BACKUP_S3_ACCESS_KEY_ID_FILE": str(directory / "access_key_id"),
                "AGENTSTEAD_BACKUP_S3_SECRET_ACCESS_KEY_FILE": str(directory / "secret_access_key")}

    def settings_env(self, path: str, credentials_dir: pathlib.Path) -> dict[str, str]:
        """AGENTSTEAD_BACKUP_* for a replica at s3://bucket/path on this server."""
        return {"AGENTSTEAD_BACKUP_ENABLED": "true", "AGENTSTEAD_BACKUP_S3_BUCKET": self.bucket,
                "AGENTSTEAD_BACKUP_S3_ENDPOINT": self.endpoint, "AGENTSTEAD_BACKUP_S3_PATH": path,
                "AGENTSTEAD_BACKUP_S3_REGION": "us-east-1", **self.write_credentials(credentials_dir)}

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> "S3Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
