"""`agentstead doctor` against real parts: the app behind the real Caddy, the test LLM
server, a real OIDC provider — and the same with each part broken."""

from __future__ import annotations

import asyncio
import json
import subprocess

from ..support.caddy import Caddy, build_spa
from ..support.llm_server import LLMServer
from ..support.oidc_provider import OIDCProvider
from ..support.procs import VENV_BIN, Server, clean_env


def doctor(env: dict) -> tuple[int, dict[str, dict]]:
    out = subprocess.run([str(VENV_BIN / "agentstead"), "doctor", "--json"], env=clean_env(**env),
                         capture_output=True, text=True, timeout=60)
    return out.returncode, {f["check"]: f for f in json.loads(out.stdout)}


async def test_doctor_passes_on_a_working_host_and_names_each_fix(tmp_path):
    llm = LLMServer(api_key="sk-test", models=("gpt-test",))
    idp = OIDCProvider(client_id="agentstead", client_secret="s", redirect_uris=[])
    await llm.start()
    await idp.start()
    key = tmp_path / "key"
    key.write_text("sk-test")
    secret = tmp_path / "oidc"
    secret.write_text("s")
    state = tmp_path / "state"
    spa = tmp_path / "spa"
    build_spa(spa)
    try:
        with Server(state) as app:
            with Caddy(tmp_path / "caddy", upstream=f"127.0.0.1:{app.port}", frontend_root=spa) as caddy:
                env = {"AGENTSTEAD_STATE_DIR": str(state), "AGENTSTEAD_PUBLIC_URL": caddy.url,
                       "AGENTSTEAD_LLM_PROVIDERS": json.dumps([{"name": "local", "base_url": llm.base_url,
                                                                 "models": ["gpt-test"], "api_key_file": str(key)}]),
                       "AGENTSTEAD_OIDC_PROVIDERS": json.dumps([{"name": "corp", "issuer": idp.issuer,
                                                                  "client_id": "agentstead",
                                                                  "client_secret_file": str(secret)}])}
                code, found = await asyncio.to_thread(doctor, env)
                assert code == 0, found
                assert found["sign-in: corp"]["detail"].endswith(f"{caddy.url}/auth/callback/corp")
                assert found["websocket"]["ok"] and found["public URL"]["ok"] and found["database"]["ok"]

                broken = {**env, "AGENTSTEAD_PUBLIC_URL": "http://127.0.0.1:9",  # nothing listens there
                          "AGENTSTEAD_LLM_PROVIDERS": env["AGENTSTEAD_LLM_PROVIDERS"].replace('"gpt-test"', '"gpt-9"'),
                          "AGENTSTEAD_OIDC_PROVIDERS": env["AGENTSTEAD_OIDC_PROVIDERS"].replace(idp.issuer,
                                                                                                "http://127.0.0.1:9")}
                code, found = await asyncio.to_thread(doctor, broken)
                assert code == 1
                assert not found["public URL"]["ok"] and "Caddy" in found["public URL"]["fix"]
                assert not found["models: local"]["ok"] and "gpt-test" in found["models: local"]["fix"]
                assert not found["sign-in: corp"]["ok"] and "issuer" in found["sign-in: corp"]["fix"]
                key.write_text("sk-wrong")
                code, found = await asyncio.to_thread(doctor, env)
                assert code == 1 and "refused the API key" in found["models: local"]["detail"]
    finally:
        await llm.stop()
        await idp.stop()


def test_doctor_on_a_missing_database(tmp_path):
    code, found = doctor({"AGENTSTEAD_STATE_DIR": str(tmp_path / "nothing")})
    assert code == 1 and not found["database"]["ok"] and "agentstead migrate" in found["database"]["fix"]
    assert not found["models"]["ok"] and "AGENTSTEAD_LLM_PROVIDERS" in found["models"]["fix"]
