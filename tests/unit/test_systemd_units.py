"""systemd/*.service as the Nix package installs them: @agentstead@ replaced by
a real prefix (here the venv), then `systemd-analyze verify` and
`systemd-analyze security --offline=true`, plus the settings the app relies on.

systemd-analyze comes from the `systemd` package (CI installs it with apt);
without it those two checks skip and say why.
"""

from __future__ import annotations

import ctypes.util
import json
import pathlib
import platform
import re
import shutil
import signal
import subprocess
import sys
import urllib.request

import pytest

from agentstead.settings import BY_ENV, Settings
from tests.support.procs import clean_env, free_port, wait_http

ROOT = pathlib.Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
PREFIX = pathlib.Path(sys.executable).parent.parent  # the venv: bin/agentstead exists
MAX_EXPOSURE = 2.0
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None,
                                   reason="systemd-analyze not installed (apt-get install systemd)")


@pytest.fixture
def installed(tmp_path) -> pathlib.Path:
    """The units with @agentstead@ substituted, as the package's install step does."""
    out = tmp_path / "units"
    out.mkdir()
    for unit in sorted(UNITS.glob("*.service")) + sorted(UNITS.glob("*.timer")):
        text = unit.read_text().replace("@agentstead@", str(PREFIX))
        assert "@agentstead@" not in text, f"{unit.name}: placeholder left"
        (out / unit.name).write_text(text)
    return out


def directives(path: pathlib.Path) -> list[tuple[str, str, str]]:
    """(section, key, value) in file order; systemd allows repeated keys."""
    section, out = "", []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def values(path: pathlib.Path, key: str) -> list[str]:
    return [v for s, k, v in directives(path) if s == "Service" and k == key]


def seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text):
        total += float(number) * units[unit or "s"]
    return total


# ---- static: what the app and the later units rely on ----

def test_app_unit_runs_the_app_as_systemd_expects():
    unit = UNITS / "agentstead.service"
    assert values(unit, "Type") == ["notify"]
    assert values(unit, "NotifyAccess") == ["main"]
    assert seconds(values(unit, "WatchdogSec")[0]) >= 10
    assert values(unit, "ExecStartPre") == ["@agentstead@/bin/agentstead migrate"]
    assert values(unit, "ExecStart") == ["@agentstead@/bin/agentstead serve"]
    assert values(unit, "Restart") == ["on-failure"]
    # A static user shared with Litestream, not a dynamic one.
    assert values(unit, "User") == ["agentstead"] and values(unit, "Group") == ["agentstead"]
    assert not values(unit, "DynamicUser")
    assert values(unit, "StateDirectory") == ["agentstead"]


def test_stop_timeout_outlasts_the_apps_grace_period():
    unit = UNITS / "agentstead.service"
    grace = Settings().shutdown_grace_seconds
    assert seconds(values(unit, "TimeoutStopSec")[0]) >= grace + 10


def test_environment_names_only_real_settings():
    """The app refuses unknown AGENTSTEAD_* variables: a typo here would stop it."""
    env = {}
    for value in values(UNITS / "agentstead.service", "Environment"):
        for item in value.split():
            name, _, setting = item.partition("=")
            env[name] = setting
    assert env["AGENTSTEAD_STATE_DIR"] == "%S/agentstead"
    assert env["AGENTSTEAD_ENV"] == "production"
    unknown = [n for n in env if n.startswith("AGENTSTEAD_") and n not in BY_ENV]
    assert not unknown, unknown
    # Secrets come through LoadCredential (a NixOS drop-in), never the unit.
    secret_envs = {s.env for s in BY_ENV.values() if s.secret}
    assert not secret_envs & set(env)


def test_hardening_lines_are_present():
    unit = UNITS / "agentstead.service"
    for key, expected in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                          ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("MemoryDenyWriteExecute", "yes"),
                          ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
                          ("CapabilityBoundingSet", ""), ("SystemCallArchitectures", "native")]:
        assert values(unit, key) == [expected], key


# ---- systemd-analyze ----

@needs_analyze
def test_units_verify(installed):
    units = sorted(installed.iterdir())
    result = subprocess.run([ANALYZE, "verify", *map(str, units)], capture_output=True, text=True,
                            timeout=60)
    # verify checks syntax, Exec paths and dependencies; it does not look up
    # User= (the agentstead user need not exist here).
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    about_ours = [line for line in output.splitlines() if any(u.name in line for u in units)]
    assert not about_ours, output


@needs_analyze
def test_app_unit_exposure(installed):
    unit = installed / "agentstead.service"
    result = subprocess.run([ANALYZE, "security", "--offline=true", f"--threshold={int(MAX_EXPOSURE * 10)}",
                             "--no-pager", str(unit)], capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for agentstead\.service:\s*([\d.]+)", output)
    assert match, output
    exposure = float(match.group(1))
    print(f"systemd-analyze security: agentstead.service exposure {exposure}")
    assert exposure <= MAX_EXPOSURE, output
    assert result.returncode == 0, output  # --threshold agrees


# ---- the real app under the unit's memory and system call restrictions ----

PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1

# Runs argv[1:] with MemoryDenyWriteExecute (the kernel's prctl(PR_SET_MDWE),
# which systemd also uses where it exists) and, when given, the unit's
# SystemCallFilter as an allow list with EPERM for the rest (libseccomp, as
# systemd does). Both are inherited across execve.
LAUNCHER = f"""
import ctypes, ctypes.util, json, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:
    sys.exit("PR_SET_MDWE: " + os.strerror(ctypes.get_errno()))
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    sys.exit("a writable+executable mapping was allowed: MDWE not in effect")
except OSError:
    pass
allow = json.loads(os.environ.pop("UNIT_SYSCALL_ALLOW", "null"))
if allow is not None:
    seccomp = ctypes.CDLL(ctypes.util.find_library("seccomp"))
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    seccomp.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
    ctx = seccomp.seccomp_init(0x00050000 | 1)  # SCMP_ACT_ERRNO(EPERM): SystemCallErrorNumber=EPERM
    for name in allow:
        number = seccomp.seccomp_syscall_resolve_name(name.encode())
        if number >= 0:  # negative: not a system call on this architecture
            seccomp.seccomp_rule_add(ctx, 0x7FFF0000, number, 0)  # SCMP_ACT_ALLOW
    if seccomp.seccomp_load(ctx) != 0:
        sys.exit("seccomp_load failed")
    if os.geteuid() == 0:
        try:
            os.setuid(0)  # in @privileged: must be refused now
            sys.exit("setuid() was allowed: the system call filter is not in effect")
        except PermissionError:
            pass
os.execv(sys.argv[1], sys.argv[1:])
"""


def _kernel_has_mdwe() -> bool:
    if platform.system() != "Linux":
        return False
    major, minor = (int(x) for x in re.findall(r"\d+", platform.release())[:2])
    return (major, minor) >= (6, 3)


def _syscall_groups() -> dict[str, list[str]]:
    """`systemd-analyze syscall-filter`: every @group and its members."""
    out = subprocess.run([ANALYZE, "syscall-filter", "--no-pager"], capture_output=True, text=True,
                         timeout=60).stdout
    groups: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            current.append(line.strip())
    return groups


def _expand(name: str, groups: dict[str, list[str]]) -> set[str]:
    if not name.startswith("@"):
        return {name}
    return set().union(*(_expand(member, groups) for member in groups[name]))


def unit_syscall_allow_list(unit: pathlib.Path) -> list[str]:
    """The unit's SystemCallFilter= lines resolved as systemd does: the first
    allow list, then every ~ line takes its groups out."""
    groups = _syscall_groups()
    allowed: set[str] = set()
    for value in values(unit, "SystemCallFilter"):
        deny = value.startswith("~")
        names = set().union(*(_expand(n, groups) for n in value.lstrip("~").split()))
        allowed = allowed - names if deny else allowed | names
    return sorted(allowed)


@pytest.mark.skipif(not _kernel_has_mdwe(), reason="prctl(PR_SET_MDWE) needs Linux >= 6.3")
def test_app_runs_under_the_units_memory_and_syscall_restrictions(tmp_path):
    """systemd is not PID 1 here, so run the real `agentstead serve` (migration,
    SQLite writes, the event loop, threads) under the kernel mechanisms behind the
    unit's MemoryDenyWriteExecute=yes and SystemCallFilter= lines, and use it."""
    launcher = tmp_path / "restricted.py"
    launcher.write_text(LAUNCHER)
    env = clean_env(AGENTSTEAD_STATE_DIR=str(tmp_path / "state"), AGENTSTEAD_PORT=str(port := free_port()))
    if ANALYZE and ctypes.util.find_library("seccomp"):
        env["UNIT_SYSCALL_ALLOW"] = json.dumps(unit_syscall_allow_list(UNITS / "agentstead.service"))
    else:
        print("system call filter not applied: needs systemd-analyze and libseccomp")
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, str(launcher), str(PREFIX / "bin" / "agentstead"), "serve"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    logs = lambda: (tmp_path / "serve.log").read_text(errors="replace")[-3000:]  # noqa: E731
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", 30, proc)
        # /readyz writes and reads the database: a refused call would fail it.
        for path in ("/healthz", "/readyz", "/api/openapi.json", "/metrics"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
                assert resp.status == 200, (path, logs())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, logs()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Operation not permitted" not in logs() and "Traceback" not in logs(), logs()


def test_the_instance_template_is_the_app_unit_but_for_its_instance_lines():
    """agentstead@.service (several instances, docs/scale-out.md) cannot include agentstead.service;
    this keeps the copy true: the same directives but Description, SyslogIdentifier and the
    instance's name."""
    single = directives(UNITS / "agentstead.service")
    template = directives(UNITS / "agentstead@.service")
    differ = {"Description", "SyslogIdentifier"}
    assert [d for d in single if d[1] not in differ] == [
        d for d in template if d[1] not in differ and d[2] != "AGENTSTEAD_INSTANCE=%i"]
    assert ("Service", "Environment", "AGENTSTEAD_INSTANCE=%i") in template
    assert ("Service", "SyslogIdentifier", "agentstead@%i") in template
