"""The `agentstead` command: serve, migrate, config show|check, version."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from . import buildinfo, logs
from .backup import BackupError
from .backup import commands as backup_commands
from .settings import ConfigError, Settings, describe, ensure_secret_key, load
from .store.migrate import MigrationError, migrate

EXIT_CONFIG = 2  # bad configuration: one line on stderr naming the setting
EXIT_FAILURE = 1


def _settings(args: argparse.Namespace) -> Settings:
    settings = load()
    if getattr(args, "host", None):
        settings = settings.replace(host=args.host)
    if getattr(args, "port", None):
        settings = settings.replace(port=args.port)
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import run  # imports aiohttp and the app only when serving

    settings = ensure_secret_key(_settings(args))
    logs.configure(settings.log_level, settings.log_format)
    run(settings, unix_socket=args.unix_socket)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    report = migrate(settings.db_file, snapshots_kept=settings.migration_snapshots)
    if report.applied:
        print(f"migrated {settings.db_file} from version {report.before} to {report.after}"
              + (f"; snapshot {report.snapshot}" if report.snapshot else ""))
    else:
        print(f"{settings.db_file} is up to date (version {report.after})")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    settings = _settings(args)
    rows = describe(settings)
    if args.json:
        print(json.dumps([{"name": n, "value": v, "source": s} for n, v, s in rows], indent=2))
    else:
        width = max(len(n) for n, _, _ in rows)
        for name, value, source in rows:
            print(f"{name:<{width}}  {value}    [{source}]")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print(f"configuration ok ({settings.env})")
    return 0


def cmd_config_reference(args: argparse.Namespace) -> int:
    from .settings_docs import reference_table

    print(reference_table(), end="")
    return 0


def cmd_config_example(args: argparse.Namespace) -> int:
    from .settings_docs import env_example

    print(env_example(), end="")
    return 0


async def _with_identity(settings: Settings, action):
    """Run action(identity) against the database, as the running app would."""
    import aiohttp

    from .services.identity import Identity
    from .store.db import Database

    migrate(settings.db_file, snapshots_kept=settings.migration_snapshots)
    db = Database(settings.db_file, readers=1, busy_timeout_ms=settings.db_busy_timeout_ms)
    await db.open()
    try:
        async with aiohttp.ClientSession() as http:
            return await action(Identity(db, settings, http))
    finally:
        await db.close()


def _admin(args: argparse.Namespace, action) -> int:
    import asyncio

    from .errors import Refused

    settings = ensure_secret_key(_settings(args))
    try:
        print(asyncio.run(_with_identity(settings, action)))
    except Refused as exc:
        print(f"agentstead: {exc.message}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def cmd_admin_create_user(args: argparse.Namespace) -> int:
    from .services.identity import Context

    async def action(identity):
        user = await identity.users.create(args.email, args.role, Context(user_agent="agentstead-cli"))
        return f"created {user.role} {user.email} (id {user.id})"
    return _admin(args, action)


def cmd_admin_login_link(args: argparse.Namespace) -> int:
    from .services.identity import LOGIN_LINK_TTL, Context

    async def action(identity):
        link = await identity.users.login_link(args.email, Context(user_agent="agentstead-cli"))
        return f"{link}\n(single use, valid {LOGIN_LINK_TTL // 60} minutes)"
    return _admin(args, action)


def cmd_admin_create_token(args: argparse.Namespace) -> int:
    """An API token for a script, made for an existing user as POST /api/tokens would
    (the same rules, audited as token.created); only the token is printed."""
    from .auth.access import ROLE_SCOPES, SCOPES, Principal
    from .errors import Refused
    from .services.identity import Context

    scopes = {s.strip() for s in args.scopes.split(",") if s.strip()}
    if not scopes or not scopes <= set(SCOPES):
        print(f"agentstead: --scopes must be a comma-separated list of {', '.join(SCOPES)}", file=sys.stderr)
        return EXIT_CONFIG

    async def action(identity):
        user = await identity.users.by_email(args.email)
        if user is None or user.disabled:
            raise Refused(404, "not_found", f"no active user with email {args.email}; create it first")
        owner = Principal(user.id, user.email, user.role, ROLE_SCOPES[user.role], "cli")
        _, plain = await identity.tokens.create(owner, args.name, scopes, args.days,
                                                Context(user_agent="agentstead-cli"))
        return plain
    return _admin(args, action)


def cmd_doctor(args: argparse.Namespace) -> int:
    import asyncio

    from .doctor import render, run_all

    settings = ensure_secret_key(_settings(args))
    findings = asyncio.run(run_all(settings))
    if args.json:
        import dataclasses

        print(json.dumps([dataclasses.asdict(f) for f in findings], indent=2))
    else:
        print(render(findings))
    return 0 if all(f.ok for f in findings) else EXIT_FAILURE


def cmd_version(args: argparse.Namespace) -> int:
    info = buildinfo.load()
    print(f"agentstead {info.version} (commit {info.commit}, built {info.build_time}, Python {info.python})")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="agentstead", description="Self-hosted AI agents platform.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP server (migrates the database first)")
    serve.add_argument("--host", help="bind address (default from AGENTSTEAD_HOST)")
    serve.add_argument("--port", type=int, help="bind port (default from AGENTSTEAD_PORT)")
    serve.add_argument("--unix-socket", metavar="PATH", help="listen on a Unix socket instead")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="create or upgrade the database schema").set_defaults(func=cmd_migrate)

    config = sub.add_parser("config", help="inspect the configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = config_sub.add_parser("show", help="print the effective settings, secrets masked")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=cmd_config_show)
    config_sub.add_parser("check", help="validate; exit 2 naming the bad setting").set_defaults(
        func=cmd_config_check)
    config_sub.add_parser("reference", help="print the settings table for README.md").set_defaults(
        func=cmd_config_reference)
    config_sub.add_parser("example", help="print .env.production.example").set_defaults(
        func=cmd_config_example)

    admin = sub.add_parser("admin", help="manage users from the host (no identity provider needed)")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    create = admin_sub.add_parser("create-user", help="create a user who may then sign in")
    create.add_argument("--email", required=True)
    create.add_argument("--role", choices=("member", "admin"), default="member")
    create.set_defaults(func=cmd_admin_create_user)
    link = admin_sub.add_parser("login-link", help="print a single-use sign-in link (15 minutes)")
    link.add_argument("--email", required=True)
    link.set_defaults(func=cmd_admin_login_link)
    token = admin_sub.add_parser("create-token", help="print a new API token of a user, for scripts")
    token.add_argument("--email", required=True, help="the user the token acts as")
    token.add_argument("--name", default="script", help="what the token is for (shown in the account page)")
    token.add_argument("--scopes", default="read,write", help="comma-separated: read, write, admin (default read,write)")
    token.add_argument("--days", type=int, default=None, help="lifetime (default and at most AGENTSTEAD_API_TOKEN_MAX_DAYS)")
    token.set_defaults(func=cmd_admin_create_token)

    backup_commands.register(sub)  # backup config|replicate|status|drill|restore

    doctor = sub.add_parser("doctor", help="check settings, database, models, sign-in, the public URL; say how to fix")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=cmd_doctor)

    sub.add_parser("version", help="print version and build").set_defaults(func=cmd_version)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"agentstead: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except MigrationError as exc:
        print(f"agentstead: database error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BackupError as exc:
        print(f"agentstead: backup: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
