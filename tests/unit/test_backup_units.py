"""The backup units: what they run, their order, their hardening, and Litestream
running under the restrictions agentstead-litestream.service puts on it.

Helpers (the installed-unit fixture, the MDWE + seccomp launcher, the unit's
system call allow list) come from tests/unit/test_systemd_units.py, which
checks agentstead.service the same way; `systemd-analyze verify` there covers
these units too.
"""

from __future__ import annotations

import ctypes.util
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from agentstead.cli import parser
from agentstead.settings import BY_ENV
from tests.support.procs import clean_env

from .test_systemd_units import (ANALYZE, LAUNCHER, PREFIX, UNITS, _kernel_has_mdwe, directives,
                                 installed, needs_analyze, unit_syscall_allow_list, values)

__all__ = ["installed"]  # the fixture, imported for the tests below

BACKUP_UNITS = ["agentstead-litestream.service", "agentstead-restore.service", "agentstead-backup-drill.service"]


def unit_values(unit: str, section: str, key: str) -> list[str]:
    return [v for s, k, v in directives(UNITS / unit) if s == section and k == key]


@pytest.mark.parametrize("unit, argv", [
    ("agentstead-litestream.service", ["backup", "replicate"]),
    ("agentstead-restore.service", ["backup", "restore", "--if-missing"]),
    ("agentstead-backup-drill.service", ["backup", "drill"]),
])
def test_units_run_agentstead_backup_commands(unit, argv):
    assert values(UNITS / unit, "ExecStart") == ["@agentstead@/bin/agentstead " + " ".join(argv)]
    parser().parse_args(argv)  # a real subcommand, not a typo


@pytest.mark.parametrize("unit", BACKUP_UNITS)
def test_same_user_state_and_hardening_as_the_app(unit):
    app = UNITS / "agentstead.service"
    for key in ("User", "Group", "StateDirectory", "UMask", "NoNewPrivileges", "ProtectSystem", "ProtectHome",
                "PrivateTmp", "PrivateDevices", "CapabilityBoundingSet", "MemoryDenyWriteExecute",
                "RestrictAddressFamilies", "SystemCallFilter", "SystemCallArchitectures", "ProtectProc"):
        assert values(UNITS / unit, key) == values(app, key), key
    env = dict(item.split("=", 1) for v in values(UNITS / unit, "Environment") for item in v.split())
    assert env["AGENTSTEAD_STATE_DIR"] == "%S/agentstead" and env["AGENTSTEAD_BACKUP_ENABLED"] == "true"
    assert set(env) <= set(BY_ENV) and not {s.env for s in BY_ENV.values() if s.secret} & set(env)
    # The backup tools never need the app's secret key: no production mode here.
    assert "AGENTSTEAD_ENV" not in env


def test_ordering():
    # Restore before anything opens the database; the app requires it.
    assert {"agentstead.service", "agentstead-litestream.service"} <= set(
        " ".join(unit_values("agentstead-restore.service", "Unit", "Before")).split())
    assert unit_values("agentstead-restore.service", "Install", "RequiredBy") == ["agentstead.service"]
    assert values(UNITS / "agentstead-restore.service", "Type") == ["oneshot"]
    assert values(UNITS / "agentstead-restore.service", "RemainAfterExit") == ["yes"]
    # Litestream after the app (which creates the database), never required by it.
    assert "agentstead.service" in " ".join(unit_values("agentstead-litestream.service", "Unit", "After"))
    assert not unit_values("agentstead.service", "Unit", "Requires")
    assert values(UNITS / "agentstead-litestream.service", "Restart") == ["always"]
    timer = UNITS / "agentstead-backup-drill.timer"
    assert [v for s, k, v in directives(timer) if k == "OnCalendar"] == ["daily"]
    assert [v for s, k, v in directives(timer) if k == "Persistent"] == ["true"]
    assert [v for s, k, v in directives(timer) if k == "Unit"] == ["agentstead-backup-drill.service"]


@needs_analyze
@pytest.mark.parametrize("unit", BACKUP_UNITS)
def test_exposure(installed, unit):
    out = subprocess.run([ANALYZE, "security", "--offline=true", "--no-pager", str(installed / unit)],
                         capture_output=True, text=True, timeout=60)
    match = re.search(rf"Overall exposure level for {re.escape(unit)}:\s*([\d.]+)", out.stdout + out.stderr)
    assert match, out.stdout + out.stderr
    assert float(match.group(1)) <= 2.0


@pytest.mark.skipif(not _kernel_has_mdwe(), reason="prctl(PR_SET_MDWE) needs Linux >= 6.3")
def test_litestream_runs_under_its_units_memory_and_syscall_restrictions(tmp_path):
    """Go's runtime and the Python launcher under MemoryDenyWriteExecute and the
    unit's SystemCallFilter (as the kernel applies them): Litestream starts,
    replicates to a file replica and answers on its control socket."""
    launcher = tmp_path / "restricted.py"
    launcher.write_text(LAUNCHER)
    state = tmp_path / "state"
    state.mkdir()
    conn = sqlite3.connect(state / "agentstead.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    env = clean_env(AGENTSTEAD_STATE_DIR=str(state), AGENTSTEAD_BACKUP_ENABLED="true",
                    AGENTSTEAD_BACKUP_LOCAL_PATH=str(tmp_path / "replica"))
    if ANALYZE and ctypes.util.find_library("seccomp"):
        env["UNIT_SYSCALL_ALLOW"] = json.dumps(unit_syscall_allow_list(UNITS / "agentstead-litestream.service"))
    log = open(tmp_path / "litestream.log", "wb")
    proc = subprocess.Popen([sys.executable, str(launcher), str(PREFIX / "bin" / "agentstead"), "backup",
                             "replicate"], env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        deadline = time.monotonic() + 30
        replica = tmp_path / "replica" / "agentstead.db"
        while not list(replica.glob("ltx/*/*.ltx")) and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "litestream.log").read_text()
            time.sleep(0.1)
        assert list(replica.glob("ltx/*/*.ltx")), (tmp_path / "litestream.log").read_text()
        status = subprocess.run([str(PREFIX / "bin" / "agentstead"), "backup", "status", "--json"], env=env,
                                capture_output=True, text=True, timeout=60)
        assert json.loads(status.stdout)["backup"]["litestream"] == "replicating", status.stdout
    finally:
        proc.terminate()
        proc.wait(30)
    text = (tmp_path / "litestream.log").read_text()
    assert "Operation not permitted" not in text and "panic" not in text, text
    shutil.rmtree(tmp_path / "replica")
