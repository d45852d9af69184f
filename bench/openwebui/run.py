#!/usr/bin/env python3
"""Open WebUI beside Agentstead, for bench/runs/concurrent_chats.py --openwebui (issue 22).

Its own venv, bench/.venv-openwebui (gitignored), made from bench/openwebui/requirements.txt
(hash-locked, open-webui 0.12.4 and everything it needs except torch): torch first, with
pip, `pip install torch==2.13.0` — pip takes the CPU build that lies on this machine's disk,
where uv or a bare `torch` would download a CUDA build of several GB — then the lock with
`--require-hashes --no-deps`. Built once; a stamp holds the lock's hash.

Open WebUI runs on loopback (`open-webui serve`, its own uvicorn, one worker) with every
outbound feature off: OFFLINE_MODE (no Hugging Face, no version check), HF_HUB_OFFLINE,
no local embedding model (RAG_EMBEDDING_MODEL empty, USE_SLIM_DOCKER: the RAG model is not
loaded), no Ollama, no title/tags/follow-up generation (each a second model call per chat),
no telemetry (SCARF_NO_ANALYTICS, DO_NOT_TRACK, ANONYMIZED_TELEMETRY), and one OpenAI
connection: the same stub model as Agentstead. The first user signed up is its admin;
one user per chat after that (a socket.io room is a user's: one browser per user).

Two sides share the server: "chat" (its web app's path, socket.io events) and "proxy" (its
OpenAI-compatible /openai/chat/completions). The chats are driven by bench/openwebui/drive.py
in the venv (python-socketio is Open WebUI's own dependency).

Alone: .venv/bin/python bench/openwebui/run.py --setup   # only builds the venv (≈ 10 min)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = ROOT / "bench" / ".venv-openwebui"
LOCK = HERE / "requirements.txt"
TORCH = "torch==2.13.0"
sys.path.insert(0, str(ROOT / "bench" / "ws"))

import benchkit as kit  # noqa: E402


def ensure_venv() -> Path:
    """bench/.venv-openwebui from the lock (torch with pip first); its python."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".lock-sha256"
    want = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == want:
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + [TORCH], check=True)
    subprocess.run(pip + ["--require-hashes", "--no-deps", "-r", str(LOCK)], check=True)
    stamp.write_text(want)
    return python


def _call(base: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None,
                                 method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


class OpenWebUI:
    """One Open WebUI server; `chat_side()` and `proxy_side()` drive it two ways."""

    def __init__(self, workdir: Path, llm_url: str, api_key: str, model: str, users: int = 50):
        self.workdir, self.model, self.users = workdir, model, users
        workdir.mkdir(parents=True, exist_ok=True)
        self.python = ensure_venv()
        self.port = kit.free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTSTEAD_", "OPENAI_"))}
        env.update(DATA_DIR=str(workdir / "data"), WEBUI_SECRET_KEY=secrets.token_hex(32), PORT=str(self.port),
                   OFFLINE_MODE="true", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", USE_SLIM_DOCKER="true",
                   RAG_EMBEDDING_MODEL="", RAG_RERANKING_MODEL="", ENABLE_VERSION_UPDATE_CHECK="false",
                   SCARF_NO_ANALYTICS="true", DO_NOT_TRACK="true", ANONYMIZED_TELEMETRY="false",
                   ENABLE_OLLAMA_API="false", ENABLE_OPENAI_API="true", OPENAI_API_BASE_URL=llm_url,
                   OPENAI_API_KEY=api_key, ENABLE_TITLE_GENERATION="false", ENABLE_TAGS_GENERATION="false",
                   ENABLE_FOLLOW_UP_GENERATION="false", ENABLE_AUTOCOMPLETE_GENERATION="false",
                   BYPASS_MODEL_ACCESS_CONTROL="true", ENABLE_SIGNUP="true", GLOBAL_LOG_LEVEL="WARNING",
                   UVICORN_WORKERS="1")
        self.env = env
        self.server = kit.Server("openwebui", [str(VENV / "bin" / "open-webui"), "serve", "--host", kit.HOST,
                                               "--port", str(self.port)], env, self.port, workdir / "server.log")
        self.started = False
        self.tokens_file = workdir / "tokens.json"

    @property
    def base(self) -> str:
        return f"http://{kit.HOST}:{self.port}"

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        t0 = time.perf_counter()
        self.server.start()
        self.server.wait_ready(180)
        self.startup_seconds = time.perf_counter() - t0
        admin = _call(self.base, "/api/v1/auths/signup", {"name": "admin", "email": "admin@example.org",
                                                          "password": "bench-password-1"})
        tokens = []
        for i in range(self.users):
            email = f"u{i}@example.org"
            _call(self.base, "/api/v1/auths/add", {"name": f"u{i}", "email": email, "password": "bench-password-1",
                                                   "role": "user"}, admin["token"])
            tokens.append(_call(self.base, "/api/v1/auths/signin",
                                {"email": email, "password": "bench-password-1"})["token"])
        self.tokens_file.write_text(json.dumps(tokens))
        models = _call(self.base, "/api/models", token=tokens[0])
        if self.model not in {m["id"] for m in models.get("data", [])}:
            raise RuntimeError(f"Open WebUI does not list {self.model}: {models}")

    def stop(self) -> None:
        self.server.stop()

    def chat_side(self) -> "Side":
        return Side(self, "chat")

    def proxy_side(self) -> "Side":
        return Side(self, "proxy")


class Side:
    """One way of driving Open WebUI, with concurrent_chats.py's side interface."""

    def __init__(self, owui: OpenWebUI, mode: str):
        self.owui, self.mode = owui, mode

    def start(self) -> None:
        self.owui.start()

    def stop(self) -> None:
        self.owui.stop()

    async def round(self, n: int, expected: int) -> dict:
        from concurrent_chats import Chat, summary, tree_cpu_seconds   # bench/runs
        o = self.owui
        proc = await asyncio.create_subprocess_exec(
            str(o.python), str(HERE / "drive.py"), "--base", o.base, "--tokens-file", str(o.tokens_file),
            "--model", o.model, "--mode", self.mode, "--n", str(n),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 26)
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        if line.strip() != b"ready":
            raise RuntimeError(f"drive.py: {line!r}")
        pid = o.server.proc.pid
        cpu0, t0 = tree_cpu_seconds(pid), time.perf_counter()
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        out = json.loads(await asyncio.wait_for(proc.stdout.readline(), 300))
        cpu1, t1 = tree_cpu_seconds(pid), time.perf_counter()
        await proc.wait()
        chats, failed = [], []
        for c in out["chats"]:
            if c["status"] != "done":
                failed.append(c["status"][:160])
            chat = Chat()
            for t, k in zip(c["times"], c["tokens"]):
                chat.token(t, k)
            chats.append(chat)
        return summary(chats, cpu1 - cpu0, t1 - t0, expected, failed)


if __name__ == "__main__":
    if "--setup" in sys.argv:
        print(ensure_venv())
    else:
        print(__doc__)
